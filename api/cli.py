"""``twin serve``: start the API with uvicorn (register :func:`serve` as a typer command)."""

from __future__ import annotations

import os
import secrets
from typing import Annotated, Optional

import typer

__all__ = ["serve"]


def serve(
    host: Annotated[str, typer.Option("--host", help="interface to bind (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    home: Annotated[Optional[str], typer.Option("--home", help="run directories and catalog (default: $TWIN_HOME or ./runs)")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="runs executed at once (default: $TWIN_WORKERS or 1)")] = None,
    live: Annotated[bool, typer.Option("--live/--no-live", help="step the live twin of the reference campus")] = True,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level")] = "info",
) -> None:
    """Serve the twin over HTTP: sites, runs, sweeps, the live twin, /metrics and /docs (settings: TWIN_* variables)."""
    import uvicorn

    from .config import get_settings

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
        os.environ["TWIN_WRITE_TOKENS"] = token
        get_settings.cache_clear()
        typer.echo(f"no TWIN_WRITE_TOKENS set; generated a write token for this server: {token}", err=True)
    uvicorn.run("api.main:create_app", factory=True, host=host, port=port, log_level=log_level, access_log=False)
