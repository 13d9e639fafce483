"""What the app holds while it runs (catalog, worker pool, sweep executor, live twin, stream broadcaster, metrics), its health,
and the cached site data."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache

from sites import Site, list_sites, load_site
from twin.catalog import Catalog, CatalogUnavailable

from .config import Settings
from .live import LiveTwin
from .metrics import Metrics
from .stream import Broadcaster
from .workers import RunPool, SweepExecutor

__all__ = ["Services", "StartupError", "site_names", "get_site", "UnknownSite"]

log = logging.getLogger("twin.api")
#: Free space below which the data directory counts as full [bytes].
MIN_FREE_BYTES = 16 * 2**20


class StartupError(RuntimeError):
    """The service cannot start (its data directory is unusable); ``str()`` names the path and the reason."""


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


def check_data_dir(settings: Settings) -> None:
    """Create the data directory and prove it writable; :class:`StartupError` naming the path otherwise."""
    home = settings.home_dir
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / f".write-probe-{os.getpid()}"
        with open(probe, "wb") as fh:
            fh.write(b"ok")
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
    except OSError as exc:
        raise StartupError(f"the data directory {home} (TWIN_HOME) is not usable: {exc.strerror or exc}; "
                           "give a writable directory with free space") from None


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    pool: RunPool
    sweeps: SweepExecutor | None = None
    live: LiveTwin | None = None
    metrics: Metrics | None = None
    broadcaster: Broadcaster | None = None
    reaped_at_start: list[str] = field(default_factory=list)
    #: Unix time and reason of the latest write the catalog refused (read-only or full disk).
    storage_error: tuple[float, str] | None = None

    @classmethod
    def start(cls, settings: Settings, loop: asyncio.AbstractEventLoop | None = None) -> "Services":
        """Start every service; :class:`StartupError` (one sentence, naming the path) when the data directory is unusable."""
        check_data_dir(settings)
        try:
            catalog = Catalog(settings.catalog_file)
        except CatalogUnavailable as exc:
            raise StartupError(f"{exc} (TWIN_HOME={settings.home_dir})") from None
        svc = cls(settings, catalog, None)  # type: ignore[arg-type]
        svc.metrics = Metrics(svc)
        svc.pool = RunPool(catalog, settings.home_dir, settings.workers, settings.max_queued, settings.reap_interval_s,
                           on_finish=lambda rid, st: svc.metrics.runs_finished.labels(st).inc())
        svc.reaped_at_start = svc.pool.start()
        svc.sweeps = SweepExecutor(catalog, settings.home_dir, settings.dask_scheduler, settings.workers,
                                   on_finish=lambda rid, st: svc.metrics.runs_finished.labels(st).inc())
        if loop is not None:
            svc.broadcaster = Broadcaster(loop, settings.max_stream_subscribers)
        if settings.live_enabled:
            svc.live = LiveTwin(settings.live_site, settings.live_period_s, settings.whatif_max_horizon_s,
                                settings.whatif_timeout_s, on_step=svc._on_live_step)
            svc.live.start()
        return svc

    def _on_live_step(self, live: LiveTwin) -> None:
        if self.broadcaster is not None:
            self.broadcaster.publish_threadsafe(live.snapshot_json)

    def stop(self) -> None:
        if self.broadcaster is not None:
            self.broadcaster.close()
        if self.live is not None:
            self.live.stop()
        if self.sweeps is not None:
            self.sweeps.shutdown()
        self.pool.shutdown()

    def storage_failed(self, reason: str) -> None:
        """Note a refused write (shown by /healthz for a minute)."""
        self.storage_error = (time.time(), reason)

    def health(self) -> tuple[bool, dict]:
        """(healthy, report): the live twin, the catalog and the workers; never a path or a secret."""
        problems: list[str] = []
        # live twin
        live = self.live.status if self.live is not None else "disabled"
        if live == "failed":
            problems.append(f"live twin failed: {self.live.error}")
        # catalog: readable, and the data directory writable with free space
        catalog = "ok"
        try:
            self.catalog.get("run-00000000-000000-000000")
        except Exception as exc:  # noqa: BLE001 - any failure to read is the report
            catalog = "unreadable"
            problems.append(f"catalog cannot be read: {type(exc).__name__}")
        if catalog == "ok":
            try:
                st = os.statvfs(self.settings.home_dir)
                if st.f_flag & os.ST_RDONLY:
                    catalog = "read-only"
                elif st.f_bavail * st.f_frsize < MIN_FREE_BYTES:
                    catalog = "full"
            except OSError:
                catalog = "unreachable"
            if catalog == "ok" and self.storage_error and time.time() - self.storage_error[0] < 60:
                try:  # a write was refused lately: is the directory writable again?
                    check_data_dir(self.settings)
                    self.storage_error = None
                except StartupError:
                    catalog = "write-failed"
            if catalog != "ok":
                problems.append(f"data directory {catalog}: runs cannot be written (reads still work)")
        # workers
        workers = "ok" if self.pool.threads_alive() else "stopped"
        if workers != "ok":
            problems.append("the worker pool's dispatcher or reaper thread has stopped")
        report = {"live": live, "catalog": catalog, "workers_status": workers, "workers": self.pool.workers,
                  "runs_active": self.pool.n_active, "runs_queued": self.pool.n_queued,
                  "sweep_cluster": self.sweeps.cluster if self.sweeps else "local (not started)",
                  "sweep_cases_pending": self.sweeps.n_pending if self.sweeps else 0,
                  "stream_subscribers": self.broadcaster.subscribers if self.broadcaster else 0, "problems": problems}
        return not problems, report
