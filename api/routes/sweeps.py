"""Sweeps: a base scenario over N-1 contingencies or random N-k cases, and listed cases, made as ``twin sweep``
makes them (:func:`twin.sweep.generate_cases`) and executed on dask by its executor (:class:`api.workers.SweepExecutor`);
each case is a catalog entry with its KPIs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status

from sites import InputError
from twin.catalog import new_run_id
from twin.scenario import ScenarioError, load_scenario

from ..admission import admit
from ..deps import CatalogDep, RunId, ServicesDep, SettingsDep, require_read, require_write
from ..models import RunAccepted, SweepCasePublic, SweepCreate, SweepKpis, SweepPublic, SweepsPublic, finite
from ..problems import problem_doc
from ..workers import sweep_summary
from .runs import delete_record, get_record, public

router = APIRouter(prefix="/sweeps", tags=["sweeps"], dependencies=[Depends(require_read)],
                   responses={404: problem_doc("no such sweep")})


def _expand(body: SweepCreate, settings) -> tuple[str, list[tuple[str, dict]], str]:
    """(site, [(case name, admitted scenario document)], how the N-k cases were drawn) of a sweep request."""
    from twin.sweep import TooManyCases, generate_cases

    from ..services import get_site

    problems = [(f, f"{f} is only used with sample (random N-k cases); give sample too or leave {f} out")
                for f in ("k", "seed") if getattr(body, f) is not None and body.sample is None]
    if not body.n1 and body.sample is None and not body.cases:
        problems.append(("n1", "nothing to sweep: give n1 (N-1 kinds), sample (random N-k cases) and/or cases"))
    if problems:
        raise InputError("request body", problems)
    site_name, base_doc = admit(body.base, settings, prefix="base.")
    extra = [c.model_dump(exclude_none=True, mode="json") for c in body.cases]
    try:
        cases, sample_text = generate_cases(get_site(site_name), base_doc, list(body.n1), body.at, extra, body.sample,
                                            2 if body.k is None else body.k, body.seed or 0, max_cases=settings.max_sweep_cases)
    except TooManyCases as exc:
        raise InputError("request body", [(_field(p), f"{m} (the configured cap: TWIN_MAX_SWEEP_CASES raises it)")
                                          for p, m in exc.problems]) from None
    except ScenarioError as exc:
        raise InputError("request body", [(_field(p), m) for p, m in exc.problems]) from None
    out = []
    n_base = len(cases) - len(body.cases)
    for i, (name, doc) in enumerate(cases):
        prefix = f"cases[{i - n_base}]." if i >= n_base else "base."
        try:
            sc = load_scenario(doc, origin=f"case {name!r}")
        except ScenarioError as exc:
            raise InputError("request body", [(f"{prefix}{p}", m) for p, m in exc.problems]) from None
        out.append((name, admit(sc, settings, prefix=prefix)[1]))
    return site_name, out, sample_text


def _field(path: str) -> str:
    """A field of :func:`twin.sweep.generate_cases`' problems as a field of the request body."""
    return "n1" if path == "n-1" else path


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=RunAccepted, dependencies=[Depends(require_write)],
             responses={429: problem_doc("the queue is full")})
def create_sweep(body: SweepCreate, services: ServicesDep, settings: SettingsDep, response: Response) -> RunAccepted:
    """Submit a sweep: the base case, one case per N-1 contingency of the listed kinds (or with ``sample``, that many
    random N-k cases of those kinds, as ``twin sweep --sample --k --seed``), and the listed cases."""
    from twin.sweep import contingency_time

    site, cases, sample_text = _expand(body, settings)
    sweeps = services.sweeps
    if sweeps.n_pending + len(cases) > settings.max_queued:
        raise HTTPException(429, f"the sweep's {len(cases)} cases do not fit the queue ({sweeps.n_pending} of "
                                 f"{settings.max_queued} waiting)", headers={"Retry-After": "60"})
    sweep_id = new_run_id("sweep")
    sweep_dir = settings.home_dir / sweep_id
    services.catalog.create(run_id=sweep_id, kind="sweep", site=site, scenario=body.base.scenario.name,
                            scenario_doc=body.model_dump(mode="json"), status="queued", store=str(sweep_dir))
    try:
        sweeps.submit(sweep_id, site, cases, sweep_dir, attrs={"base_scenario": body.base.scenario.name,
                                                               "n-1": ",".join(body.n1), "sample": sample_text,
                                                               "contingency_at": contingency_time(cases[0][1], body.at)})
    except services.pool.QueueFull as exc:
        services.catalog.update(sweep_id, status="failed", error=str(exc))
        raise HTTPException(429, str(exc), headers={"Retry-After": "60"}) from None
    services.metrics.runs_submitted.labels("sweep").inc()
    response.headers["Location"] = f"/sweeps/{sweep_id}"
    return RunAccepted(id=sweep_id, status="queued", links={"self": f"/sweeps/{sweep_id}", "kpis": f"/sweeps/{sweep_id}/kpis"})


