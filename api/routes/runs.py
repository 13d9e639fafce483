"""Runs: submit a scenario (executed by the worker pool), list, status, KPIs, series slices, delete."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, StreamingResponse

from sites import InputError
from twin.catalog import RunRecord
from twin.recorder import STORE_NAME
from twin.scenario import Scenario

from .. import series as series_mod
from ..admission import admit
from ..deps import CatalogDep, PoolDep, RunId, ServicesDep, SettingsDep, require_read, require_write
from ..models import Kpis, RunAccepted, RunDetail, RunEvent, RunEvents, RunPublic, RunsPublic
from ..problems import problem_doc
from ..stream import event_schema, run_events
from ..workers import ACTIVE, safe_run_dir
from .live import SSE_HEADERS

router = APIRouter(prefix="/runs", tags=["runs"], dependencies=[Depends(require_read)],
                   responses={404: problem_doc("no such run")})

Write = [Depends(require_write)]


def public(r: RunRecord) -> RunPublic:
    return RunPublic(id=r.id, kind="sweep" if r.kind == "sweep" else "run", parent=r.parent, site=r.site, scenario=r.scenario,
                     status=r.status, progress_pct=round(100.0 * (r.progress or 0.0), 3), eta_s=r.eta_s, created=r.created,
                     started=r.started, finished=r.finished, error=r.error)


def get_record(catalog, run_id: str, kind: str = "run") -> RunRecord:
    rec = catalog.get(run_id)
    if rec is None or (rec.kind == "sweep") != (kind == "sweep"):
        raise HTTPException(404, f"no {kind} {run_id!r}")
    return rec


def delete_record(services, rec: RunRecord) -> None:
    """Stop the run if it is active, then remove it from the catalog and its directory (inside TWIN_HOME)."""
    owned = services.pool.cancel(rec.id, delete=True) or services.sweeps.cancel(rec.id, delete=True)
    if not owned:
        if rec.status in ACTIVE and rec.kind != "sweep":
            raise HTTPException(409, f"run {rec.id} is {rec.status} in another process; cancel it there first")
        services.catalog.delete(rec.id)
        path = safe_run_dir(rec.store, services.settings.home_dir)
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=RunAccepted, dependencies=Write,
             responses={429: problem_doc("the queue is full")})
def create_run(scenario: Scenario, pool: PoolDep, settings: SettingsDep, services: ServicesDep, response: Response) -> RunAccepted:
    """Submit a scenario (the TOML schema, as JSON); it is queued and executed by the worker pool."""
    site, doc = admit(scenario, settings)
    try:
        run_id = pool.submit(site=site, doc=doc, scenario_name=scenario.scenario.name)
    except pool.QueueFull as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": "30"}) from None
    services.metrics.runs_submitted.labels("run").inc()
    response.headers["Location"] = f"/runs/{run_id}"
    return RunAccepted(id=run_id, status="queued", links={k: f"/runs/{run_id}{s}" for k, s in
                                                          (("self", ""), ("kpis", "/kpis"), ("series", "/series"))})


@router.get("", response_model=RunsPublic)
def list_runs(catalog: CatalogDep, status_: Annotated[Literal["queued", "running", "done", "failed", "cancelled"] | None, Query(alias="status")] = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
              parent: Annotated[str | None, Query(pattern=r"^[a-z]{1,8}-[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")] = None) -> RunsPublic:
    """List runs, newest first (cases of a sweep with ``parent``)."""
    recs = catalog.list(kind="run", parent=parent, limit=limit if status_ is None else 1_000_000, offset=0 if status_ else offset)
    if status_ is not None:
        recs = [r for r in recs if r.status == status_][offset:offset + limit]
    return RunsPublic(data=[public(r) for r in recs], count=len(recs))


@router.get("/{run_id}", response_model=RunDetail)
def read_run(run_id: RunId, catalog: CatalogDep) -> RunDetail:
    """Status, progress (%), ETA and the scenario of a run."""
    rec = get_record(catalog, run_id)
    has = bool(rec.store) and (Path(rec.store) / STORE_NAME).exists()
    return RunDetail(**public(rec).model_dump(), scenario_doc=rec.scenario_doc, has_results=has)


@router.get("/{run_id}/kpis", response_model=Kpis, responses={409: problem_doc("the run is not done")})
def read_kpis(run_id: RunId, catalog: CatalogDep) -> Kpis:
    """The KPIs of a finished run."""
    rec = get_record(catalog, run_id)
    if rec.status != "done" or rec.kpis is None:
        why = f": {rec.error}" if rec.error else ""
        raise HTTPException(409, f"run {run_id} is {rec.status}{why}; KPIs exist once it is done")
    return Kpis(id=run_id, kpis=rec.kpis)


@router.get("/{run_id}/events", response_model=RunEvents,
            responses={409: problem_doc("the run is not done")})
def read_events(run_id: RunId, catalog: CatalogDep) -> RunEvents:
    """The sequence of events of a finished run: its scenario events and the relay trips, PMS actions and
    restorations they caused, time-stamped to the 50 ms sub-step."""
    from twin.report import read_events as read_run_events

    rec = get_record(catalog, run_id)
    if rec.status != "done" or not rec.store:
        why = f": {rec.error}" if rec.error else ""
        raise HTTPException(409, f"run {run_id} is {rec.status}{why}; its events exist once it is done")
    rows = read_run_events(rec.store)
    return RunEvents(id=run_id, events=[RunEvent(t_s=float(r["t_s"]), source=r["source"], kind=r["kind"],
                                                 component=r["component"], island=r["island"],
                                                 value=float(r["value"]) if r["value"] not in ("", None) else None,
                                                 unit=r["unit"], message=r["message"]) for r in rows])


@router.get("/{run_id}/report",
            responses={200: {"description": "the run's report (Markdown): KPI table and sequence of events",
                             "content": {"text/markdown": {"schema": {"type": "string"}}}},
                       409: problem_doc("the run is not done")})
def read_report(run_id: RunId, catalog: CatalogDep) -> Response:
    """The report of a finished run (``report.md``: its KPIs and sequence of events), written on first request
    when the run was made without one (runs of the service have no figures)."""
    from twin.report import write_run_report

    rec = get_record(catalog, run_id)
    if rec.status != "done" or not rec.store or rec.kpis is None:
        why = f": {rec.error}" if rec.error else ""
        raise HTTPException(409, f"run {run_id} is {rec.status}{why}; its report exists once it is done")
    path = Path(rec.store) / "report.md"
    if not path.is_file():
        path = write_run_report(rec.store, rec.kpis, [], f"{rec.scenario} on {rec.site}", rec.scenario_doc)
    return PlainTextResponse(path.read_text(), media_type="text/markdown",
                             headers={"Content-Disposition": f'attachment; filename="{run_id}-report.md"'})


@router.get(
    "/{run_id}/series",
    responses={
        200: {"description": "the slice as JSON (default), CSV or netCDF",
              "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}},
                          "application/x-netcdf": {"schema": {"type": "string", "format": "binary"}}}},
        409: problem_doc("the run has no results yet"),
    },
)
def read_series(
    run_id: RunId,
    catalog: CatalogDep,
    settings: SettingsDep,
    var: Annotated[str, Query(description="a result variable, e.g. f_hz, p_it_mw", min_length=1, max_length=64,
                              json_schema_extra={"enum": series_mod.known_variables()})],
    entity: Annotated[list[str] | None, Query(description="component names along the variable's dimension (repeatable)", max_length=1000)] = None,
    start: Annotated[str | None, Query(description="ISO date-time, 'HH:MM:SS' or seconds from the start", max_length=64)] = None,
    end: Annotated[str | None, Query(description="ISO date-time, 'HH:MM:SS' or seconds from the start", max_length=64)] = None,
    every: Annotated[float | None, Query(gt=0, le=1e9, description="aggregate to one value per this many seconds")] = None,
    agg: Literal["mean", "min", "max"] = "mean",
    format: Literal["json", "csv", "netcdf"] = "json",
) -> Response:
    """A slice of one variable of a run: JSON (time, one series per entity), CSV, or a netCDF download."""
    rec = get_record(catalog, run_id)
    if var not in series_mod.known_variables():
        raise InputError("query", [("var", f"unknown variable {var!r}; expected one of {', '.join(series_mod.VARIABLES)}")])
    try:
        finished = rec.status not in ACTIVE
        ds = series_mod.open_run(rec.store, immutable=finished)
        da = series_mod.select(ds, var, entity, start, end, every, agg, settings.max_series_points,
                               cache_key=(rec.store, rec.finished) if finished else None)
    except series_mod.NoResults as exc:
        raise HTTPException(409, f"run {run_id} is {rec.status}: {exc}") from None
    except series_mod.SeriesTooLarge as exc:
        raise HTTPException(413, str(exc)) from None
    if format == "csv":
        return PlainTextResponse(series_mod.to_csv(da, var), media_type="text/csv")
    if format == "netcdf":
        return Response(series_mod.to_netcdf(da, ds, var), media_type="application/x-netcdf",
                        headers={"Content-Disposition": f'attachment; filename="{run_id}-{var}.nc"'})
    return Response(series_mod.to_json(da, run_id, var), media_type="application/json")


@router.get("/{run_id}/stream", response_class=StreamingResponse,
            responses={200: {"description": "server-sent events: `progress` (status, progress_pct, eta_s, error) on every change, "
                                            "`event` for each entry of the run's sequence of events as the engine logs it (as in "
                                            "GET /runs/{id}/events), `end` once finished",
                             "content": event_schema(["progress", "event", "end"], "a progress document or an entry of the sequence of events")},
                       503: problem_doc("too many streams are open")})
async def stream_run(run_id: RunId, catalog: CatalogDep, request: Request) -> StreamingResponse:
    """A run's progress as it happens (server-sent events); the stream ends when the run does."""
    rec = await run_in_threadpool(get_record, catalog, run_id)
    hub = request.app.state.services.broadcaster
    if hub is not None and hub.full():
        raise HTTPException(503, "too many open streams; retry later", headers={"Retry-After": "5"})
    poll_s = request.app.state.services.settings.stream_poll_s
    stopping = (lambda: hub.closed) if hub is not None else (lambda: False)
    return StreamingResponse(run_events(catalog.get, rec.id, poll_s, run_in_threadpool, stopping), media_type="text/event-stream",
                             headers=SSE_HEADERS)


@router.delete("/{run_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=Write,
               responses={409: problem_doc("the run is executing in another process")})
def delete_run(run_id: RunId, catalog: CatalogDep, services: ServicesDep) -> Response:
    """Delete a run (cancelling it first if it is queued or running) and its results."""
    delete_record(services, get_record(catalog, run_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
