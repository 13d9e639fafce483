"""The live twin: current state (a cached snapshot, or pushed as server-sent events), telemetry in, what-ifs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from ..deps import LiveDep, require_read, require_write
from ..live import LiveTwin, LiveUnavailable, WhatIfBusy
from ..models import LiveState, Telemetry, TelemetryAccepted, WhatIf, WhatIfResult, finite
from ..problems import problem_doc
from ..stream import event_schema

#: Response headers of an event stream (no caching, no proxy buffering).
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

router = APIRouter(prefix="/live", tags=["live"], dependencies=[Depends(require_read)],
                   responses={503: problem_doc("the live twin is not available (starting, disabled or failed)")})


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
    """The live twin's current state: power by source, frequency, SoC, temperatures and margins per island.

    (While a state exists, :class:`api.middleware.LiveStateFastPath` serves it before this route is reached.)
    """
    return Response(_live(live).current_json(), media_type="application/json")


@router.get("/stream", response_class=StreamingResponse,
            responses={200: {"description": "server-sent events: `event: state`, `id:` the state's sequence number, "
                                            "`data:` a LiveState as JSON; a `: keep-alive` comment every 15 s",
                             "content": event_schema(["state"], "a LiveState")},
                       503: problem_doc("the live twin is not available, or too many streams are open")})
async def stream_state(request: Request, live: LiveDep,
                       last_event_id: Annotated[int | None, Header(ge=0, le=2**62, description="resume after this state")] = None,
                       limit: Annotated[int | None, Query(ge=1, le=1_000_000, description="end the stream after this many states")] = None,
                       ) -> StreamingResponse:
    """Every new state of the live twin as it is computed (server-sent events), starting with the current one."""
    _live(live)
    hub = request.app.state.services.broadcaster
    if hub is None or hub.full():
        raise HTTPException(503, "too many open streams; retry later", headers={"Retry-After": "5"})
    return StreamingResponse(hub.stream(last_event_id, limit), media_type="text/event-stream", headers=SSE_HEADERS)


@router.post("/telemetry", response_model=TelemetryAccepted, dependencies=[Depends(require_write)])
def post_telemetry(body: Telemetry, live: LiveDep) -> TelemetryAccepted:
    """Feed measurements (hall IT power, ambient, unit status); each is held until the next one."""
    time_s, applied = _live(live).apply_telemetry(body)
    return TelemetryAccepted(time_s=time_s, applied=applied)


@router.post("/telemetry/batch", response_model=TelemetryAccepted, dependencies=[Depends(require_write)])
def post_telemetry_batch(body: Annotated[list[Telemetry], Body(min_length=1, max_length=1000)], live: LiveDep) -> TelemetryAccepted:
    """Feed a batch of measurements, applied in order (the last value of each one is held); all or nothing."""
    time_s, applied = _live(live).apply_telemetry(body)
    return TelemetryAccepted(time_s=time_s, applied=applied)


@router.post("/whatif", response_model=WhatIfResult, dependencies=[Depends(require_write)],
             responses={429: problem_doc("another what-if is running"),
                        504: problem_doc("the what-if took longer than the configured limit")})
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

