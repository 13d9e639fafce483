"""Service settings: embedded defaults, every one overridable by an environment variable ``TWIN_<NAME>``.

``TWIN_HOME`` (default ``./runs``) holds the SQLite run catalog and one directory per run, as for the
CLI. Tokens are comma-separated lists: ``TWIN_READ_TOKENS=grafana,dcim``, ``TWIN_WRITE_TOKENS=ops``
(a write token can read too). With no token configured every protected route answers 401 unless
``TWIN_AUTH_DISABLED=1``; ``twin serve`` generates a write token in that case and prints it.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """Configuration of the API service (environment variables ``TWIN_*``)."""

    model_config = SettingsConfigDict(env_prefix="TWIN_", extra="ignore")

    home: Path = Field(Path("runs"), description="run directories and the catalog (TWIN_HOME)")
    catalog_path: Path | None = Field(None, description="SQLite catalog; default <home>/catalog.sqlite")

    read_tokens: str = Field("", description="comma-separated bearer tokens with read scope")
    write_tokens: str = Field("", description="comma-separated bearer tokens with read and write scope")
    auth_disabled: bool = Field(False, description="serve every route without a token (loopback experiments only)")

    workers: int = Field(1, ge=1, le=64, description="runs executed at once (one process each)")
    max_queued: int = Field(200, ge=1, description="runs waiting for a worker before POST answers 429")
    max_horizon_s: float = Field(7 * 86400.0, gt=0, description="longest horizon a submitted run may have [s]")
    max_steps: int = Field(7 * 86400, ge=1, description="most steps (horizon / step) a submitted run may have")
    max_run_cost_s: float = Field(30.0, gt=0, description="largest estimated wall time of one run on one worker [s] "
                                  "(admission by cost: steps, each costlier the shorter it is; see api.admission)")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="largest request body [bytes]")
    max_series_points: int = Field(2_000_000, ge=1, description="most values one series response may hold")
    max_sweep_cases: int = Field(200, ge=1, description="most cases (runs) one sweep may expand to")
    dask_scheduler: str | None = Field(None, pattern=r"^[a-z0-9+]+://\S+$", description="address of the dask scheduler "
                                       "that runs sweeps, e.g. tcp://10.0.0.5:8786 (default: a local cluster of `workers` "
                                       "processes, started with the first sweep)")
    reap_interval_s: float = Field(30.0, gt=0, description="how often runs of dead processes are marked failed [s]")

    live_enabled: bool = Field(True, description="step the live twin in the background")
    live_site: str = Field("memphis", description="reference site of the live twin")
    live_period_s: float = Field(1.0, gt=0, description="wall-clock period of one live step [s]")
    whatif_max_horizon_s: float = Field(3600.0, gt=0, description="longest what-if from the live state [s]")
    whatif_timeout_s: float = Field(120.0, gt=0, description="wall-clock limit of one what-if [s]")
    max_stream_subscribers: int = Field(2000, ge=1, description="server-sent event streams open at once")
    stream_poll_s: float = Field(0.5, gt=0, description="how often a run's stream looks at the catalog [s]")

    log_format: Literal["text", "json"] = Field("text", description="log lines: text (one line, key=value) or json")
    log_level: str = Field("INFO", pattern=r"^(?i:debug|info|warning|error|critical)$", description="level of the service's logs")
    access_log: bool = Field(True, description="one log line per request (method, path, status, duration)")

    @property
    def home_dir(self) -> Path:
        return Path(self.home).resolve()

    @property
    def catalog_file(self) -> Path:
        return Path(self.catalog_path).resolve() if self.catalog_path else self.home_dir / "catalog.sqlite"

    @property
    def read_token_set(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.read_tokens.split(",") if t.strip())

    @property
    def write_token_set(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.write_tokens.split(",") if t.strip())

    @cached_property
    def read_token_bytes(self) -> tuple[bytes, ...]:
        return tuple(t.encode() for t in self.read_token_set)

    @cached_property
    def write_token_bytes(self) -> tuple[bytes, ...]:
        return tuple(t.encode() for t in self.write_token_set)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests override this dependency)."""
    return Settings()