@router.get("", response_model=SweepsPublic)
def list_sweeps(catalog: CatalogDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> SweepsPublic:
    """List sweeps, newest first."""
    recs = catalog.list(kind="sweep", limit=limit, offset=offset)
    return SweepsPublic(data=[public(r) for r in recs], count=len(recs))


@router.get("/{sweep_id}", response_model=SweepPublic)
def read_sweep(sweep_id: RunId, catalog: CatalogDep) -> SweepPublic:
    """Status and progress of a sweep and of each of its cases."""
    rec = get_record(catalog, sweep_id, "sweep")
    children = sorted(catalog.list(parent=sweep_id, limit=1_000_000), key=lambda r: r.created)
    st, progress, error, counts = sweep_summary(children)
    if rec.status not in ("queued", "running"):  # an interrupted sweep keeps the reason recorded
        st, error = rec.status, rec.error or error
    else:  # ended once its results are written, whatever its cases say
        st, error = ("running" if "running" in (rec.status, st) or st not in ("queued", "running") else "queued"), None
    out = public(rec).model_dump() | {"status": st, "progress_pct": round(100 * progress, 3), "error": error}
    cases = [SweepCasePublic(case=c.scenario, run_id=c.id, status=c.status, progress_pct=round(100 * c.progress, 3), error=c.error)
             for c in children]
    return SweepPublic(**out, counts=counts, cases=cases)


@router.get("/{sweep_id}/kpis", response_model=SweepKpis)
def read_sweep_kpis(sweep_id: RunId, catalog: CatalogDep) -> SweepKpis:
    """KPIs of the finished cases, and those cases ranked worst first (unserved energy, GPU-hours lost, lowest frequency)."""
    from twin.sweep import kpi_dataset, rank_cases, sweep_islands

    from ..services import get_site

    rec = get_record(catalog, sweep_id, "sweep")
    children = sorted(catalog.list(parent=sweep_id, limit=1_000_000), key=lambda r: r.created)
    done = [c for c in children if c.status == "done" and c.kpis]
    rows = [{"case": c.scenario, "run_id": c.id, "status": c.status, "kpis": c.kpis if c.status == "done" else None} for c in children]
    ranking: list[str] = []
    if done:
        try:
            site_islands = [i.name for i in get_site(rec.site).islands()]
        except LookupError:
            site_islands = []
        kpis = [{**c.kpis, "case": c.scenario} for c in done]
        ds = kpi_dataset(kpis, sweep_islands(kpis, site_islands))  # islands a branch outage split off included
        ranking = rank_cases(ds)
    return SweepKpis(id=sweep_id, complete=len(done) == len(children), cases=finite(rows), ranking=ranking)



@router.delete("/{sweep_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[Depends(require_write)])
def delete_sweep(sweep_id: RunId, catalog: CatalogDep, services: ServicesDep) -> Response:
    """Delete a sweep: cancel its unfinished cases, then remove every case and the results."""
    rec = get_record(catalog, sweep_id, "sweep")
    services.sweeps.cancel(sweep_id, delete=True)
    for child in catalog.list(parent=sweep_id, limit=1_000_000):
        delete_record(services, child)
    delete_record(services, catalog.get(sweep_id) or rec)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
