"""Scenarios: horizon, weather, workload, events and what to record (TOML files or JSON documents).

A scenario file::

    [scenario]
    name = "southaven-largest-trip"
    site = "memphis"
    start = "2026-07-15T00:00:00"
    horizon = "24:00:00"              # or horizon_s = 86400

    [weather]
    design_day = "memphis-0.4pct"     # or profile = "ambient.csv", or t_amb_c = 30.0

    [workload]
    seed = 7
    swing_frac = 0.3

    [[events]]
    at = "14:00:00"                   # or seconds from the start
    do = "trip"
    target = "southaven/titan350-07"  # a glob with count = N picks N matches, seeded

Validation happens twice: the document against the schema (:func:`load_scenario`), then the events
against the site they run on (:func:`resolve_events`): unknown targets, actions a component cannot
take and counts larger than the matches are reported with the file and the field path.
"""

from __future__ import annotations

import copy
import fnmatch
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, create_model, field_validator, model_validator

from sites.inputs import InputError, read_toml, validate

from .variables import VARIABLES

__all__ = [
    "ScenarioError",
    "EventSpec",
    "WeatherSpec",
    "WorkloadSpec",
    "RecordSpec",
    "ControlSpec",
    "Scenario",
    "SweepCase",
    "SweepCases",
    "WeatherPatch",
    "WorkloadPatch",
    "Event",
    "ACTIONS",
    "SCENARIO_DIR",
    "list_scenarios",
    "load_scenario",
    "parse_time_s",
    "resolve_events",
    "Number",
    "TimeValue",
    "MAX_TIME_S",
    "START_RANGE",
    "STEP_RANGE_S",
]

SCENARIO_DIR = Path(__file__).parent / "data" / "scenarios"

#: What each action may target (component kinds of a site).
ACTIONS: dict[str, tuple[str, ...]] = {
    "trip": ("turbines", "bess", "lines", "transformers", "grid_ties"),
    "open": ("grid_ties", "lines", "transformers"),
    "close": ("grid_ties", "lines", "transformers"),
    "fail": ("chillers", "bess", "turbines"),
    "derate": ("turbines", "chillers", "bess"),
    "start": ("turbines",),
    "restore": ("turbines", "bess", "chillers", "lines", "transformers", "grid_ties"),
    "set": ("loads",),
}


class ScenarioError(InputError):
    """A scenario file or document is malformed (see :class:`sites.inputs.InputError`)."""


#: Longest time a scenario may name (horizon, event time): 50 years [s]. With :data:`START_RANGE` every
#: simulated instant stays inside the nanosecond timestamps of the results (years 1678–2261).
MAX_TIME_S = 50 * 365.25 * 86400.0
#: Earliest and latest scenario start.
START_RANGE = (datetime(1900, 1, 1), datetime(2200, 1, 1))
#: Shortest and longest time step [s]. A run's cost grows faster than 1/step (each shorter step samples more
#: of the sub-second workload; see the API's admission by estimated cost).
STEP_RANGE_S = (0.1, 60.0)
_TIME_PATTERN = r"^\s*(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*$"
#: The same, as the schema states it (minutes and seconds below 60; the parser names that rule when broken).
_TIME_SCHEMA_PATTERN = r"^\s*(?:(\d+):)?([0-5]?\d):([0-5]?\d(?:\.\d+)?)\s*$"


def parse_time_s(value: str | float | int) -> float:
    """``"HH:MM:SS"`` (or ``"MM:SS"``) or a number of seconds → seconds (finite, 0 … :data:`MAX_TIME_S`)."""
    if isinstance(value, bool):
        raise ValueError("expected 'HH:MM:SS' or a number of seconds, got a boolean")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number of seconds, got {value}")
        if value < 0:
            raise ValueError(f"expected a time ≥ 0 s, got {value}")
        if value > MAX_TIME_S:
            raise ValueError(f"expected a time of at most {MAX_TIME_S:.0f} s (50 years), got {value:g}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected 'HH:MM:SS' or a number of seconds, got {type(value).__name__}")
    m = re.fullmatch(_TIME_PATTERN, value[:64])
    if not m:
        raise ValueError(f"expected 'HH:MM:SS' or a number of seconds, got {value[:64]!r}")
    h, mi, s = int(m.group(1) or 0), int(m.group(2)), float(m.group(3))
    if mi >= 60 or s >= 60:
        raise ValueError(f"minutes and seconds must be below 60, got {value!r}")
    t = h * 3600.0 + mi * 60.0 + s
    if t > MAX_TIME_S:
        raise ValueError(f"expected a time of at most {MAX_TIME_S / 3600:.0f} hours (50 years), got {value!r}")
    return t


