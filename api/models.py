"""Request and response schemas, in families per resource (``SiteSummary/SitePublic``, ``RunPublic/RunsPublic``…).

Field names carry units (``p_mw``, ``t_c``, ``f_hz``, ``_s``); margins and fractions are ratios (``_frac``).
The scenario document itself is :class:`twin.scenario.Scenario`, the schema of the TOML files.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from twin.scenario import EventSpec, Number, Scenario, SweepCase, TimeValue

__all__ = [
    "finite",
    "Problem", "FieldProblem", "Health",
    "SiteSummary", "SitesPublic", "IslandPublic", "SitePublic", "NetworkPublic",
    "RunPublic", "RunDetail", "RunsPublic", "RunAccepted", "Kpis",
    "SweepCreate", "SweepCase", "SweepPublic", "SweepCasePublic", "SweepsPublic", "SweepKpis",
    "Telemetry", "TelemetryAccepted", "WhatIf", "WhatIfResult",
    "LiveState", "LiveEvent", "LiveIsland", "LiveHall", "LiveTurbine", "LiveBess", "LiveGridTie",
]


def finite(x):
    """JSON has no NaN or infinity: replace non-finite floats by None, recursively."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [finite(v) for v in x]
    return x


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- errors and health
class FieldProblem(BaseModel):
    """One problem: the field path (``scenario.horizon``, ``events[0].target``) and what was expected."""

    field: str
    message: str


class Problem(BaseModel):
    """An error as RFC 9457 problem details (``application/problem+json``): its type, a sentence, and the field
    problems where the input was at fault (see :mod:`api.problems`)."""

    type: str = Field("about:blank", description="a URI reference of the kind of problem: about:blank when the status "
                      "says it all, else one of /problems/invalid-input, /problems/storage-unavailable, /problems/internal-error")
    title: str = Field(description="short summary of the type (the HTTP status phrase for about:blank)")
    status: int = Field(ge=100, le=599, description="the HTTP status code of the response")
    detail: str = Field(description="what went wrong with this request, in one sentence")
    instance: str = Field(description="the path of the request")
    errors: list[FieldProblem] = Field(default_factory=list, description="field paths and what was expected (input problems; else empty)")


class Health(BaseModel):
    """What a probe needs: ``ok`` or ``degraded`` (with the problems), and the state of each part."""

    status: Literal["ok", "degraded"]
    version: str
    live: Literal["starting", "running", "failed", "disabled"] = Field(description="the live twin")
    catalog: Literal["ok", "read-only", "full", "write-failed", "unreadable", "unreachable"] = Field(
        description="the run catalog and data directory (write-failed: a write was refused in the last minute)")
    workers_status: Literal["ok", "stopped"] = Field(description="the worker pool's dispatcher and reaper")
    workers: int
    runs_active: int
    runs_queued: int
    sweep_cluster: Literal["external", "local", "local (not started)"] = Field(
        description="what runs sweeps: the dask scheduler of TWIN_DASK_SCHEDULER, or the service's local cluster")
    sweep_cases_pending: int = Field(description="cases of running sweeps not finished yet")
    stream_subscribers: int = Field(description="server-sent event streams open")
    problems: list[str] = Field(description="why the service is degraded (empty when ok)")


# ---------------------------------------------------------------- sites
class SiteSummary(BaseModel):
    """A loadable reference site, campus or variant."""

    id: str = Field(description="reference name, e.g. 'memphis' or 'colossus1:sub22'")
    kind: Literal["site", "campus"]
    name: str
    label: str
    as_of: str
    description: str


class SitesPublic(BaseModel):
    data: list[SiteSummary]
    count: int


class IslandPublic(BaseModel):
    """An electrical island at the nominal operating point (design-day ambient) [MW, MWh, %]."""

    name: str
    grid_tied: bool
    buses: int
    turbines: int
    bess: int
    halls: int
    p_iso_mw: float
    p_derated_mw: float
    p_online_derated_mw: float
    p_grid_limit_mw: float
    p_bess_mw: float
    e_bess_mwh: float
    p_it_mw: float
    p_cooling_mw: float
    p_other_mw: float
    p_load_mw: float
    margin_pct: float | None
    margin_bess_pct: float | None


class SitePublic(SiteSummary):
    members: list[str]
    t_amb_design_c: float
    components: dict[str, int] = Field(description="component kind → count")
    islands: list[IslandPublic]


class NetworkPublic(BaseModel):
    """The electrical network of a site: buses, branches (lines, transformers), units and loads."""

    site: str
    buses: list[dict[str, Any]]
    branches: list[dict[str, Any]]
    units: list[dict[str, Any]]
    loads: list[dict[str, Any]]


# ---------------------------------------------------------------- runs
RunStatus = Literal["queued", "running", "done", "failed", "cancelled"]


class RunPublic(BaseModel):
    """A run as listed: status, progress and timing."""

    id: str
    kind: Literal["run", "sweep"]
    parent: str | None
    site: str
    scenario: str
    status: RunStatus
    progress_pct: float = Field(description="share of the horizon simulated [%]")
    eta_s: float | None = Field(description="estimated wall time to completion [s]")
    created: float = Field(description="Unix time [s]")
    started: float | None
    finished: float | None
    error: str | None


class RunDetail(RunPublic):
    scenario_doc: dict[str, Any]
    has_results: bool


class RunsPublic(BaseModel):
    data: list[RunPublic]
    count: int


class RunAccepted(BaseModel):
    id: str
    status: RunStatus
    links: dict[str, str]


