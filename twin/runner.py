"""Run one scenario on one site: engine → recorder → KPIs, recorded in the run catalog.

:func:`run` is the single entry used by the CLI (``twin run``), sweeps and the API's worker pool.
Whatever happens, the catalog and the run directory stay consistent:

* success: status ``done``, ``kpis.json`` and the KPIs in the catalog and the store's attributes;
* an error or an interruption (Ctrl-C, a cancel request): status ``failed`` or ``cancelled`` with the
  reason; what was already streamed to the store is kept and the store is marked ``incomplete``;
* a process that dies outright leaves ``running`` behind, which :meth:`Catalog.fail_interrupted`
  turns into ``failed`` at the next server start.
"""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sites import load_site

from .catalog import Catalog, new_run_id, twin_home
from .scenario import Scenario, load_scenario, resolve_events

__all__ = ["RunResult", "RunCancelled", "run", "scenario_doc"]


class RunCancelled(Exception):
    """Raised inside a run when its cancel event is set."""


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    status: str
    kpis: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    wall_s: float = 0.0


def scenario_doc(sc: Scenario) -> dict[str, Any]:
    """The scenario as a JSON-ready document (what the catalog stores and the API returns)."""
    return sc.model_dump(mode="json")


def run(
    site,
    scenario,
    *,
    run_id: str | None = None,
    run_dir: str | Path | None = None,
    catalog: Catalog | None = None,
    progress: Callable[[float, float | None], None] | None = None,
    cancel: threading.Event | None = None,
    scenario_origin: str | Path | None = None,
) -> RunResult:
    """Simulate ``scenario`` on ``site``, stream results to ``run_dir/results.zarr``, record KPIs.

    Parameters
    ----------
    site : str or sites.Site
        A reference name (``"memphis"``) or a loaded site. Default: the scenario's ``site``.
    scenario : str, Path, dict or Scenario
        A preset name, a TOML path, a document, or a loaded scenario.
    run_id, run_dir : optional
        Default: a new id and ``$TWIN_HOME/<id>``.
    catalog : Catalog, optional
        Default: the catalog in ``$TWIN_HOME``.
    progress : callable(fraction, eta_s), optional
        Called after each segment.
    cancel : threading.Event, optional
        Set it to stop the run between segments (status ``cancelled``).

    Returns
    -------
    RunResult
        Raises the original exception after recording a failure (``KeyboardInterrupt`` too).
    """
    from .engine import Engine
    from .kpi import KpiAccumulator
    from .recorder import Recorder

    t_wall = time.perf_counter()
    origin = scenario_origin or (scenario if isinstance(scenario, (str, Path)) else "scenario")
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if site is None:
        site = sc.scenario.site
    site_obj = load_site(site) if isinstance(site, (str, Path)) else site
    events = resolve_events(sc, site_obj, origin=origin)

    catalog = catalog or Catalog()
    run_id = run_id or new_run_id()
    run_dir = Path(run_dir) if run_dir is not None else twin_home() / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    if catalog.get(run_id) is None:
        catalog.create(run_id=run_id, site=site_obj.label, scenario=sc.scenario.name, scenario_doc=scenario_doc(sc),
                       store=str(run_dir))
    catalog.update(run_id, status="running", started=time.time(), pid=os.getpid(), store=str(run_dir), progress=0.0)
    _write_status(run_dir, "running")

    recorder = None
    try:
        engine = Engine(site_obj, sc, events, base_dir=Path(origin).parent if isinstance(origin, (str, Path)) and Path(str(origin)).suffix else None,
                        reuse_outputs=True)  # each segment is recorded and reduced before the next
        recorder = Recorder(run_dir, engine.coords, sc.record.full_rate, sc.record.per_minute, sc.scenario.start,
                            sc.scenario.step_s, engine.provenance(run_id))
        first_event = events[0].t_s if events else 0.0
        kpi = KpiAccumulator(engine.plant, sc.scenario.step_s, t_ref_s=first_event, site=site_obj)
        n_total = sc.n_steps
        last_update = 0.0
        _start_events(run_dir)
        n_logged = 0
        for seg in engine.segments():
            if cancel is not None and cancel.is_set():
                raise RunCancelled("cancelled on request")
            recorder.append(seg)
            kpi.update(seg)
            n_logged = _append_events(run_dir, engine.event_log, n_logged)  # readable (and streamed) as the run goes
            done = recorder.n_steps / n_total
            elapsed = time.perf_counter() - t_wall
            eta = elapsed * (1 - done) / done if done > 0 else None
            if progress:
                progress(done, eta)
            now = time.monotonic()
            if now - last_update > 0.5 or done >= 1.0:
                catalog.update(run_id, progress=done, eta_s=eta)
                last_update = now
        kpis = kpi.result(engine.event_log)
        wall = time.perf_counter() - t_wall
        recorder.close({"status": "done", "kpis": kpis, "wall_s": wall})
        (run_dir / "kpis.json").write_text(json.dumps(kpis, indent=2, default=str))
        (run_dir / "scenario.json").write_text(json.dumps(scenario_doc(sc), indent=2))
        catalog.update(run_id, status="done", progress=1.0, eta_s=0.0, finished=time.time(), kpis=kpis)
        _write_status(run_dir, "done")
        return RunResult(run_id, run_dir, "done", kpis, None, wall)
    except BaseException as exc:  # record every way out, then re-raise
        status = "cancelled" if isinstance(exc, (RunCancelled, KeyboardInterrupt)) else "failed"
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if recorder is not None:
            try:
                recorder.close({"status": f"incomplete ({status})", "error": reason})
            except Exception:  # the store itself may be what failed
                pass
        catalog.update(run_id, status=status, error=reason, finished=time.time())
        _write_status(run_dir, status, reason, traceback.format_exc() if status == "failed" else None)
        raise


_EVENT_FIELDS = ["t_s", "source", "kind", "component", "island", "value", "unit", "message"]


def _start_events(run_dir: Path) -> None:
    """An empty ``events.csv``: the header of the sequence of events (time from the start [s], source, kind,
    component, island, value, unit, message); :func:`_append_events` adds each segment's events."""
    import csv

    from .report import EVENTS_FILE

    with open(run_dir / EVENTS_FILE, "w", newline="") as fh:
        csv.DictWriter(fh, fieldnames=_EVENT_FIELDS).writeheader()


def _append_events(run_dir: Path, events: list[dict[str, Any]], n_done: int) -> int:
    """Append the events logged since ``n_done`` to ``events.csv`` and return the count. A segment's events come
    after the previous segment's and its scenario events first, so sorting each batch keeps the file in time order."""
    import csv

    from .report import EVENTS_FILE

    new = events[n_done:]
    if new:
        with open(run_dir / EVENTS_FILE, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=_EVENT_FIELDS).writerows(sorted(new, key=lambda e: e["t_s"]))
    return len(events)


def _write_status(run_dir: Path, status: str, reason: str | None = None, tb: str | None = None) -> None:
    doc = {"status": status, "time": time.time()}
    if reason:
        doc["error"] = reason
    if tb:
        doc["traceback"] = tb
    tmp = run_dir / "status.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(run_dir / "status.json")
