"""What the app holds while it runs (catalog, worker pool, live twin, metrics) and the cached site data."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache

from sites import Site, list_sites, load_site
from twin.catalog import Catalog

from .config import Settings
from .live import LiveTwin
from .metrics import Metrics
from .workers import RunPool

__all__ = ["Services", "site_names", "get_site", "UnknownSite"]

log = logging.getLogger("twin.api")


class UnknownSite(LookupError):
    """No reference site of that name."""


@lru_cache(maxsize=1)
def site_names() -> tuple[str, ...]:
    """The reference names the API serves (never file paths)."""
    return tuple(list_sites())


@lru_cache(maxsize=32)
def get_site(name: str) -> Site:
    """A reference site, loaded once per process."""
    if name not in site_names():
        raise UnknownSite(f"no site {name!r}; expected one of {', '.join(site_names())}")
    return load_site(name)


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    pool: RunPool
    live: LiveTwin | None = None
    metrics: Metrics | None = None
    reaped_at_start: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, settings: Settings) -> "Services":
        home = settings.home_dir
        home.mkdir(parents=True, exist_ok=True)
        catalog = Catalog(settings.catalog_file)
        svc = cls(settings, catalog, None)  # type: ignore[arg-type]
        svc.metrics = Metrics(svc)
        svc.pool = RunPool(catalog, home, settings.workers, settings.max_queued, settings.reap_interval_s,
                           on_finish=lambda rid, st: svc.metrics.runs_finished.labels(st).inc())
        svc.reaped_at_start = svc.pool.start()
        if settings.live_enabled:
            svc.live = LiveTwin(settings.live_site, settings.live_period_s, settings.whatif_max_horizon_s,
                                settings.whatif_timeout_s)
            svc.live.start()
        return svc

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
        self.pool.shutdown()
