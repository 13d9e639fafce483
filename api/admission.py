"""What a submitted scenario must satisfy before it is queued (the service's limits, not physics).

* its site is a reference name (file paths are refused: the service never reads arbitrary files);
* no weather profile or workload trace file (they would be read from the server's disk);
* horizon, step count and estimated cost (:func:`estimated_cost_s`) within the configured caps;
* its events resolve against the site (:func:`twin.scenario.resolve_events`).

Every problem is an :class:`sites.InputError` with field paths, which the app answers with 422.
"""

from __future__ import annotations

from typing import Any

from sites import InputError
from twin.scenario import Scenario, ScenarioError, resolve_events

from .config import Settings
from .services import get_site, site_names

__all__ = ["admit", "estimated_cost_s"]

#: Wall time of one engine step on one core of the reference machine [s]: a fixed part, and a part that grows
#: with the sub-second workload samples of a step (1/step). Measured with twin.sweep.run_case on memphis:
#: 6 h at 1 s, 28 µs/step; 1 h at 0.1 s, 55 µs/step.
COST_PER_STEP_S = 2.5e-5
COST_PER_STEP_HZ_S = 3.0e-6


def estimated_cost_s(sc: Scenario) -> float:
    """Estimated wall time of a run on one worker [s]: its steps, each costlier the shorter it is."""
    return sc.n_steps * (COST_PER_STEP_S + COST_PER_STEP_HZ_S / sc.scenario.step_s)


def admit(sc: Scenario, settings: Settings, *, prefix: str = "", origin: str = "request body") -> tuple[str, dict[str, Any]]:
    """Check a scenario for execution; returns (site name, scenario document)."""
    problems: list[tuple[str, str]] = []
    site_name = sc.scenario.site
    if site_name not in site_names():
        problems.append((f"{prefix}scenario.site", f"unknown site {site_name!r}; expected one of {', '.join(site_names())}"))
    if sc.weather.profile is not None:
        problems.append((f"{prefix}weather.profile", "profile files are not accepted over the API; give t_amb_c or design_day"))
    if sc.workload.trace is not None:
        problems.append((f"{prefix}workload.trace", "trace files are not accepted over the API"))
    if sc.horizon_s > settings.max_horizon_s:
        problems.append((f"{prefix}scenario.horizon", f"expected at most {settings.max_horizon_s:g} s (the configured cap), got {sc.horizon_s:g} s"))
    elif sc.n_steps > settings.max_steps:
        problems.append((f"{prefix}scenario.step_s", f"{sc.n_steps} steps; expected at most {settings.max_steps} (the configured cap)"))
    elif (cost := estimated_cost_s(sc)) > settings.max_run_cost_s:
        problems.append((f"{prefix}scenario.step_s", f"the run would take about {cost:.0f} s of one worker (step {sc.scenario.step_s:g} s over "
                         f"{sc.horizon_s:g} s); expected at most {settings.max_run_cost_s:g} s (the configured cap): use a longer step or a shorter horizon"))
    if problems:
        raise InputError(origin, problems)
    try:
        resolve_events(sc, get_site(site_name), origin=origin)
    except ScenarioError as exc:
        raise InputError(origin, [(f"{prefix}{p}", m) for p, m in exc.problems]) from None
    return site_name, sc.model_dump(mode="json")