def _time_value(v):
    parse_time_s(v)  # one message for every way a time can be wrong (NaN, booleans, negative, too long)
    return v


#: A number that is a number: finite, and not a boolean (JSON ``false`` is not 0). Integers are accepted.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
#: A time from the start: ``'HH:MM:SS'`` or seconds (finite, 0 … :data:`MAX_TIME_S`).
TimeValue = Annotated[
    Annotated[str, Field(max_length=64, json_schema_extra={"pattern": _TIME_SCHEMA_PATTERN})] | Annotated[float, Field(ge=0, le=MAX_TIME_S, strict=True, allow_inf_nan=False)],
    BeforeValidator(_time_value),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventSpec(_Strict):
    """One event: at a time, do an action to a target (a component id or a glob)."""

    at: TimeValue = Field(description="'HH:MM:SS' from the start, or seconds")
    do: Literal["trip", "open", "close", "fail", "derate", "start", "restore", "set"]
    target: str = Field(min_length=3, max_length=200, description="'site/component-id' or a glob such as 'colossus2/chiller-*'",
                        json_schema_extra={"pattern": "/"})
    count: int | None = Field(None, ge=1, le=100_000, strict=True, description="with a glob: pick this many matches (seeded)")
    value: Number | None = Field(None, description="derate: the fraction of capacity kept [0-1]; set: the load's new power [MW]")

    @field_validator("target")
    @classmethod
    def _qualified(cls, v: str) -> str:
        if "/" not in v:
            raise ValueError(f"expected 'site/component-id', got {v!r}")
        return v

    @model_validator(mode="after")
    def _value(self) -> "EventSpec":
        if self.do == "derate":
            if self.value is None or not 0.0 <= self.value <= 1.0:
                raise ValueError("derate needs value = the fraction of capacity kept, between 0 and 1")
        elif self.do == "set":
            if self.value is None or not 0.0 <= self.value < 1e5:
                raise ValueError("set needs value = the load's new active power [MW], between 0 and 100,000")
        elif self.value is not None:
            raise ValueError(f"'{self.do}' takes no value")
        return self

    @property
    def t_s(self) -> float:
        return parse_time_s(self.at)


class WeatherSpec(_Strict):
    """Ambient temperature: a named design day, a profile file (CSV: time_s or HH:MM:SS, t_amb_c), or a constant."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={  # at most one of profile and t_amb_c
        "not": {"required": ["profile", "t_amb_c"], "properties": {"profile": {"type": "string"}, "t_amb_c": {"type": "number"}}}})

    design_day: Literal["memphis-0.4pct", "memphis-july-1980"] | None = "memphis-0.4pct"
    profile: str | None = Field(None, max_length=4096)
    t_amb_c: Number | None = Field(None, ge=-40, le=60)

    @model_validator(mode="after")
    def _one(self) -> "WeatherSpec":
        given = [self.profile is not None, self.t_amb_c is not None]
        if sum(given) > 1:
            raise ValueError("give at most one of profile or t_amb_c (with or instead of design_day)")
        if any(given):
            self.design_day = None
        return self


class SmoothingSpec(_Strict):
    """NVIDIA GB200/GB300 GPU power smoothing (NVML; docs/physics.md §1, [P9] [P4])."""

    floor_frac: Number = Field(0.6, ge=0.2, le=0.9, description="power floor [fraction of TDP] (settable 20-90 %)")
    ramp_up_frac_per_s: Number = Field(0.5, gt=0, le=100, description="ramp-up rate [fraction of TDP per s]")
    ramp_down_frac_per_s: Number = Field(0.5, gt=0, le=100, description="ramp-down rate [fraction of TDP per s]")
    hysteresis_s: Number = Field(1.0, ge=0, le=60, description="ramp-down hysteresis [s]")


class PsuStorageSpec(_Strict):
    """GB300 rack PSU energy storage: a low-pass of rack power within an energy budget ([P2], [E])."""

    tau_s: Number = Field(0.5, gt=0, le=10, description="low-pass time constant [s] (0.1-1 s)")
    energy_s: Number = Field(3.0, gt=0, le=60, description="energy budget [s of rack peak power] (1-5 s)")


class WorkloadSpec(_Strict):
    """Synthetic training/inference mix (seeded), or a measured trace (CSV: time_s, then MW per hall)."""

    seed: int = Field(0, ge=0, le=2**32 - 1, strict=True, description="seed of the synthetic workload (0 … 2³²−1)")
    gpu_power_frac: Number = Field(0.8, gt=0, le=1, description="mean GPU power in compute phases [fraction of TDP]")
    swing_frac: Number = Field(0.15, ge=0, le=1, description="amplitude of synchronised swings [fraction of IT]")
    swing_period_s: Number = Field(4.0, ge=0.5, le=600, description="period of compute/communication iterations [s]")
    checkpoint_interval_s: Number = Field(1800.0, ge=60, le=7 * 86400, description="time between checkpoints [s]")
    checkpoint_duration_s: Number = Field(30.0, ge=0, le=3600, description="length of a checkpoint pause [s]")
    inference_share: Number = Field(0.0, ge=0, le=1, description="share of IT serving inference with a daily shape")
    trace: str | None = Field(None, max_length=4096)
    smoothing: SmoothingSpec | None = Field(None, description="GPU power smoothing (off when absent)")
    psu_storage: PsuStorageSpec | None = Field(None, description="rack PSU energy storage (off when absent)")


class RecordSpec(_Strict):
    """What to record at full rate and what as per-minute min/mean/max."""

    full_rate: list[str] = Field(default_factory=lambda: list(VARIABLES), max_length=len(VARIABLES),
                                 json_schema_extra={"items": {"type": "string", "enum": list(VARIABLES)}})
    per_minute: list[str] = Field(default_factory=list, max_length=len(VARIABLES),
                                  json_schema_extra={"items": {"type": "string", "enum": list(VARIABLES)}})

    @model_validator(mode="before")
    @classmethod
    def _per_minute_leaves_full_rate(cls, data):
        """Listing a variable per minute removes it from the default full-rate list."""
        if isinstance(data, dict) and isinstance(data.get("per_minute"), list) and "full_rate" not in data:
            data = dict(data, full_rate=[v for v in VARIABLES if v not in data["per_minute"]])
        return data

    @model_validator(mode="after")
    def _known(self) -> "RecordSpec":
        for name in self.full_rate + self.per_minute:
            if name not in VARIABLES:
                raise ValueError(f"unknown variable {name!r}; expected one of {', '.join(VARIABLES)}")
        both = set(self.full_rate) & set(self.per_minute)
        if both:
            raise ValueError(f"{sorted(both)} listed both at full rate and per minute")
        return self


class ControlSpec(_Strict):
    """Plant controls and protection (all on by default; switch off to study one mechanism alone)."""

    secondary: bool = Field(True, description="plant PMS: economic redispatch and isochronous frequency trim")
    gpu_capping: bool = Field(True, description="GPU power capping below 59.7 Hz")
    ufls: bool = Field(True, description="under-frequency load shedding")
    auto_start: bool = Field(True, description="PMS starts standby units when spinning reserve is short")


class ScenarioHeader(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=200)
    description: str = Field("", max_length=10_000)
    site: str = Field("memphis", max_length=4096)
    start: datetime = Field(datetime(2026, 7, 15), description="local date-time of the start, without a UTC offset, "
                            f"from {START_RANGE[0]:%Y-%m-%d} to {START_RANGE[1]:%Y-%m-%d}",
                            json_schema_extra={"pattern": r"^(19[0-9][0-9]|2[01][0-9][0-9])-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?$"})
    step_s: Number = Field(1.0, ge=STEP_RANGE_S[0], le=STEP_RANGE_S[1], description="time step [s]")
    horizon: TimeValue = Field("24:00:00", description="'HH:MM:SS' or seconds; at least one step")

    @field_validator("start")
    @classmethod
    def _start(cls, v: datetime) -> datetime:
        if v.tzinfo is not None:
            raise ValueError("expected a local date-time without a UTC offset (e.g. 2026-07-15T00:00:00)")
        if not START_RANGE[0] <= v <= START_RANGE[1]:
            raise ValueError(f"expected a start from {START_RANGE[0]:%Y-%m-%d} to {START_RANGE[1]:%Y-%m-%d}, got {v:%Y-%m-%d}")
        return v

    @field_validator("horizon")
    @classmethod
    def _horizon(cls, v, info: ValidationInfo):
        step = info.data.get("step_s", 1.0)
        if parse_time_s(v) < step:
            raise ValueError(f"expected a horizon of at least one step ({step:g} s), got {v!r}")
        return v


class Scenario(_Strict):
    """A validated scenario document."""

    scenario: ScenarioHeader
    weather: WeatherSpec = Field(default_factory=WeatherSpec)
    workload: WorkloadSpec = Field(default_factory=WorkloadSpec)
    events: list[EventSpec] = Field(default_factory=list)
    control: ControlSpec = Field(default_factory=ControlSpec)
    record: RecordSpec = Field(default_factory=RecordSpec)

    @property
    def horizon_s(self) -> float:
        return parse_time_s(self.scenario.horizon)

    @property
    def n_steps(self) -> int:
        return int(round(self.horizon_s / self.scenario.step_s))

    @model_validator(mode="after")
    def _events_in_horizon(self) -> "Scenario":
        h = parse_time_s(self.scenario.horizon)
        for i, e in enumerate(self.events):
            if e.t_s >= h:
                raise ValueError(f"events[{i}].at = {e.at!r} is not before the horizon ({self.scenario.horizon})")
        return self


def _patch(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` with every field optional and no default: the fields a sweep case overrides (same types and bounds)."""
    fields = {}
    for name, info in model.model_fields.items():
        info = copy.copy(info)
        info.default, info.default_factory = None, None
        fields[name] = (info.annotation | None, info)
    return create_model(f"{model.__name__}Patch", __base__=_Strict, __doc__=f"Fields of {model.__name__} to override.", **fields)


WeatherPatch = _patch(WeatherSpec)
WorkloadPatch = _patch(WorkloadSpec)


class SweepCase(_Strict):
    """An extra case of a sweep: events added to the base scenario, and weather/workload fields overridden.

    The one schema of a listed case: the ``[[cases]]`` of ``twin sweep --cases FILE`` and the ``cases`` of
    the API's ``POST /sweeps``.
    """

    name: str = Field(min_length=1, max_length=200)
    events: list[EventSpec] = Field(default_factory=list, max_length=1000)
    weather: WeatherPatch | None = None  # type: ignore[valid-type]
    workload: WorkloadPatch | None = None  # type: ignore[valid-type]


class SweepCases(_Strict):
    """A ``--cases`` file of ``twin sweep``: ``[[cases]]`` tables, each a :class:`SweepCase`."""

    cases: list[SweepCase] = Field(max_length=100_000)


def list_scenarios() -> list[str]:
    """Names of the shipped scenarios (presets)."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def load_scenario(source: str | Path | dict[str, Any], *, origin: str = "request body") -> Scenario:
    """Load a scenario from a preset name, a TOML path, or a dict (as the API receives it).

    Raises
    ------
    ScenarioError
        Naming the file (or ``origin``), the field path and what was expected.
    """
    if isinstance(source, dict):
        return validate(Scenario, source, origin, ScenarioError)
    path = Path(source)
    if not path.suffix and (SCENARIO_DIR / f"{source}.toml").exists():
        path = SCENARIO_DIR / f"{source}.toml"
    if not path.exists():
        raise ScenarioError(source, [("", f"no such scenario; expected a preset ({', '.join(list_scenarios())}) or a .toml path")])
    return validate(Scenario, read_toml(path, ScenarioError), path, ScenarioError)


@dataclass(frozen=True)
class Event:
    """An event resolved against a site: time [s], action, component kind and id."""

    t_s: float
    action: str
    kind: str
    target: str
    value: float = float("nan")


def resolve_events(scenario: Scenario, site, *, origin: str | Path = "scenario") -> list[Event]:
    """Resolve event targets (ids and globs) against a site; sorted by time.

    A glob with ``count = N`` picks N of its matches with ``numpy.random.default_rng(workload.seed)``,
    so the same scenario always picks the same components.
    """
    kinds = {k: [c.id for c in getattr(site, k)] for k in ("turbines", "bess", "chillers", "lines", "transformers", "grid_ties", "loads")}
    rng = np.random.default_rng(scenario.workload.seed)
    problems: list[tuple[str, str]] = []
    out: list[Event] = []
    for i, e in enumerate(scenario.events):
        allowed = ACTIONS[e.do]
        matches = []
        kind_of = {}
        for k, ids in kinds.items():
            for cid in fnmatch.filter(ids, e.target):
                matches.append(cid)
                kind_of[cid] = k
        if not matches:
            hint = ", ".join(sorted({c.split("/")[0] for ids in kinds.values() for c in ids}))
            problems.append((f"events[{i}].target", f"{e.target!r} matches no component of site {site.label!r} (sites: {hint})"))
            continue
        bad = sorted({kind_of[m] for m in matches} - set(allowed))
        if bad:
            problems.append((f"events[{i}].do", f"cannot {e.do} {bad[0]} ({e.target!r}); '{e.do}' applies to {', '.join(allowed)}"))
            continue
        if e.count is not None:  # without count, a glob applies to every match
            if e.count > len(matches):
                problems.append((f"events[{i}].count", f"count = {e.count} but {e.target!r} matches only {len(matches)} components"))
                continue
            matches = sorted(rng.choice(matches, size=e.count, replace=False).tolist(), key=matches.index)
        for m in matches:
            out.append(Event(e.t_s, e.do, kind_of[m], m, float("nan") if e.value is None else e.value))
    if problems:
        raise ScenarioError(origin, problems)
    return sorted(out, key=lambda ev: ev.t_s)
