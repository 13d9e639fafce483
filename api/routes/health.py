"""Health for probes (no token needed): the live twin, the catalog and the workers; 503 when degraded."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from twin import __version__

from ..deps import ServicesDep
from ..models import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health,
            responses={503: {"model": Health, "description": "degraded: the live twin failed, the data directory cannot be written, "
                                                             "or the worker pool stopped (see problems)"}})
def healthz(services: ServicesDep) -> JSONResponse:
    """Service health: the live twin's status, whether the catalog can be read and written, the worker pool."""
    ok, report = services.health()
    body = Health(status="ok" if ok else "degraded", version=__version__, **report)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
