"""The live twin: current state (a cached snapshot), telemetry in, what-ifs from the live state."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.concurrency import run_in_threadpool

from ..deps import LiveDep, require_read, require_write
from ..live import LiveTwin, LiveUnavailable, WhatIfBusy
from ..models import LiveState, Problem, Telemetry, TelemetryAccepted, WhatIf, WhatIfResult, finite

router = APIRouter(prefix="/live", tags=["live"], dependencies=[Depends(require_read)],
                   responses={503: {"model": Problem, "description": "the live twin is not available (starting, disabled or failed)"}})


def _live(live: LiveTwin | None) -> LiveTwin:
    if live is None:
        raise HTTPException(503, "the live twin is disabled (TWIN_LIVE_ENABLED=0)")
    try:
        live.require()
    except LiveUnavailable as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None
    return live


@router.get("/state", response_model=LiveState)
async def read_state(live: LiveDep) -> Response:
    """The live twin's current state: power by source, frequency, SoC, temperatures and margins per island."""
    return Response(_live(live).snapshot_json, media_type="application/json")


@router.post("/telemetry", response_model=TelemetryAccepted, dependencies=[Depends(require_write)])
def post_telemetry(body: Telemetry, live: LiveDep) -> TelemetryAccepted:
    """Feed measurements (hall IT power, ambient, unit status); each is held until the next one."""
    time_s, applied = _live(live).apply_telemetry(body)
    return TelemetryAccepted(time_s=time_s, applied=applied)


@router.post("/whatif", response_model=WhatIfResult, dependencies=[Depends(require_write)],
             responses={429: {"model": Problem, "description": "another what-if is running"},
                        504: {"model": Problem, "description": "the what-if took longer than the configured limit"}})
async def post_whatif(body: WhatIf, live: LiveDep) -> WhatIfResult:
    """Run a what-if (events from now, over a horizon) on a copy of the live state; returns its KPIs."""
    from concurrent.futures import TimeoutError as FutureTimeout

    twin = _live(live)
    try:
        result = await run_in_threadpool(twin.whatif, body)
    except WhatIfBusy as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": "10"}) from None
    except LiveUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    except FutureTimeout:
        raise HTTPException(504, f"the what-if took longer than {twin.whatif_timeout_s:g} s") from None
    return WhatIfResult(**finite(result))

