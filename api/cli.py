"""``twin serve``: start the API with uvicorn (register :func:`serve` as a typer command).

uvicorn runs with its fast HTTP parser (httptools) and event loop (uvloop), structured logs
(:mod:`api.logs`; uvicorn's own access log is replaced by the service's), and a 5 s grace period at
shutdown after which open event streams are closed. Without ``TWIN_WRITE_TOKENS`` a write token is
generated and written to ``<TWIN_HOME>/write-token`` (mode 0600); it is never printed or logged.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["serve", "UVICORN_OPTIONS"]

#: How the service runs under uvicorn (also used by the load benchmark).
UVICORN_OPTIONS = {"http": "httptools", "loop": "uvloop", "access_log": False, "timeout_graceful_shutdown": 5}


def _store_token(home: Path, token: str) -> Path:
    """Write a generated token to a file only this user can read; the path is shown, never the token."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "write-token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
    return path


def serve(
    host: Annotated[str, typer.Option("--host", help="interface to bind (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    home: Annotated[Optional[str], typer.Option("--home", help="run directories and catalog (default: $TWIN_HOME or ./runs)")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="runs executed at once (default: $TWIN_WORKERS or 1)")] = None,
    live: Annotated[bool, typer.Option("--live/--no-live", help="step the live twin of the reference campus")] = True,
    log_level: Annotated[str, typer.Option("--log-level", help="log level (debug, info, warning, error)")] = "info",
) -> None:
    """Serve the twin over HTTP: the engineer's page at /, sites, runs, sweeps, the live twin, /metrics and /docs (settings: TWIN_* variables)."""
    import uvicorn

    from .config import get_settings
    from .logs import log_config

    if home is not None:
        os.environ["TWIN_HOME"] = home
    if workers is not None:
        os.environ["TWIN_WORKERS"] = str(workers)
    if not live:
        os.environ["TWIN_LIVE_ENABLED"] = "0"
    get_settings.cache_clear()
    s = get_settings()
    if not s.auth_disabled and not s.write_token_set:
        token = secrets.token_urlsafe(24)
        try:
            where = _store_token(s.home_dir, token)
        except OSError as exc:
            typer.echo(f"error: the data directory {s.home_dir} (TWIN_HOME) is not usable: {exc.strerror or exc}", err=True)
            raise typer.Exit(2) from None
        os.environ["TWIN_WRITE_TOKENS"] = token
        get_settings.cache_clear()
        typer.echo(f"no TWIN_WRITE_TOKENS set; generated a write token, stored in {where} (readable by this user only)", err=True)
    os.environ.setdefault("TWIN_LOG_LEVEL", log_level)
    uvicorn.run("api.main:create_app", factory=True, host=host, port=port, log_level=log_level,
                log_config=log_config(s.log_format, log_level), **UVICORN_OPTIONS)