class Kpis(BaseModel):
    """The key performance indicators of a finished run (twin.kpi)."""

    id: str
    kpis: dict[str, Any]


class RunEvent(BaseModel):
    """One entry of a run's sequence of events (twin.engine.Engine.event_log)."""

    t_s: float = Field(description="time from the run's start [s], to the 50 ms sub-step")
    source: Literal["scenario", "protection", "pms"]
    kind: str = Field(description="e.g. trip, open, ufls-trip, blackout, ufls-restore, unit-start, unit-online, unit-stop")
    component: str
    island: str
    value: float | None = Field(None, description="the measured quantity, in `unit` (a relay's trip frequency…)")
    unit: str
    message: str


class RunEvents(BaseModel):
    """A run's sequence of events, oldest first: its scenario events and everything they caused."""

    id: str
    events: list[RunEvent]


# ---------------------------------------------------------------- sweeps
class SweepCreate(_Strict):
    """A base scenario expanded, as ``twin sweep`` does, over N-1 contingencies (``n1``) or random N-k cases (``sample``,
    ``k``, ``seed``), plus listed cases; each case is one run. The base scenario as is is always the first case, ``base``."""

    base: Scenario
    n1: list[Literal["turbines", "branches", "bess", "chillers", "grid-ties"]] = Field(
        default_factory=list, description="N-1 kinds: one case per component of each kind (with sample: the kinds the N-k "
                                          "cases are drawn from, all kinds if none)")
    at: TimeValue | None = Field(None, description="contingency time, 'HH:MM:SS' or seconds; default 15:00 or a tenth of the horizon")
    sample: int | None = Field(None, ge=1, le=1_000_000, description="run this many random N-k cases instead of every N-1 case "
                               "(all the combinations when there are fewer), as `twin sweep --sample`")
    k: int | None = Field(None, ge=1, le=100, description="components out per random case (with sample; default 2)")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="seed of the random cases (with sample; default 0): "
                             "the same seed draws the same cases")
    cases: list[SweepCase] = Field(default_factory=list, max_length=1000)


class SweepCasePublic(BaseModel):
    case: str
    run_id: str
    status: RunStatus
    progress_pct: float
    error: str | None


class SweepPublic(RunPublic):
    counts: dict[str, int] = Field(description="cases by status")
    cases: list[SweepCasePublic]


class SweepsPublic(BaseModel):
    data: list[RunPublic]
    count: int


class SweepKpis(BaseModel):
    """KPIs of every finished case, and the finished cases ranked worst first."""

    id: str
    complete: bool
    cases: list[dict[str, Any]]
    ranking: list[str]


# ---------------------------------------------------------------- live twin
class Telemetry(_Strict):
    """Measurements fed to the live twin; each value is held until the next one."""

    p_it_mw: dict[str, Number] | None = Field(None, max_length=1000, description="measured IT power per hall id [MW]")
    t_amb_c: Number | None = Field(None, ge=-40, le=60, description="measured ambient dry-bulb [°C]")
    units: dict[str, Literal["online", "offline"]] | None = Field(
        None, max_length=10_000, description="unit status by component id (turbines, batteries, chillers, grid ties, lines, transformers)")


class TelemetryAccepted(BaseModel):
    time_s: float
    applied: list[str]


class WhatIf(_Strict):
    """A what-if from the current live state: events at times from now, over a horizon."""

    horizon: TimeValue = Field("00:15:00", description="'HH:MM:SS' or seconds; at least one step of the live twin")
    events: list[EventSpec] = Field(default_factory=list, max_length=1000)


class WhatIfResult(BaseModel):
    from_time_s: float
    horizon_s: float
    wall_s: float
    kpis: dict[str, Any]


class LiveIsland(BaseModel):
    f_hz: float | None
    grid_tied: bool | None
    p_load_mw: float | None
    p_turbine_mw: float
    p_bess_mw: float
    p_grid_mw: float
    p_unserved_mw: float | None
    p_loss_mw: float | None
    capacity_mw: float
    reserve_margin_frac: float | None
    n1_margin_frac: float | None
    largest_unit: str | None
    largest_unit_mw: float


class LiveHall(BaseModel):
    p_it_mw: float | None
    p_cooling_mw: float | None
    t_gpu_c: float | None
    t_coolant_c: float | None
    throttle: float | None


class LiveTurbine(BaseModel):
    status: str
    p_mw: float | None


class LiveBess(BaseModel):
    p_mw: float | None
    soc: float | None
    available: bool


class LiveGridTie(BaseModel):
    p_mw: float | None
    closed: bool


class LiveEvent(BaseModel):
    """A request that changed or questioned the live twin (telemetry applied, a what-if started)."""

    time_s: float = Field(description="live time it applied at [s since the live twin started]")
    source: Literal["telemetry", "whatif"]
    message: str


class LiveState(BaseModel):
    """The live twin's state after its latest step."""

    site: str
    time: str = Field(description="simulated time (ISO 8601)")
    time_s: float = Field(description="seconds since the live twin started")
    wall_time: float = Field(description="Unix time of the step [s]")
    lag_steps: int = Field(description="steps the loop was behind real time")
    t_amb_c: float | None
    islands: dict[str, LiveIsland]
    halls: dict[str, LiveHall]
    turbines: dict[str, LiveTurbine]
    bess: dict[str, LiveBess]
    grid_ties: dict[str, LiveGridTie]
    events: list[LiveEvent] = Field(default_factory=list, description="the latest telemetry and what-if requests "
                                    "(up to 20, oldest first): markers for displays")
