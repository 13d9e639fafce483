"""Liveness and readiness (no token needed, for probes)."""

from __future__ import annotations

from fastapi import APIRouter

from twin import __version__

from ..deps import ServicesDep
from ..models import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(services: ServicesDep) -> Health:
    """Service health: catalog reachable, worker pool and live twin status."""
    services.catalog.get("run-00000000-000000-000000")  # touches the database
    live = services.live.status if services.live is not None else "disabled"
    return Health(status="ok", version=__version__, catalog=str(services.catalog.path), workers=services.pool.workers,
                  runs_active=services.pool.n_active, runs_queued=services.pool.n_queued, live=live)
