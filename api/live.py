"""The live twin: the reference campus stepped in real time, fed by telemetry, read from a cached snapshot.

A background thread owns an :class:`twin.engine.Engine` and advances it one step per period (1 s),
catching up at most ``MAX_CATCH_UP`` steps when it falls behind. After every step it builds the
snapshot (:class:`api.models.LiveState`: the last values of the result variables, power by source and
reserve / N-1 margins per island from :func:`twin.margins.reserve_margins`) and serialises it once;
``GET /live/state`` returns those bytes, so polling costs no simulation and no JSON encoding.

Telemetry (hall power, ambient, unit status) is applied to the engine under its lock and held until
changed. A what-if copies the engine under the lock (:meth:`Engine.copy`) and runs the copy in a
single worker thread, so the live loop never waits for it.
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from sites import InputError, load_site
from twin.scenario import Event, ScenarioError, load_scenario, resolve_events

from .models import LiveState, Telemetry, WhatIf

__all__ = ["LiveTwin", "LiveUnavailable", "UNIT_ACTIONS"]

log = logging.getLogger("twin.api.live")

#: Most steps advanced in one wake-up when the loop falls behind real time.
MAX_CATCH_UP = 60
#: Telemetry unit status → action, per component kind (:data:`twin.scenario.ACTIONS`).
UNIT_ACTIONS: dict[str, dict[str, str]] = {
    "turbines": {"online": "start", "offline": "trip"},
    "bess": {"online": "restore", "offline": "fail"},
    "chillers": {"online": "restore", "offline": "fail"},
    "grid_ties": {"online": "close", "offline": "open"},
    "lines": {"online": "close", "offline": "open"},
    "transformers": {"online": "close", "offline": "open"},
}
_STATUS = {0: "standby", 1: "online", 2: "starting", 3: "tripped"}
#: Telemetry and what-if requests listed in the state (markers for displays).
RECENT_EVENTS = 20


class LiveUnavailable(Exception):
    """The live twin has no state (starting, disabled, or its engine failed)."""


def _f(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


class LiveTwin:
    """The live twin of ``site_name``.

    Parameters
    ----------
    site_name : str
        A reference site (``memphis``).
    period_s : float
        Wall-clock period of one step [s].
    whatif_max_horizon_s, whatif_timeout_s : float
        Limits of one what-if.
    on_step : callable(LiveTwin), optional
        Called after every snapshot (metrics).
    """

    def __init__(self, site_name: str, period_s: float = 1.0, whatif_max_horizon_s: float = 3600.0,
                 whatif_timeout_s: float = 120.0, on_step=None):
        self.site_name = site_name
        self.period_s = period_s
        self.whatif_max_horizon_s = whatif_max_horizon_s
        self.whatif_timeout_s = whatif_timeout_s
        self.on_step = on_step
        self.status = "starting"
        self.error: str | None = None
        self.site = None
        self.engine = None
        self.snapshot: LiveState | None = None
        self.snapshot_json: bytes | None = None
        self.step_wall_s = 0.0
        self.steps = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._whatif = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-whatif")
        self._whatif_busy = threading.Semaphore(1)
        self._start_dt: datetime | None = None
        self.recent_events: deque[dict[str, Any]] = deque(maxlen=RECENT_EVENTS)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="twin-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
        self._whatif.shutdown(wait=False, cancel_futures=True)

    def _build(self) -> None:
        from twin.engine import Engine

        site = load_site(self.site_name)
        now = datetime.now().replace(microsecond=0)
        doc = {"scenario": {"name": "live", "site": self.site_name, "start": now.isoformat(), "horizon": 10 * 365 * 86400.0}}
        sc = load_scenario(doc, origin="live twin")
        engine = Engine(site, sc, [], base_dir=None)
        self.site, self.engine, self._start_dt = site, engine, now
        self._kinds = {c.id: k for k in UNIT_ACTIONS for c in getattr(site, k)}

    def _run(self) -> None:
        try:
            self._build()
            with self._lock:
                seg = self.engine.advance(1)
                self._publish(seg, 0)
        except Exception as exc:  # the service stays up; /live answers 503 with the reason
            self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
            log.error("live twin unavailable: %s", self.error)
            return
        self.status = "running"
        gc.collect()
        gc.freeze()  # the site, the engine and the imported modules stay: full collections no longer walk them (shorter pauses)
        t0 = time.monotonic()
        k = 1
        while not self._stop.wait(max(t0 + k * self.period_s - time.monotonic(), 0.0)):
            due = int((time.monotonic() - t0) / self.period_s) + 1 - k
            n = max(1, min(due, MAX_CATCH_UP))
            try:
                with self._lock:
                    tic = time.perf_counter()
                    seg = self.engine.advance(n)
                    self._publish(seg, max(due - n, 0))
                    self.step_wall_s = time.perf_counter() - tic
            except Exception as exc:
                self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
                log.exception("live twin stopped")
                return
            k += max(due, 1)

    # ------------------------------------------------------------------ snapshot
    def _publish(self, seg: dict[str, np.ndarray], lag: int) -> None:
        from twin.margins import reserve_margins
        from twin.turbines import STATUS_ONLINE

        eng = self.engine
        names = eng.coords
        last = {k: np.asarray(v)[-1] for k, v in seg.items() if np.ndim(v) >= 1 and len(v)}
        plant = eng.plant
        n_isl = len(names["island"])
        t_amb = float(last["t_amb_c"]) if "t_amb_c" in last else float("nan")
        state = eng.state() if hasattr(eng, "state") else {}
        status = last.get("turbine_status")
        if status is None:
            codes = {v: k for k, v in _STATUS.items()}
            status = np.array([codes.get(state.get("turbines", {}).get(n, {}).get("status"), 0) for n in names["turbine"]], float)
        online = np.asarray(status) == STATUS_ONLINE
        bess_state = state.get("bess", {})
        bess_ok = np.array([bess_state.get(n, {}).get("available", True) for n in names["bess"]], bool)
        ties = state.get("grid_ties", {})
        closed = np.array([ties.get(n, {}).get("closed", True) for n in names["grid_tie"]], bool)
        p_t = last.get("p_turbine_mw", last.get("p_mech_mw", np.zeros(len(names["turbine"]))))
        p_b = last.get("p_bess_mw", np.zeros(len(names["bess"])))
        p_g = last.get("p_grid_mw", np.zeros(len(names["grid_tie"])))
        soc = last.get("soc_bess", np.full(len(names["bess"]), np.nan))
        if "p_load_island_mw" in last:
            load = np.asarray(last["p_load_island_mw"], float)
        else:
            load = np.asarray(last.get("p_other_mw", np.zeros(n_isl)), float).copy()
            for h in range(len(names["hall"])):
                load[int(plant.hall[h, 0])] += float(last["p_it_mw"][h] + last["p_cooling_mw"][h])
        from twin.plant import BE_ISLAND, GT_ISLAND, TU_ISLAND

        margins = reserve_margins(plant, load_mw=load, t_amb_c=t_amb, turbine_online=online, bess_available=bess_ok,
                                  grid_closed=closed, bess_soc=soc)
        isl_state = state.get("islands", {})

        def by_island(values, arr, col) -> np.ndarray:
            out = np.zeros(n_isl)
            for j, v in enumerate(np.asarray(values, float)):
                out[int(arr[j, col])] += v
            return out

        pt_i, pb_i, pg_i = by_island(p_t, plant.turb, TU_ISLAND), by_island(p_b, plant.bess, BE_ISLAND), by_island(p_g, plant.grid, GT_ISLAND)
        islands = {}
        for i, name in enumerate(names["island"]):
            m = margins[i]
            islands[name] = {
                "f_hz": _f(last["f_hz"][i]) if "f_hz" in last else None,
                "grid_tied": isl_state.get(name, {}).get("grid_tied"),
                "p_load_mw": _f(load[i]), "p_turbine_mw": float(pt_i[i]), "p_bess_mw": float(pb_i[i]), "p_grid_mw": float(pg_i[i]),
                "p_unserved_mw": _f(last["p_unserved_mw"][i]) if "p_unserved_mw" in last else None,
                "p_loss_mw": _f(last["p_loss_mw"][i]) if "p_loss_mw" in last else None,
                "capacity_mw": m.capacity_mw, "reserve_margin_frac": _f(m.reserve_margin), "n1_margin_frac": _f(m.n1_margin),
                "largest_unit": m.largest_unit, "largest_unit_mw": m.largest_unit_mw,
            }

        def hall_var(v, h):
            return _f(last[v][h]) if v in last else None

        k = eng.k
        snap = LiveState(
            site=self.site.label,
            time=(self._start_dt + timedelta(seconds=k * eng.step_s)).isoformat(),
            time_s=k * eng.step_s,
            wall_time=time.time(),
            lag_steps=lag,
            t_amb_c=_f(t_amb),
            islands=islands,
            halls={n: {v: hall_var(v, h) for v in ("p_it_mw", "p_cooling_mw", "t_gpu_c", "t_coolant_c", "throttle")}
                   for h, n in enumerate(names["hall"])},
            turbines={n: {"status": _STATUS.get(int(status[u]), "unknown"), "p_mw": _f(p_t[u])} for u, n in enumerate(names["turbine"])},
            bess={n: {"p_mw": _f(p_b[b]), "soc": _f(soc[b]), "available": bool(bess_ok[b])} for b, n in enumerate(names["bess"])},
            grid_ties={n: {"p_mw": _f(p_g[g]), "closed": bool(closed[g])} for g, n in enumerate(names["grid_tie"])},
            events=list(self.recent_events),
        )
        self.snapshot = snap
        self.snapshot_json = snap.model_dump_json().encode()
        self.steps += 1
        if self.on_step:
            try:
                self.on_step(self)
            except Exception:
                log.exception("on_step hook failed")

    def current_json(self) -> bytes | None:
        """The latest state as JSON, or None while there is none (starting) or the twin has failed."""
        return None if self.status == "failed" else self.snapshot_json

    def require(self) -> None:
        if self.current_json() is None:
            raise LiveUnavailable(f"the live twin is {self.status}" + (f": {self.error}" if self.error else ""))

    # ------------------------------------------------------------------ telemetry
    def _check_telemetry(self, t: Telemetry, prefix: str = "") -> list[tuple[str, str]]:
        halls = set(self.engine.coords["hall"])
        problems = [(f"{prefix}p_it_mw.{h}", f"unknown hall; expected one of {', '.join(sorted(halls))}") for h in (t.p_it_mw or {}) if h not in halls]
        problems += [(f"{prefix}p_it_mw.{h}", f"expected a finite power from 0 to 10000 MW, got {v}") for h, v in (t.p_it_mw or {}).items()
                     if h in halls and not (math.isfinite(v) and 0 <= v <= 1e4)]
        problems += [(f"{prefix}units.{u}", "unknown component; expected a turbine, battery, chiller, grid tie, line or transformer id")
                     for u in (t.units or {}) if u not in self._kinds]
        return problems

    def apply_telemetry(self, batch: Telemetry | list[Telemetry]) -> tuple[float, list[str]]:
        """Check telemetry (one message or a batch) against the site, then apply it in order.

        Nothing is applied when any message is wrong: raises InputError naming the bad fields
        (``[i].field`` in a batch).
        """
        self.require()
        items = batch if isinstance(batch, list) else [batch]
        problems = [p for i, t in enumerate(items) for p in self._check_telemetry(t, f"[{i}]." if isinstance(batch, list) else "")]
        if problems:
            raise InputError("telemetry", problems)
        applied = []
        with self._lock:
            eng = self.engine
            now = eng.k * eng.step_s
            for t in items:
                if t.p_it_mw or t.t_amb_c is not None:
                    eng.set_inputs(p_it_mw=t.p_it_mw or None, t_amb_c=t.t_amb_c)
                    applied += [f"p_it_mw {h}" for h in (t.p_it_mw or {})] + (["t_amb_c"] if t.t_amb_c is not None else [])
                for unit, st in (t.units or {}).items():
                    kind = self._kinds[unit]
                    action = UNIT_ACTIONS[kind][st]
                    eng.apply_event(Event(now, action, kind, unit))
                    applied.append(f"{action} {unit}")
            self.recent_events.append({"time_s": now, "source": "telemetry", "message": ", ".join(applied) or "no change"})
            return now, applied

    # ------------------------------------------------------------------ what-if
    def whatif(self, req: WhatIf) -> dict[str, Any]:
        """Run a what-if from the current state (blocking; call from a worker thread)."""
        self.require()
        doc = {"scenario": {"name": "whatif", "site": self.site_name, "horizon": req.horizon},
               "events": [e.model_dump(exclude_none=True) for e in req.events]}
        try:
            sc = load_scenario(doc, origin="request body")
        except ScenarioError as exc:  # the request's fields are at the top level
            raise InputError("request body", [(p.removeprefix("scenario."), m) for p, m in exc.problems]) from None
        if sc.horizon_s > self.whatif_max_horizon_s:
            raise InputError("request body", [("horizon", f"expected at most {self.whatif_max_horizon_s:g} s, got {sc.horizon_s:g} s")])
        events = resolve_events(sc, self.site, origin="request body")
        if not self._whatif_busy.acquire(blocking=False):
            raise WhatIfBusy("another what-if is running; retry when it has finished")
        try:
            with self._lock:
                eng = self.engine.copy()
                self.recent_events.append({"time_s": eng.k * eng.step_s, "source": "whatif",
                                           "message": f"what-if over {sc.horizon_s:g} s with {len(events)} event(s)"})
            fut: Future = self._whatif.submit(_run_whatif, eng, events, sc.horizon_s, self.site, req)
            return fut.result(timeout=self.whatif_timeout_s)
        finally:
            self._whatif_busy.release()


class WhatIfBusy(Exception):
    """A what-if is already running."""


def _run_whatif(eng, events: list[Event], horizon_s: float, site, req: WhatIf) -> dict[str, Any]:
    """Advance a copy of the live engine over the horizon, applying events at their times; its KPIs."""
    from twin.kpi import KpiAccumulator

    tic = time.perf_counter()
    t0 = eng.k * eng.step_s
    eng.plan_events(events)  # island slots for the splits the what-if's switchings can make
    kpi = KpiAccumulator(eng.plant, eng.step_s, t_ref_s=events[0].t_s if events else 0.0, site=site)
    n_total = int(round(horizon_s / eng.step_s))
    k = 0
    pending = list(events)
    while k < n_total:
        while pending and pending[0].t_s <= k * eng.step_s + 1e-9:
            ev = pending.pop(0)
            eng.apply_event(Event(t0 + ev.t_s, ev.action, ev.kind, ev.target, ev.value))
        end = n_total if not pending else min(n_total, int(math.ceil(pending[0].t_s / eng.step_s - 1e-9)))
        n = max(end - k, 1)
        seg = eng.advance(n)
        kpi.update(seg)
        k += len(seg["f_hz"])  # fewer than n when a tie trips on its import limit (the engine stops there)
    return {"from_time_s": t0, "horizon_s": horizon_s, "wall_s": time.perf_counter() - tic, "kpis": kpi.result()}
