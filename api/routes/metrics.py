"""Prometheus exposition of the live twin's state and the service's metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..deps import ServicesDep, require_read

router = APIRouter(tags=["metrics"], dependencies=[Depends(require_read)])


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format"}})
def read_metrics(services: ServicesDep) -> Response:
    """Metrics in Prometheus text format: live power by source, frequency, SoC, temperatures, margins; requests and runs."""
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
