"""The engine: state of a site under a scenario, advanced segment by segment.

:class:`Engine` owns the packed parameters (:mod:`twin.plant`), the state arrays, the events and the
network. :meth:`Engine.advance` runs the stepping kernel (:func:`twin.stepping.step_segment`) over a
segment, then the AC load flow over the same segment (one compiled call), and returns the segment's
results keyed like :data:`twin.variables.VARIABLES`. :meth:`Engine.segments` cuts the horizon at event
times and at ``block_steps``, applies each event between segments, and yields the segments; on a machine with
a second core it solves a segment's load flow on a second thread while the kernel steps the next segment
(the kernel needs from it only the losses at the segment's end, solved first), with the same results.

Load-flow coupling: in an islanded island every online turbine's electrical output is its mechanical
power plus an inertia-weighted share (H·S) of the island's instantaneous mismatch, as the rotors
deliver it; the network's distributed slack uses those weights, so the island balances exactly in
every step, and the frequency follows the swing equation on mechanical power. In an island with a
closed grid tie the tie is the slack. Island losses enter the kernel's power balance one segment late (the
losses at the end of a segment are held over the next).

Topology: lines, transformers and grid ties open and close at events, splitting and merging islands; the
islands are the run's fixed *slots* (:mod:`twin.topology`), planned from the scenario's switchings at
construction. At a switching the engine moves the plant's island columns, the network's islands and each
island's state, de-energises parts left without a source, and refuses a close outside the synchronisation
window (docs/physics.md §9).
"""

from __future__ import annotations

import copy as _copy
import dataclasses
from functools import lru_cache
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from . import _compile_ahead
from ._jit import njit
from .plant import (
    BE_ISLAND, BE_SOC0, CH_PLANT, CH_Q_REF_MW, CT_AUTO_START, CT_CAPPING, CT_NCOL, CT_PSU, CT_PSU_E_S, CT_PSU_TAU_S,
    CT_ROCOF_LONG_S, CT_ROCOF_SHORT_S, CT_SECONDARY, CT_SMOOTH, CT_SMOOTH_DOWN_PER_S, CT_SMOOTH_FLOOR, CT_SMOOTH_HYST_S,
    CT_SMOOTH_UP_PER_S, CT_UFLS, GT_ACTION, GT_ISLAND, HA_ISLAND, HA_LIQUID_FRAC, HA_N_GPU, HA_P_PEAK_MW, HA_P_STATIC_MW, HA_PLANT, HA_G_JC_MW_PER_K,
    HA_UA_CDU_MW_PER_K, N_RT_BAND, PL_T_CHW_C, TU_GOV, TU_H_S, TU_ISLAND, TU_ONLINE0, TU_P_ISO_MW, TU_S_MVA, TU_START_S, TIE_ACTIONS, compile_plant,
)
from .plant import N_UFLS_MAX
from .protection import ROCOF_LONG_S, ROCOF_SHORT_S
from .scenario import Event, Scenario, parse_time_s
from .state import (
    EV_CODE, EV_INDEX, EV_ISLAND, EV_NCOL, EV_T_S, EV_VALUE, EVENT_CODES,
    RING_N, SB_DERATE, SB_NCOL, SB_OK, SB_P, SB_SOC, SC_DERATE, SC_NCOL, SC_OK, SC_RESTART_S, SG_CLOSED, SG_NCOL, SH_CAP,
    SH_NCOL, SH_P_GPU_W, SH_PSU_E_J, SH_PSU_P_W, SH_TJ, SH_TTCS, SI_BLACKOUT, SI_DF, SI_LOSS, SI_LPF, SI_NCOL, SI_OTHER, SI_STAGE, SI_TIE_TRIP, SI_TIED, SP_NCOL,
    SP_P_COOL_MW, SP_Q_REJ_MW, SP_TFWS, ST_DERATE, ST_NCOL, ST_PM, ST_PREF, ST_STATUS, ST_TIMER, Inputs, Outputs, Params, State, SubOutputs,
)
from .plant import BE_GFM, CH_ISLAND
from .state import SI_SURPLUS_S, SI_TRIM
from .stepping import F0_HZ, step_segment
from .thermal import gpu_heat_split_mw, hall_thermal_steady_state
from .turbines import (
    GX_NSTATE, STATUS_ONLINE, STATUS_STANDBY, STATUS_STARTING, STATUS_TRIPPED, governor_init, governor_prepare,
)
from .weather import AmbientProfile
from .topology import SYNC_DF_HZ, SlotPlan, next_slots, part_key, plan_slots, site_graph, slot_sources
from .workload import hall_demand_mw

__all__ = ["Engine", "SimulationDiverged", "N_SUB", "H_SUB_S", "substeps_per_step"]

log = logging.getLogger(__name__)

#: Sub-step of governors, batteries, the swing equation and the relays [s] (docs/physics.md: 20–50 ms).
H_SUB_S = 0.05
#: Sub-steps per 1-s step.
N_SUB = 20
#: Rows of the kernel's event table per segment (more are counted and reported, not kept).
MAX_SEGMENT_EVENTS = 4096


class SimulationDiverged(RuntimeError):
    """The engine's state left its physical range (a numerical failure, not a result): the run stops and is
    recorded as failed with the message."""


def substeps_per_step(step_s: float) -> int:
    """Sub-steps per step so that a sub-step is at most :data:`H_SUB_S` (at least one)."""
    return max(1, int(np.ceil(step_s / H_SUB_S - 1e-9)))


class Engine:
    """A site under a scenario, stepped second by second.

    Parameters
    ----------
    site : sites.Site
    scenario : twin.scenario.Scenario
    events : list of twin.scenario.Event
        Resolved against ``site`` (:func:`twin.scenario.resolve_events`).
    base_dir : Path, optional
        Where relative paths of the scenario (weather profile, trace) are looked up.
    block_steps : int
        Longest segment [steps].
    reuse_outputs : bool
        Fill the same output arrays segment after segment instead of new ones (saves the first-touch
        cost of fresh memory, about a fifth of the wall time). A segment's arrays are then valid only
        until the next segment is asked for: for consumers that reduce or copy each segment at once (the
        runner, sweeps, benchmarks), not for code that keeps segments.
    output_buffers : tuple, optional
        The two sets of reused output arrays (:func:`output_buffer_pair`), shared by engines run one after
        the other (a sweep worker's cases); default: the engine's own.
    """

    def __init__(self, site, scenario: Scenario, events: list[Event], base_dir: Path | None = None, block_steps: int = 3600,
                 reuse_outputs: bool = False, record_substeps: bool = False, output_buffers: tuple | None = None):
        from grid_models.build import build_net
        from grid_models.cache import NetCache
        from twin.operating_point import nominal_operating_point

        _compile_ahead.start(*_KERNEL)  # on a cold numba cache: the kernel compiles in a second process meanwhile
        self.site = site
        self.sc = scenario
        self.events = list(events)
        self._next_event = 0
        #: The sequence of events: scenario events and what they cause (relays, PMS), time-stamped to the sub-step.
        self.event_log: list[dict[str, Any]] = []
        self.step_s = scenario.scenario.step_s
        self.n_total = scenario.n_steps
        self.block_steps = block_steps
        # two sets of output arrays, alternating: a segment's load flow may still fill one set (on a second
        # thread, :meth:`segments`) while the kernel fills the other with the next segment
        self._buffer_sets = output_buffers if output_buffers is not None else output_buffer_pair(reuse_outputs)
        self.buffers = self._buffer_sets[0]
        self.k = 0
        start: datetime = scenario.scenario.start
        self.amb = AmbientProfile(scenario.weather, start.hour * 3600 + start.minute * 60 + start.second, base_dir)
        self.plant = p = compile_plant(site)
        self._topology_init(site)
        p = self.plant
        self._override_p_it: dict[int, float] = {}
        self._override_t_amb: float | None = None

        t0 = float(self.amb(np.array([0.0]))[0])
        self.n_sub = substeps_per_step(self.step_s)
        self._workload = _Workload(site, scenario, base_dir, self.n_sub)
        first = self._workload(0, min(60, max(self.n_total, 1))).mean(axis=(0, 1))  # start in equilibrium with the workload
        op = nominal_operating_point(site, t0, scenario.workload.gpu_power_frac,
                                     p_it_mw={h.id: float(v) for h, v in zip(site.halls, first)})
        self.op = op
        self._net_cache = NetCache(_net_fingerprint(site, op), lambda: build_net(site, op))
        self.record_substeps = record_substeps
        # ---- state
        n_t, n_b, n_h, n_i = len(p.turb), len(p.bess), len(p.hall), p.n_island
        s_turb = np.zeros((n_t, ST_NCOL))
        s_turb[:, ST_STATUS] = np.where(p.turb[:, TU_ONLINE0] > 0.5, STATUS_ONLINE, STATUS_STANDBY)
        pm0 = np.array([op.p_turbine_mw.get(n, 0.0) for n in p.names["turbine"]])
        s_turb[:, ST_PM] = pm0
        s_turb[:, ST_PREF] = pm0
        s_turb[:, ST_DERATE] = 1.0
        gov_par = p.gov.copy()
        s_gov = np.zeros((n_t, GX_NSTATE))
        h_sub = self.step_s / self.n_sub
        for u in range(n_t):
            kind = int(p.turb[u, TU_GOV])
            governor_prepare(kind, gov_par[u], h_sub)
            governor_init(kind, s_gov[u], gov_par[u], pm0[u] / p.turb[u, TU_P_ISO_MW])
        s_bess = np.zeros((n_b, SB_NCOL))
        s_bess[:, SB_SOC] = p.bess[:, BE_SOC0]
        s_bess[:, SB_OK] = 1.0
        s_bess[:, SB_DERATE] = 1.0
        s_plant = np.zeros((len(p.plant), SP_NCOL))
        s_plant[:, SP_TFWS] = p.plant[:, PL_T_CHW_C]
        for k, pl in enumerate(site.cooling_plants):  # chillers start in steady state with the halls' heat
            s_plant[k, SP_Q_REJ_MW] = sum(op.p_it_mw[h.id] for h in site.halls if h.cooling_plant == pl.id)
            s_plant[k, SP_P_COOL_MW] = sum(op.p_chiller_mw.get(c.id, 0.0) for c in site.chillers if c.plant == pl.id)
        s_hall = np.zeros((n_h, SH_NCOL))
        s_hall[:, SH_CAP] = 1.0
        p_it0 = np.array([op.p_it_mw[n] for n in p.names["hall"]])
        # smoothing filters and rack stores start settled at the first IT power, the stores full
        s_hall[:, SH_P_GPU_W] = np.maximum(p_it0 - p.hall[:, HA_P_STATIC_MW], 0.0) * 1e6 / np.maximum(p.hall[:, HA_N_GPU], 1.0)
        s_hall[:, SH_PSU_P_W] = p_it0 * 1e6
        if scenario.workload.psu_storage is not None:
            s_hall[:, SH_PSU_E_J] = scenario.workload.psu_storage.energy_s * p.hall[:, HA_P_PEAK_MW] * 1e6
        tt = np.empty(2)
        for h in range(n_h):  # start at the thermal steady state of the nominal point
            row = p.hall[h]
            p_gpu, q_liq, _ = gpu_heat_split_mw(op.p_it_mw[p.names["hall"][h]], row[HA_P_STATIC_MW], row[HA_LIQUID_FRAC])
            hall_thermal_steady_state(s_plant[int(row[HA_PLANT]), SP_TFWS], p_gpu, q_liq, row[HA_G_JC_MW_PER_K], row[HA_UA_CDU_MW_PER_K], tt)
            s_hall[h, SH_TJ], s_hall[h, SH_TTCS] = tt
        s_ch = np.zeros((len(p.chiller), SC_NCOL))
        s_ch[:, SC_OK] = 1.0
        s_ch[:, SC_DERATE] = 1.0
        s_isl = np.zeros((n_i, SI_NCOL))
        s_isl[:, SI_TIED] = p.island_grid_tied
        s_isl[:, SI_OTHER] = p.island_p_other_mw
        s_isl[~self._active, SI_BLACKOUT] = 1.0  # slots of parts that later splits may leave: dark, empty
        for i, isl in enumerate(op.islands):
            s_isl[i, SI_LPF] = isl.p_load_mw
        self.st = State(turb=s_turb, gov=s_gov, bess=s_bess, hall=s_hall, plant=s_plant, chiller=s_ch, isl=s_isl,
                        grid=np.ones((len(p.grid), SG_NCOL)), ufls_timer=np.zeros((n_i, N_UFLS_MAX)),
                        ring=np.full((n_i, RING_N), 60.0))
        self._load_p = {ld.id: ld.p_mw for ld in site.loads}
        self.par = Params(turb=p.turb, gov=gov_par, bess=p.bess, hall=p.hall, plant=p.plant, chiller=p.chiller, grid=p.grid,
                          curves=p.curves, curve_ranges=p.curve_ranges, ctrl=_controls(scenario, p.ctrl))
        self._network = _Network(self, self._net_cache)
        self.st.isl[:, SI_LOSS] = self._network.initial_losses()
        self._start_in_balance()

    def _start_in_balance(self) -> None:
        """Islanded islands start in balance: their online units also carry the island's losses (shared as
        the operating point shares the load), with their governors in steady state there."""
        p, st = self.plant, self.st
        for i in range(p.n_island):
            if st.isl[i, SI_TIED] > 0.5:
                continue
            units = np.nonzero((p.turb[:, TU_ISLAND].astype(int) == i) & (st.turb[:, ST_STATUS] == STATUS_ONLINE))[0]
            total = st.turb[units, ST_PM].sum()
            if total <= 0.0:
                continue
            for u in units:
                pm = st.turb[u, ST_PM] * (1.0 + st.isl[i, SI_LOSS] / total)
                st.turb[u, ST_PM] = st.turb[u, ST_PREF] = pm
                governor_init(int(p.turb[u, TU_GOV]), st.gov[u], self.par.gov[u], pm / p.turb[u, TU_P_ISO_MW])

    # the state arrays by their old names (tests, the live twin and what-ifs read them)
    s_turb = property(lambda self: self.st.turb)
    s_bess = property(lambda self: self.st.bess)
    s_hall = property(lambda self: self.st.hall)
    s_plant = property(lambda self: self.st.plant)
    s_ch = property(lambda self: self.st.chiller)
    s_isl = property(lambda self: self.st.isl)
    s_grid = property(lambda self: self.st.grid)

    @property
    def net(self):
        """The pandapower net of the site in the engine's current configuration (built on first use)."""
        return self._network.net

    # ------------------------------------------------------------------ names and provenance
    @property
    def coords(self) -> dict[str, list[str]]:
        n = self.plant.names
        return {d: n[d] for d in ("hall", "turbine", "bess", "grid_tie", "island", "bus", "branch")}

    def provenance(self, run_id: str = "") -> dict[str, Any]:
        return {
            "title": f"{self.sc.scenario.name} on {self.site.label}",
            "run_id": run_id,
            "site": self.site.label,
            "site_files": list(self.site.files),
            "scenario": self.sc.scenario.name,
            "scenario_doc": self.sc.model_dump(mode="json"),
            "code_version": f"colossus-twin {__version__}",
            "step_s": self.step_s,
            "substeps_per_step": self.n_sub,
            "load_flow": self._network.describe(),
            "island_members": self.island_members(),
            # island slots beyond the site's islands: the parts splits may leave, by the buses that carry something
            "island_parts": {self.plant.names["island"][i]: [self._graph.bus_ids[b] for b in buses]
                             for i, buses in self._slots.created.items()},
            "Conventions": "CF-1.10",
            "history": f"created by colossus-twin {__version__}",
        }

    def island_members(self) -> dict[str, dict[str, list[str]]]:
        """Island → component dimension → names of the components on it."""
        p, n = self.plant, self.plant.names
        out = {isl: {"turbine": [], "bess": [], "grid_tie": [], "hall": []} for isl in n["island"]}
        for dim, arr, col in (("turbine", p.turb, TU_ISLAND), ("bess", p.bess, BE_ISLAND), ("grid_tie", p.grid, GT_ISLAND), ("hall", p.hall, HA_ISLAND)):
            for row, name in zip(arr, n[dim]):
                out[n["island"][int(row[col])]][dim].append(name)
        return out

    # ------------------------------------------------------------------ inputs and events
    def set_inputs(self, p_it_mw: dict[str, float] | None = None, t_amb_c: float | None = None) -> None:
        """Telemetry overrides (held until changed): measured hall IT power [MW], ambient [°C]."""
        if p_it_mw is not None:
            idx = {n: i for i, n in enumerate(self.plant.names["hall"])}
            for name, v in p_it_mw.items():
                if name not in idx:
                    raise KeyError(f"unknown hall {name!r}")
                self._override_p_it[idx[name]] = float(v)
        if t_amb_c is not None:
            self._override_t_amb = float(t_amb_c)

    def apply_event(self, ev: Event) -> None:
        """Apply one event to the state (and the network, for topology changes); log it."""
        names = self.plant.names
        what = f"{ev.action} {ev.target}" + ("" if ev.value != ev.value else f" (value {ev.value:g})")
        self._log(ev.t_s, "scenario", ev.action, ev.target, "", ev.value, "", what)
        a, v = ev.action, ev.value
        if ev.kind == "turbines":
            u = names["turbine"].index(ev.target)
            st = self.s_turb[u]
            if a in ("trip", "fail"):
                st[ST_STATUS], st[ST_PM], st[ST_PREF] = STATUS_TRIPPED, 0.0, 0.0
            elif a == "start" and st[ST_STATUS] in (STATUS_STANDBY, STATUS_TRIPPED):
                st[ST_STATUS], st[ST_TIMER] = STATUS_STARTING, self.plant.turb[u, TU_START_S]
            elif a == "restore":
                st[ST_DERATE] = 1.0
                if st[ST_STATUS] == STATUS_TRIPPED:
                    st[ST_STATUS], st[ST_TIMER] = STATUS_STARTING, self.plant.turb[u, TU_START_S]
            elif a == "derate":
                st[ST_DERATE] = v
            self._network.units_changed()
        elif ev.kind == "bess":
            b = names["bess"].index(ev.target)
            if a in ("trip", "fail"):
                self.s_bess[b, SB_OK], self.s_bess[b, SB_P] = 0.0, 0.0
            elif a == "restore":
                self.s_bess[b, SB_OK], self.s_bess[b, SB_DERATE] = 1.0, 1.0
            elif a == "derate":
                self.s_bess[b, SB_DERATE] = v
        elif ev.kind == "chillers":
            c = names["chiller"].index(ev.target)
            if a == "fail":
                self.s_ch[c, SC_OK] = 0.0
            elif a == "restore":
                self.s_ch[c, SC_OK], self.s_ch[c, SC_DERATE], self.s_ch[c, SC_RESTART_S] = 1.0, 1.0, 0.0
            elif a == "derate":
                self.s_ch[c, SC_DERATE] = v
        elif ev.kind == "grid_ties":
            self._switch_tie(ev.target, closes=a not in ("trip", "open"))
        elif ev.kind in ("lines", "transformers"):
            self._switch_branch(ev, closes=a not in ("trip", "open"))
        elif ev.kind == "loads":  # a fixed load steps to a new constant power
            ld = next(x for x in self.site.loads if x.id == ev.target)
            isl = int(self._bus_slot[self._bus_pos[ld.bus]])
            old_p, self._load_p[ld.id] = self._load_p[ld.id], max(float(v), 0.0)
            self.st.isl[isl, SI_OTHER] += self._load_p[ld.id] - old_p
            self._network.loads_changed(self._load_p)

    # ------------------------------------------------------------------ topology (twin.topology)
    def _topology_init(self, site) -> None:
        """The site's bus graph, the island slot of each bus (its site island, every branch closed), the bus of
        each row of the plant's tables, and the slots the scenario's switchings need (:meth:`plan_events`)."""
        g = self._graph = site_graph(site)
        self._bus_pos = pos = {b: k for k, b in enumerate(g.bus_ids)}
        islands = site.islands()
        site_island = np.zeros(g.n_bus, dtype=np.int64)
        for k, isl in enumerate(islands):
            site_island[[pos[b] for b in isl.buses]] = k
        self._slots = SlotPlan(names=[isl.name for isl in islands], start=site_island)
        self._active = np.ones(len(islands), bool)
        self._bus_slot = site_island.copy()
        self._branch_on = np.ones(len(g.branch_ids), bool)
        self._elem_bus = {
            "turb": np.array([pos[t.bus] for t in site.turbines if t.state != "out"], dtype=np.int64),
            "bess": np.array([pos[b.bus] for b in site.bess], dtype=np.int64),
            "hall": np.array([pos[h.bus] for h in site.halls], dtype=np.int64),
            "chiller": np.array([pos[c.bus] for c in site.chillers], dtype=np.int64),
            "grid": np.array([pos[t.bus] for t in site.grid_ties] + [pos[b.bus] for b in site.boundaries
                                                                      if b.direction == "import"], dtype=np.int64),
        }
        self._export_p = [(pos[b.bus], b.p_mw) for b in site.boundaries if b.direction == "export"]
        self._last_p_it: np.ndarray | None = None  # halls' IT in the last step run (load shares at a split)
        self.plan_events(self.events)

    def plan_events(self, events: list[Event]) -> None:
        """Give the run an island slot for every island that ``events``' line and transformer switchings can leave
        (:func:`twin.topology.plan_slots`, from the current topology). The engine does this for its scenario; call
        it before applying other events (a what-if on a copy), and before results are sized by island."""
        from .scenario import ScenarioError

        g = self._graph
        switchings = [(g.branch(e.kind, e.target), e.action not in ("trip", "open")) for e in sorted(events, key=lambda e: e.t_s)
                      if e.kind in ("lines", "transformers")]
        n_before = len(self._slots.names)
        try:
            plan_slots(g, self._slots, self._branch_on, self._bus_slot, switchings)
        except ValueError as exc:
            raise ScenarioError(self.sc.scenario.name, [("events", f"{exc}; expected fewer line/transformer closes")]) from None
        extra = len(self._slots.names) - n_before
        if not extra:
            return
        p = self.plant
        self.plant = dataclasses.replace(p, island_grid_tied=np.r_[p.island_grid_tied, np.zeros(extra)],
                                         island_p_other_mw=np.r_[p.island_p_other_mw, np.zeros(extra)],
                                         names={**p.names, "island": list(self._slots.names)})
        self._active = np.r_[self._active, np.zeros(extra, bool)]
        st = getattr(self, "st", None)
        if st is not None:  # a running engine: the new slots start dark, empty, at rest
            isl = np.zeros((extra, st.isl.shape[1]))
            isl[:, SI_BLACKOUT] = 1.0
            self.st = st._replace(isl=np.vstack([st.isl, isl]),
                                  ufls_timer=np.vstack([st.ufls_timer, np.zeros((extra, st.ufls_timer.shape[1]))]),
                                  ring=np.vstack([st.ring, np.full((extra, st.ring.shape[1]), 60.0)]))
            self._network.set_topology(self._bus_slot, self._branch_on)

    def island_slots(self) -> dict[str, list[str]]:
        """Island slot → the buses it holds now (an inactive slot: none)."""
        return {name: [b for b, s in zip(self._graph.bus_ids, self._bus_slot) if s == i and self._active[i]]
                for i, name in enumerate(self.plant.names["island"])}

    def _live(self) -> np.ndarray:
        """Slots that hold buses and are energised."""
        return self._active & (self.s_isl[:, SI_BLACKOUT] < 0.5)

    def _slot_of_tie(self, g: int) -> int:
        return int(self._bus_slot[self._elem_bus["grid"][g]])

    def _has_source(self, i: int) -> tuple[bool, bool]:
        """(a closed tie, any source: closed tie, online unit or working grid-forming battery) in slot ``i``.
        A grid-following inverter follows a voltage it cannot make: alone it cannot hold an island."""
        p = self.plant
        tied = bool(np.any((p.grid[:, GT_ISLAND].astype(int) == i) & (self.s_grid[:, SG_CLOSED] > 0.5)))
        units = np.any((p.turb[:, TU_ISLAND].astype(int) == i) & (self.s_turb[:, ST_STATUS] == STATUS_ONLINE))
        bess = np.any((p.bess[:, BE_ISLAND].astype(int) == i) & (self.s_bess[:, SB_OK] > 0.5) & (p.bess[:, BE_GFM] > 0.5))
        return tied, bool(tied or units or bess)

    def _topo_log(self, kind: str, component: str, island: str, value: float, unit: str, message: str) -> None:
        self._log(self.k * self.step_s, "topology", kind, component, island, value, unit, message)

    def _switch_tie(self, target: str, closes: bool) -> None:
        """Open or close grid tie ``target``: a close onto a live islanded island synchronises within :data:`SYNC_DF_HZ`."""
        names = self.plant.names
        g = names["grid_tie"].index(target)
        i = self._slot_of_tie(g)
        isl = names["island"][i]
        st = self.s_isl[i]
        if closes and self.s_grid[g, SG_CLOSED] < 0.5 and st[SI_TIED] < 0.5 and st[SI_BLACKOUT] < 0.5 \
                and abs(st[SI_DF]) > SYNC_DF_HZ:
            self._topo_log("sync-refused", target, isl, abs(st[SI_DF]), "Hz",
                           f"{isl}: closing grid tie {target} refused by the synchronisation check: the island runs "
                           f"at {60.0 + st[SI_DF]:.3f} Hz, |Δf| = {abs(st[SI_DF]):.3f} Hz > {SYNC_DF_HZ:g} Hz; the tie stays open")
            return
        self.s_grid[g, SG_CLOSED] = 1.0 if closes else 0.0
        tied, source = self._has_source(i)
        if tied and st[SI_TIED] < 0.5:  # synchronised to the grid (or a dark island re-energised from it)
            if st[SI_BLACKOUT] > 0.5:
                self._topo_log("re-energised", target, isl, float("nan"), "", f"{isl}: re-energised from grid tie {target}")
            st[SI_DF] = 0.0
            st[SI_BLACKOUT] = 0.0
            st[SI_STAGE] = 0.0
        st[SI_TIED] = 1.0 if tied else 0.0
        if not source and st[SI_BLACKOUT] < 0.5:
            self._deenergise(i, f"opening grid tie {target} leaves it no source (no online unit or grid-forming "
                                "battery): its load is unserved")
        self._network.topology_changed()

    def _deenergise(self, i: int, why: str) -> None:
        """Slot ``i`` goes dark: its units (but those on standby) trip, its batteries stop, its load is unserved."""
        p, st = self.plant, self.st
        st.isl[i, SI_BLACKOUT] = 1.0
        units = np.nonzero((p.turb[:, TU_ISLAND].astype(int) == i) & (st.turb[:, ST_STATUS] != STATUS_STANDBY))[0]
        st.turb[units, ST_STATUS] = STATUS_TRIPPED
        st.turb[units, ST_PM] = st.turb[units, ST_PREF] = 0.0
        st.bess[p.bess[:, BE_ISLAND].astype(int) == i, SB_P] = 0.0
        isl = p.names["island"][i]
        self._topo_log("de-energised", isl, isl, float("nan"), "",
                       f"{isl}: de-energised: {why}" + (f" ({len(units)} unit(s) tripped)" if len(units) else ""))

    def _switch_branch(self, ev: Event, closes: bool) -> None:
        """Open or close a line or transformer: islands split or merge (a merge of two live islands only within
        :data:`SYNC_DF_HZ`)."""
        b = self._graph.branch(ev.kind, ev.target)
        what = f"{'closing' if closes else 'opening'} {ev.kind[:-1]} {ev.target}"
        if self._branch_on[b] == closes:
            return
        flags = self._branch_on.copy()
        flags[b] = closes
        try:
            new = self._slots.next_slots(self._bus_slot, flags)
        except KeyError:  # a switching the run was not planned for (events applied from outside: plan_events)
            from .scenario import ScenarioError

            trial = _copy.deepcopy(self._slots)
            new = next_slots(self._graph, trial, self._bus_slot, flags)
            if len(trial.names) > self.plant.n_island:  # it would need an island slot the run does not have
                raise ScenarioError(self.sc.scenario.name, [(f"events (target {ev.target})", (
                    f"{what} leaves an island this run has no slot for; expected the switching among the events the "
                    "engine was planned with (Engine.plan_events before the run)"))]) from None
            self._slots = trial
            trial.transitions[self._bus_slot.tobytes(), flags.tobytes()] = new
        src = slot_sources(self._bus_slot, new, self._graph.element)
        live, names = self._live(), self.plant.names["island"]
        if closes:
            for s, olds in src.items():
                both = [o for o in olds if live[o]]
                if len(both) < 2:
                    continue
                df = {o: 0.0 if self.s_isl[o, SI_TIED] > 0.5 else float(self.s_isl[o, SI_DF]) for o in both}
                slip = max(df.values()) - min(df.values())
                if slip > SYNC_DF_HZ:
                    fs = ", ".join(f"{names[o]} {60.0 + v:.3f} Hz" for o, v in df.items())
                    self._topo_log("sync-refused", ev.target, names[s], slip, "Hz",
                                   f"{what} refused by the synchronisation check: {fs}; |Δf| = {slip:.3f} Hz > "
                                   f"{SYNC_DF_HZ:g} Hz; the {ev.kind[:-1]} stays open")
                    return
        self._branch_on = flags
        self._retopologise(new, src, what)

    def _bus_load_mw(self) -> np.ndarray:
        """Each bus's load as it stands [MW]: halls' IT of the last step, chillers' share of their plant's power
        (by working capacity), fixed loads and export boundaries."""
        p, st, e = self.plant, self.st, self._elem_bus
        load = np.zeros(self._graph.n_bus)
        p_it = self._last_p_it if self._last_p_it is not None else np.array([self.op.p_it_mw[n] for n in p.names["hall"]])
        np.add.at(load, e["hall"], p_it)
        cap = (st.chiller[:, SC_OK] > 0.5) * st.chiller[:, SC_DERATE] * p.chiller[:, CH_Q_REF_MW]
        plant_of = p.chiller[:, CH_PLANT].astype(int)
        tot = np.bincount(plant_of, weights=cap, minlength=len(p.plant))
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(tot[plant_of] > 0, cap / tot[plant_of], 0.0)
        np.add.at(load, e["chiller"], share * st.plant[plant_of, SP_P_COOL_MW] if len(plant_of) else 0.0)
        for ld in self.site.loads:
            load[self._bus_pos[ld.bus]] += self._load_p[ld.id]
        for bus, v in self._export_p:
            load[bus] += v
        return load

    def _retopologise(self, new: np.ndarray, src: dict[int, dict[int, np.ndarray]], what: str) -> None:
        """Move to the slots ``new`` (slot per bus): island state of each new or changed part from the parts it is
        made of, the plant's island columns, dark parts, the network; log the splits and merges."""
        p, st, g = self.plant, self.st, self._graph
        names = p.names["island"]
        old = self._bus_slot
        isl0, timer0, ring0 = st.isl.copy(), st.ufls_timer.copy(), st.ring.copy()
        live0 = self._live()
        load = self._bus_load_mw()
        online = st.turb[:, ST_STATUS] == STATUS_ONLINE
        hs_bus = np.zeros(g.n_bus)
        np.add.at(hs_bus, self._elem_bus["turb"][online], (p.turb[online, TU_H_S] * p.turb[online, TU_S_MVA]))
        # the plant's island columns
        for arr, col, key in ((p.turb, TU_ISLAND, "turb"), (p.bess, BE_ISLAND, "bess"), (p.hall, HA_ISLAND, "hall"),
                              (p.chiller, CH_ISLAND, "chiller"), (p.grid, GT_ISLAND, "grid")):
            arr[:, col] = new[self._elem_bus[key]]
        self._bus_slot = new
        active = np.zeros(len(names), bool)
        active[list(src)] = True
        changed = []
        for s, olds in src.items():
            if list(olds) == [s] and np.array_equal(olds[s], np.flatnonzero(g.element & (old == s))):
                continue  # the same island as before
            parent = max(olds, key=lambda o: part_key(g, olds[o]))
            row = isl0[parent].copy()
            st.ufls_timer[s], st.ring[s] = timer0[parent], ring0[parent]
            lpf = trim = 0.0
            for o, buses in olds.items():  # the load-following states by each part's share of its island's load
                whole = np.flatnonzero(g.element & (old == o))
                tot = load[whole].sum()
                share = load[buses].sum() / tot if tot > 0 else len(buses) / len(whole)
                if live0[o]:
                    lpf += isl0[o, SI_LPF] * share
                    trim += isl0[o, SI_TRIM] * share
            row[SI_LPF], row[SI_TRIM], row[SI_SURPLUS_S] = lpf, trim, 0.0
            merged = [o for o in olds if live0[o]]
            if len(merged) > 1:  # a merge: the inertia-weighted mean of the parts' frequencies
                w = np.array([hs_bus[olds[o]].sum() for o in merged])
                w = w if w.sum() > 0 else np.ones(len(merged))
                df = np.array([0.0 if isl0[o, SI_TIED] > 0.5 else isl0[o, SI_DF] for o in merged])
                row[SI_DF] = float(w @ df / w.sum())
            st.isl[s] = row
            tied, source = self._has_source(s)
            st.isl[s, SI_TIED] = 1.0 if tied else 0.0
            if tied:
                st.isl[s, SI_DF] = 0.0
            # live: held by a tie, or fed from a live island with a source left and something to supply (units
            # cut off with no load at all trip on load rejection; a real unit's overspeed protection would [E])
            feeds = bool(np.any(g.consumer & (new == s)))
            st.isl[s, SI_BLACKOUT] = 0.0 if tied or (merged and source and feeds) else 1.0
            changed.append((s, parent, olds, merged))
        for i in np.flatnonzero(self._active & ~active):  # slots left without buses: dark, empty, at rest
            st.isl[i] = 0.0
            st.isl[i, SI_BLACKOUT] = 1.0
            st.ufls_timer[i] = 0.0
            st.ring[i] = 60.0
        self._active = active
        other = np.zeros(len(names))
        for ld in self.site.loads:
            other[new[self._bus_pos[ld.bus]]] += self._load_p[ld.id]
        for bus, v in self._export_p:
            other[new[bus]] += v
        st.isl[:, SI_OTHER] = other
        loss = self._network.losses_by_slot(new, self._branch_on, len(names))
        dark = []
        for s, parent, olds, merged in changed:
            st.isl[s, SI_LOSS] = loss[s]
            p_load = float(load[g.element & (new == s)].sum())
            if len(olds) == 1 and s != parent:
                n_on = np.count_nonzero(online & (p.turb[:, TU_ISLAND] == s))
                self._topo_log("island-split", names[s], names[parent], p_load, "MW",
                               f"{names[parent]}: {what} splits off {names[s]} ({n_on} units online, {p_load:.1f} MW load)")
            for o in olds:
                if o == s or len(olds) == 1:
                    continue
                if live0[o] and len(merged) > 1:
                    d_f = abs(float(isl0[o, SI_DF] - st.isl[s, SI_DF]))
                    self._topo_log("island-merge", names[o], names[s], d_f, "Hz",
                                   f"{names[s]}: {what} merges {names[o]} into it (Δf {d_f:.3f} Hz; "
                                   f"together at {60.0 + st.isl[s, SI_DF]:.3f} Hz)")
                elif not live0[o] and st.isl[s, SI_BLACKOUT] < 0.5:
                    self._topo_log("re-energised", names[o], names[s], float("nan"), "",
                                   f"{names[s]}: {what} re-energises {names[o]}")
            if st.isl[s, SI_BLACKOUT] > 0.5 and merged:
                dark.append((s, f"{what} leaves it " + (
                    "no source (no online unit, grid-forming battery or closed tie): its load is unserved"
                    if not self._has_source(s)[1] else "nothing to supply: its units trip on the load rejection [E]")))
        for s, why in dark:
            self._deenergise(s, why)
        self._network.set_topology(new, self._branch_on)  # one compilation (cached) for the new configuration

    def _open_tripped_ties(self) -> None:
        """Open the ties the kernel tripped for their import limit (``SI_TIE_TRIP``, twin.dispatch.tie_limit_step)."""
        for i in np.nonzero(self.s_isl[:, SI_TIE_TRIP] > 0.5)[0]:
            self.s_isl[i, SI_TIE_TRIP] = 0.0
            for g in range(len(self.plant.grid)):
                if (int(self.plant.grid[g, GT_ISLAND]) == i and self.s_grid[g, SG_CLOSED] > 0.5
                        and int(self.plant.grid[g, GT_ACTION]) == TIE_ACTIONS["trip"]):
                    self._switch_tie(self.plant.names["grid_tie"][g], closes=False)

    # ------------------------------------------------------------------ stepping
    def segments(self, overlap: bool | None = None):
        """Yield result segments until the horizon, applying events at their times.

        With ``overlap`` (default: when the machine has a second core) the load flow of a segment runs on a
        second thread while the kernel steps the next one. The two are independent: the kernel needs from
        the load flow only the islands' losses at the end of the previous segment, which
        :meth:`_Network.prepare` solves first (the last step alone); the results do not depend on the
        overlap. Segments are yielded in order, each complete; the overlap waits before applying an event.
        """
        from concurrent.futures import ThreadPoolExecutor

        if overlap is None:
            overlap = (os.cpu_count() or 1) > 1
        pool = ThreadPoolExecutor(1, thread_name_prefix="twin-loadflow") if overlap else None
        pending = None  # (segment, future or None) whose load flow may still be running
        try:
            while self.k < self.n_total:
                t_now = self.k * self.step_s

                def due() -> bool:
                    return self._next_event < len(self.events) and self.events[self._next_event].t_s <= t_now + 1e-9

                if due() and pending is not None:  # an event may change the network: its load flow first
                    yield self._finish(pending)
                    pending = None
                while due():
                    self.apply_event(self.events[self._next_event])
                    self._next_event += 1
                end = self.n_total
                if self._next_event < len(self.events):
                    end = min(end, int(np.ceil(self.events[self._next_event].t_s / self.step_s - 1e-9)))
                end = min(end, (self.k // self.block_steps + 1) * self.block_steps)
                k0 = self.k
                out = self._kernel_pass(max(end - self.k, 1))
                if pending is not None and pending[1] is not None:
                    pending[1].result()  # the network is free again
                job = self._network.prepare(out, self.buffers, k0)
                tie_trip = bool(np.any(self.s_isl[:, SI_TIE_TRIP] > 0.5))
                fut = pool.submit(self._network.solve_prepared, job) if pool is not None and not tie_trip else None
                if fut is None:
                    self._network.solve_prepared(job)
                    self._open_tripped_ties()  # the tie opens for the next segment (after this one's load flow)
                if pending is not None:
                    yield self._finish(pending)
                pending = (out, fut)
            if pending is not None:
                yield self._finish(pending)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)

    @staticmethod
    def _finish(pending):
        out, fut = pending
        if fut is not None:
            fut.result()
        return out

    def advance(self, n: int) -> dict[str, np.ndarray]:
        """Advance ``n`` steps; return the segment (arrays of shape (n, …)) and the extras KPIs need."""
        k0 = self.k
        out = self._kernel_pass(n)
        self._network.solve_prepared(self._network.prepare(out, self.buffers, k0))
        self._open_tripped_ties()
        return out

    def _kernel_pass(self, n: int) -> dict[str, np.ndarray]:
        """Step the kernel over ``n`` steps into the next set of output arrays; the load-flow variables come later."""
        p = self.plant
        t = (self.k + np.arange(n)) * self.step_s
        t_amb = self.amb(t) if self._override_t_amb is None else np.full(n, self._override_t_amb)
        demand = self._workload(self.k, n)
        for h, v in self._override_p_it.items():
            demand[:, :, h] = v
        n_t, n_b, n_h, n_i = len(p.turb), len(p.bess), len(p.hall), p.n_island
        self.buffers = buf = self._buffer_sets[1] if self.buffers is self._buffer_sets[0] else self._buffer_sets[0]
        width = {"hall": n_h, "turbine": n_t, "bess": n_b, "island": n_i}
        o = Outputs(*(buf.get(name, (n,) if dim is None else (n, width[dim])) for name, dim in _OUTPUTS),
                    events=buf.get("events", (MAX_SEGMENT_EVENTS, EV_NCOL)), n_events=np.zeros(1, np.int64))
        shape = (n, self.n_sub, n_i) if self.record_substeps else (0, 0, 0)
        sub = SubOutputs(*(np.zeros(shape) for _ in SubOutputs._fields[:-1]),
                         np.zeros((n, self.n_sub, n_b) if self.record_substeps else (0, 0, 0)))
        live = self._live()  # islands energised at the segment's start (topology changes only between segments)
        _compile_ahead.wait(_KERNEL[0])
        done = step_segment(n, self.step_s, self.n_sub, Inputs(demand=demand, t_amb=t_amb), self.par, self.st, o, sub)
        self._log_kernel_events(o.events, int(o.n_events[0]))
        out = dict(zip(_OUTPUT_NAMES, o))
        self._check_frequency(out, done)
        if self.record_substeps:
            out.update(f_sub_hz=sub.f, p_load_sub_mw=sub.load, p_mech_sub_mw=sub.mech, p_bess_sub_mw=sub.bess,
                       p_kinetic_sub_mw=sub.kin, p_bess_unit_sub_mw=sub.bess_unit)
        out["t_amb_c"] = t_amb
        if done < n:  # the kernel stopped where a tie trips for its import limit
            out = {name: (v if name in ("events", "n_events") else v[:done]) for name, v in out.items()}
            n = done
        out["island_live"] = live
        self._last_p_it = out["p_it_mw"][-1].copy()
        self.k += n
        return out

    def _check_frequency(self, out: dict[str, np.ndarray], n: int) -> None:
        """Stop the run if an island's frequency left ``(0, 2·f0)`` Hz or is not a number: no model state reaches
        that (a collapsed island is held at its blackout frequency), so it is a numerical failure of the engine,
        not a result; a sweep records the case as failed with this message."""
        for name in ("f_min_hz", "f_max_hz"):
            f = out[name][:n]
            bad = ~((f > 0.0) & (f < 2.0 * F0_HZ))
            if bad.any():
                k, i = (int(x) for x in np.argwhere(bad)[0])
                raise SimulationDiverged(
                    f"the frequency of island {self.plant.names['island'][i]} reached {f[k, i]:.6g} Hz at "
                    f"t = {(self.k + k) * self.step_s:g} s: a numerical failure of the engine, not a result "
                    "(please report it with the site and scenario)")

    # ------------------------------------------------------------------ sequence of events
    def _log(self, t_s: float, source: str, kind: str, component: str, island: str, value: float, unit: str,
             message: str) -> None:
        self.event_log.append({"t_s": round(float(t_s), 3), "source": source, "kind": kind, "component": component,
                               "island": island, "value": None if value != value else round(float(value), 6),
                               "unit": unit, "message": message})

    def _log_kernel_events(self, ev: np.ndarray, n: int) -> None:
        """The kernel's events of the segment just stepped, named (times are from the run's start)."""
        names = self.plant.names
        t0 = self.k * self.step_s
        for row in ev[:min(n, len(ev))]:
            kind, index_of, value_of = EVENT_CODES[int(row[EV_CODE])]
            isl = names["island"][int(row[EV_ISLAND])]
            idx = int(row[EV_INDEX])
            if index_of in ("turbine", "bess", "hall", "chiller", "grid_tie"):
                comp = names[index_of][idx]
            elif index_of == "stage":
                comp = f"stage {idx}"
            elif index_of == "band":
                comp = _RT_CURVES[idx // N_RT_BAND] + f" band {idx % N_RT_BAND + 1}"
            else:
                comp = isl
            v = row[EV_VALUE]
            unit = {"f_hz": "Hz", "reserve_mw": "MW", "p_mw": "MW", "rocof_hz_s": "Hz/s", "duration_s": "s"}.get(value_of, "")
            what = {"ufls-trip": f"UFLS {comp} tripped at {v:.3f} Hz", "blackout": f"island blacked out at {v:.3f} Hz",
                    "ufls-restore": f"UFLS {comp} restored", "unit-start": f"PMS started {comp} (reserve {v:.1f} MW)",
                    "unit-online": f"{comp} online", "unit-stop": f"PMS unloads {comp} to stop it ({v:.1f} MW)",
                    "unit-standby": f"{comp} stopped (standby)", "ufls-pickup": f"UFLS {comp} picked up at {v:.3f} Hz",
                    "rocof-pickup": f"RoCoF relay of {comp} picked up at {v:.3f} Hz/s",
                    "rocof-trip": f"RoCoF relay tripped {comp} at {v:.3f} Hz/s",
                    "ride-through-pickup": f"{comp} picked up at {v:.3f} Hz",
                    "frequency-trip": f"{comp} tripped beyond its frequency ride-through at {v:.3f} Hz",
                    "ups-transfer": f"UPS of the island's halls on battery at {v:.3f} Hz",
                    "ups-retransfer": f"UPS back on the island at {v:.3f} Hz", "ups-empty": f"UPS of {comp} empty",
                    "chiller-trip": f"{comp} tripped at {v:.3f} Hz", "chiller-restart": f"{comp} restarted",
                    "tie-limit-exceeded": f"import over {comp}'s firm limit ({v:.1f} MW)",
                    "tie-limit-cleared": f"import under {comp}'s firm limit again ({v:.0f} s above it)",
                    "tie-curtail": f"PMS caps GPU power by {v:.1f} MW for {comp}'s limit" if v > 0 else
                                   f"PMS releases the GPU power cap for {comp}'s limit",
                    "tie-shed": f"PMS sheds {v:.1f} MW of IT for {comp}'s limit",
                    "tie-shed-restore": f"PMS restores {v:.1f} MW of IT shed for {comp}'s limit",
                    "tie-trip": f"{comp} tripped on its import limit ({v:.1f} MW)"}[kind]
            self._log(t0 + row[EV_T_S], "pms" if kind in _PMS_EVENTS else "protection", kind, comp, isl,
                      v if value_of else float("nan"), unit, f"{isl}: {what}")
        if n > len(ev):
            log.warning("%d events in one segment; the first %d are logged", n, len(ev))

    def state(self) -> dict[str, Any]:
        """The current values (last step) of the state, keyed by component names."""
        p, n = self.plant, self.plant.names
        return {
            "time_s": self.k * self.step_s,
            "turbines": {name: {"status": ["standby", "online", "starting", "tripped"][int(self.s_turb[u, ST_STATUS])],
                                "p_mech_mw": float(self.s_turb[u, ST_PM])} for u, name in enumerate(n["turbine"])},
            "bess": {name: {"p_mw": float(self.s_bess[b, SB_P]), "soc": float(self.s_bess[b, SB_SOC]),
                            "available": bool(self.s_bess[b, SB_OK] > 0.5)} for b, name in enumerate(n["bess"])},
            "halls": {name: {"t_gpu_c": float(self.s_hall[h, SH_TJ]), "t_coolant_c": float(self.s_hall[h, SH_TTCS]),
                             "power_cap": float(self.s_hall[h, SH_CAP])} for h, name in enumerate(n["hall"])},
            "islands": {name: {"f_hz": 60.0 + float(self.s_isl[i, SI_DF]), "grid_tied": bool(self.s_isl[i, SI_TIED] > 0.5),
                               "ufls_stage": int(self.s_isl[i, SI_STAGE]), "p_loss_mw": float(self.s_isl[i, SI_LOSS]),
                               "blackout": bool(self.s_isl[i, SI_BLACKOUT] > 0.5), "active": bool(self._active[i])}
                        for i, name in enumerate(n["island"])},
            "grid_ties": {name: {"closed": bool(self.s_grid[g, SG_CLOSED] > 0.5)} for g, name in enumerate(n["grid_tie"])},
            "chillers_failed": [name for c, name in enumerate(n["chiller"]) if self.s_ch[c, SC_OK] < 0.5],
        }

    def copy(self) -> "Engine":
        """An independent copy of the engine and its full state (for what-ifs from a live state)."""
        return _copy.deepcopy(self)


#: Kernel events that are the PMS acting (the others are protection).
_PMS_EVENTS = ("ufls-restore", "unit-start", "unit-online", "unit-stop", "unit-standby", "tie-limit-exceeded",
               "tie-limit-cleared", "tie-curtail", "tie-shed", "tie-shed-restore")
#: Names of the ride-through curves (twin.plant RT_*), for the events of their bands.
_RT_CURVES = ("turbine under-frequency", "turbine over-frequency", "inverter under-frequency", "inverter over-frequency")


#: The kernel's per-step outputs (twin.state.Outputs, in order): name in a segment, component dimension.
_OUTPUTS = (("p_it_mw", "hall"), ("p_it_min_mw", "hall"), ("p_it_max_mw", "hall"), ("p_cooling_mw", "hall"),
            ("t_gpu_c", "hall"), ("t_coolant_c", "hall"), ("throttle", "hall"), ("p_shed_mw", "hall"), ("p_mech_mw", "turbine"),
            ("p_bess_mw", "bess"), ("soc_bess", "bess"), ("f_hz", "island"), ("f_min_hz", "island"), ("f_max_hz", "island"),
            ("rocof_hz_s", "island"), ("rocof_long_hz_s", "island"), ("p_kinetic_mw", "island"), ("p_unserved_mw", "island"),
            ("p_other_mw", "island"), ("p_load_island_mw", "island"), ("p_import_mw", "island"), ("turbine_starts", None),
            ("turbine_status", "turbine"))
_OUTPUT_NAMES = tuple(name for name, _ in _OUTPUTS)
#: The kernel compiled ahead on a cold cache (twin._compile_ahead) and its argument types' function
_KERNEL = ("twin.stepping:step_segment", "twin.engine:step_segment_types")


def kernel_compiled() -> bool:
    """Whether the stepping kernel is compiled (in this process or numba's cache) for the engine's arguments;
    ``False`` on the first run after an install or a source change, which compiles it (about a minute)."""
    return _compile_ahead.cached(*_KERNEL)


def step_segment_types() -> tuple:
    """numba types of the arguments :meth:`Engine._kernel_pass` gives :func:`twin.stepping.step_segment` (the
    arrays' dtypes and dimensions; their sizes do not matter), for compiling it ahead (:mod:`twin._compile_ahead`)."""
    import numba

    f1, f2, f3 = np.zeros(1), np.zeros((1, 1)), np.zeros((1, 1, 1))
    args = (1, 1.0, 1, Inputs(demand=f3, t_amb=f1), Params(*(f1 if name == "ctrl" else f2 for name in Params._fields)),
            State(*(f2 for _ in State._fields)),
            Outputs(*(f1 if dim is None else f2 for _, dim in _OUTPUTS), events=f2, n_events=np.zeros(1, np.int64)),
            SubOutputs(*(f3 for _ in SubOutputs._fields)))
    return tuple(numba.typeof(a) for a in args)


def _controls(sc: Scenario, site_ctrl: np.ndarray | None = None) -> np.ndarray:
    """The run's settings vector (twin.plant ``CT_*``): the site's relay settings (``site_ctrl``,
    :func:`twin.plant.protection_ctrl`) with the run's control switches and workload options."""
    c, w = sc.control, sc.workload
    ct = np.zeros(CT_NCOL) if site_ctrl is None else site_ctrl.copy()
    ct[CT_SECONDARY], ct[CT_CAPPING], ct[CT_UFLS], ct[CT_AUTO_START] = c.secondary, c.gpu_capping, c.ufls, c.auto_start
    ct[CT_ROCOF_SHORT_S], ct[CT_ROCOF_LONG_S] = ROCOF_SHORT_S, ROCOF_LONG_S
    if w.smoothing is not None:
        s = w.smoothing
        ct[CT_SMOOTH], ct[CT_SMOOTH_FLOOR], ct[CT_SMOOTH_UP_PER_S] = 1.0, s.floor_frac, s.ramp_up_frac_per_s
        ct[CT_SMOOTH_DOWN_PER_S], ct[CT_SMOOTH_HYST_S] = s.ramp_down_frac_per_s, s.hysteresis_s
    if w.psu_storage is not None:
        ct[CT_PSU], ct[CT_PSU_TAU_S], ct[CT_PSU_E_S] = 1.0, w.psu_storage.tau_s, w.psu_storage.energy_s
    return ct


def _net_fingerprint(site, op) -> str:
    """What the engine's net is built from: the site (all its data) and the nominal operating point."""
    import hashlib

    return hashlib.sha256((site.model_dump_json() + repr(op)).encode()).hexdigest()


def output_buffer_pair(reuse: bool = True) -> tuple:
    """The engine's two alternating sets of output arrays (reused call after call when ``reuse`` is set)."""
    return _Buffers(reuse), _Buffers(reuse)


class _Buffers:
    """Named output arrays, reused call after call when ``reuse`` is set (else always new)."""

    def __init__(self, reuse: bool):
        self.reuse = reuse
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype=np.float64, zero: bool = False) -> np.ndarray:
        a = self._arrays.get(name) if self.reuse else None
        if a is None or a.shape != shape or a.dtype != dtype:
            a = np.empty(shape, dtype)
            if self.reuse:
                self._arrays[name] = a
        if zero:
            a.fill(0)
        return a


@lru_cache(maxsize=6)
def _day_samples(n_s, seed, period_s, u_comm, checkpoint_interval_s, checkpoint_duration_s, inference_share, t0_s,
                 samples_per_s) -> np.ndarray:
    """A day of a site's utilisation samples (:func:`twin.workload.utilisation_profile`), kept for the next
    engine of the same process (sweep cases of one scenario share it; a day at 20 Hz is 7 MB per site)."""
    from .workload import utilisation_profile

    u = utilisation_profile(n_s, seed, period_s=period_s, u_comm=u_comm, checkpoint_interval_s=checkpoint_interval_s,
                            checkpoint_duration_s=checkpoint_duration_s, inference_share=inference_share, t0_s=t0_s,
                            samples_per_s=samples_per_s, keep_samples=True).u_sub
    u.flags.writeable = False
    return u


class _Workload:
    """Demanded IT power per hall, generated a day at a time (bounded memory for any horizon).

    Synthetic training (docs/physics.md §1, :func:`twin.workload.utilisation_profile`): the halls of a
    site run one synchronous job, so they share a utilisation profile ``u`` (seeded by the
    scenario's seed and the site); a hall draws ``P = P_idle + (P_compute − P_idle)·u``, with
    ``P_compute`` its rack power at ``gpu_power_frac`` of TDP. The communication-phase utilisation
    is set so that a compute→communication step is ``swing_frac`` of the hall's IT power. Each day is
    drawn afresh (iteration phase and checkpoint timeline restart at midnight).

    Measured trace: a CSV with a ``time_s`` column (or HH:MM:SS) and one column of MW per hall id;
    linearly interpolated, held beyond its ends.
    """

    DAY = 86400

    def __init__(self, site, sc: Scenario, base_dir: Path | None, n_sub: int):
        from .operating_point import hall_it_mw

        w = sc.workload
        self.w = w
        self.step_s = sc.scenario.step_s
        self.n_sub = n_sub
        start = sc.scenario.start
        self.t0_s = start.hour * 3600 + start.minute * 60 + start.second
        halls = site.halls
        self.p_idle = np.array([h.p_it_idle_mw for h in halls])
        self.p_comp = np.array([hall_it_mw(h, w.gpu_power_frac) for h in halls])
        span = np.maximum(self.p_comp - self.p_idle, 1e-9)
        # u_comm such that (P_comp − P_idle)·(1 − u_comm) = swing_frac·P_comp, per site (the tightest hall)
        sites = sorted({h.id.split("/")[0] for h in halls})
        self.site_of = np.array([sites.index(h.id.split("/")[0]) for h in halls], dtype=np.int64)
        self.u_comm = np.ones(len(sites))
        for k in range(len(sites)):
            sel = self.site_of == k
            self.u_comm[k] = float(np.clip(1.0 - w.swing_frac * np.max(self.p_comp[sel] / span[sel]), 0.0, 1.0))
        self.sites = sites
        self._day = -1
        self._u = None
        self.trace = None
        if w.trace is not None:
            self.trace = self._read_trace(Path(w.trace) if base_dir is None or Path(w.trace).is_absolute() else base_dir / w.trace,
                                          [h.id for h in halls])

    @staticmethod
    def _read_trace(path: Path, halls: list[str]):
        import csv

        from .scenario import ScenarioError

        if not path.exists():
            raise ScenarioError(path, [("workload.trace", "no such file; expected a CSV: time_s, then MW per hall id")])
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
        if not rows or len(rows) < 2:
            raise ScenarioError(path, [("workload.trace", "expected a header and at least one row")])
        head = [c.strip() for c in rows[0]]
        cols = {}
        for name in head[1:]:
            full = name if "/" in name else None
            match = [h for h in halls if h == full or h.split("/", 1)[1] == name]
            if not match:
                raise ScenarioError(path, [("workload.trace", f"column {name!r} is not a hall of the site; expected one of {', '.join(halls)}")])
            cols[match[0]] = head.index(name)
        try:
            t = np.array([parse_time_s(r[0] if ":" in r[0] else float(r[0])) for r in rows[1:]])
            vals = {h: np.array([float(r[i]) for r in rows[1:]]) for h, i in cols.items()}
        except (ValueError, IndexError) as exc:
            raise ScenarioError(path, [("workload.trace", f"expected numbers in every row ({exc})")]) from None
        return t, [vals.get(h) for h in halls]

    def _load_day(self, day: int) -> None:
        w = self.w
        steps = self.DAY / self.step_s
        sps = self.n_sub / self.step_s  # samples per second on the sub-step grid
        exact = abs(steps - round(steps)) < 1e-9 and abs(sps - round(sps)) < 1e-9
        # on the sub-step grid when it tiles a day; else (odd steps) a profile whose time unit is the step
        n_s, sps = (self.DAY, int(round(sps))) if exact else (int(steps), self.n_sub)
        steps = int(steps)
        p = w.swing_period_s
        self._u = []  # each site's day as _day_samples keeps it (read only): a short case slices it, no copy of the day
        for k, site in enumerate(self.sites):
            seed = (w.seed * 1_000_003 + sum(map(ord, site)) * 7919 + day) % (2**32)
            cd = (0.5 * w.checkpoint_duration_s, 1.5 * w.checkpoint_duration_s) if w.checkpoint_duration_s > 0 else (0.0, 0.0)
            self._u.append(_day_samples(n_s, seed, (0.8 * p, 1.2 * p), float(self.u_comm[k]),
                                        (0.8 * w.checkpoint_interval_s, 1.2 * w.checkpoint_interval_s), cd, w.inference_share,
                                        (self.t0_s + day * self.DAY) % self.DAY, sps).reshape(steps, self.n_sub))
        self._day = day

    def __call__(self, k0: int, n: int) -> np.ndarray:
        """Demanded IT power [MW] on the sub-step grid, shape (n, n_sub, halls), for steps k0 … k0 + n − 1."""
        n_h = len(self.p_comp)
        if self.trace is not None:
            t_tr, cols = self.trace
            h = self.step_s / self.n_sub
            t = k0 * self.step_s + (np.arange(n * self.n_sub) + 0.5) * h
            out = np.repeat(self.p_comp[None, None, :], n, axis=0).repeat(self.n_sub, axis=1)
            for j, v in enumerate(cols):
                if v is not None:
                    out[:, :, j] = np.interp(t, t_tr, v).reshape(n, self.n_sub)
            return out
        out = np.empty((n, self.n_sub, n_h))
        if n_h == 0:
            return out
        per_day = int(self.DAY / self.step_s)
        i = 0
        while i < n:
            k = k0 + i
            day, off = divmod(k, per_day)
            if day != self._day:
                self._load_day(day)
            take = min(n - i, per_day - off)
            u = np.stack([d[off:off + take] for d in self._u]).astype(np.float32, copy=False)
            hall_demand_mw(u, self.site_of, self.p_idle, self.p_comp, out[i:i + take])
            i += take
        return out


def _first_rows(names) -> dict:
    """Each name's first row in a table (what ``list.index`` gives, in one pass: a sweep builds an engine per case)."""
    rows: dict = {}
    for r, n in enumerate(names):
        rows.setdefault(n, r)
    return rows


class _Network:
    """The AC network of the engine: compiled arrays, unit statuses, and the per-segment load-flow pass.

    Islanded islands share their slack by inertia (H·S of online turbines); batteries hold their set
    points; grid-tied islands use their ext_grid as the only slack. The arrays are recompiled when the
    set of online units or closed ties changes (events, auto-starts); the load-flow state carries over
    otherwise.
    """

    def __init__(self, engine: Engine, cache):
        self.eng = engine
        self.cache = cache
        t, p = cache.tables, engine.plant
        self.t = t
        self.tol_mva = 1e-5  # 10 W per bus: far below the 0.01 MW energy-balance check, ~0.5 Newton updates fewer per step
        site_pos = engine._bus_pos  # net bus rows, lines and transformers → the site's order (twin.topology)
        self._bus_site = np.array([site_pos[x] for x in t.bus_name], dtype=np.int64)
        branch_pos = {(k, n): j for j, (n, k) in enumerate(zip(engine._graph.branch_ids, engine._graph.branch_kind))}
        self._line_site = np.array([branch_pos["lines", n] for n in t.line_name], dtype=np.int64)
        self._trafo_site = np.array([branch_pos["transformers", n] for n in t.trafo_name], dtype=np.int64)
        self.bus_isl = engine._bus_slot[self._bus_site]
        gen_row = _first_rows(t.gen_name)
        self.gen_turb = np.array([gen_row[n] for n in p.names["turbine"]], dtype=np.int64)
        self.gen_bess = np.array([gen_row[n] for n in p.names["bess"]], dtype=np.int64)
        eg_row = _first_rows(t.ext_grid_name)
        self.eg_tie = np.array([eg_row[n] for n in p.names["grid_tie"]], dtype=np.int64)
        load_row = _first_rows(t.load_name)
        kinds = t.load_kind
        self.load_hall = np.array([load_row[n] for n in p.names["hall"]], dtype=np.int64)
        self.load_chiller = np.array([load_row[n] for n in p.names["chiller"]], dtype=np.int64)
        self.load_fixed = np.nonzero((kinds == "load") | (kinds == "boundary"))[0]
        self.tan_phi = np.where(t.load_p_mw > 0, t.load_q_mvar / np.where(t.load_p_mw > 0, t.load_p_mw, 1.0), 0.0)
        # power factor of zero-power loads (chillers at no load): from the site
        for row, c in zip(self.load_chiller, engine.site.chillers):
            self.tan_phi[row] = np.tan(np.arccos(c.pf))
        self.fixed_p = t.load_p_mw[self.load_fixed].copy()
        self.fixed_isl = self.bus_isl[t.bus_pos(t.load_bus[self.load_fixed])]
        self.inertia = p.turb[:, TU_H_S] * p.turb[:, TU_S_MVA]
        self._branch_isl = self.bus_isl[t.bus_pos(np.r_[t.line_from_bus, t.trafo_hv_bus])]  # site island per branch
        self.line_in_service = t.line_in_service.copy()
        self.trafo_in_service = t.trafo_in_service.copy()
        self.arrays = None
        self.config = None
        self.state = None
        self._lf_out = None
        self._key = None
        self._compile(self.eng.s_turb[:, ST_STATUS])

    @property
    def net(self):
        """The pandapower net under the current configuration (built on first access)."""
        net = self.cache.net
        if self.config is not None:
            self.config.apply(net)
        return net

    def describe(self) -> dict[str, Any]:
        return {"method": "Newton-Raphson, polar, chord (grid_models.timeseries)", "tolerance_mva": self.tol_mva,
                "slack": "ext_grid where grid-tied; inertia-weighted distributed slack where islanded"}

    # -------------------------------------------------------------- topology and statuses
    def _config(self, status: np.ndarray):
        """In-service flags and slack shares for the current unit statuses, ties and branches."""
        from grid_models.cache import NetConfig

        e, p, t = self.eng, self.eng.plant, self.t
        online = status == STATUS_ONLINE
        n_gen = len(t.gen_name)
        in_service = np.zeros(n_gen, bool)
        slack = np.zeros(n_gen, bool)
        weight = np.zeros(n_gen)
        in_service[self.gen_turb[online]] = True
        in_service[self.gen_bess] = e.s_bess[:, SB_OK] > 0.5
        eg = np.zeros(len(t.ext_grid_name), bool)
        eg[self.eg_tie] = e.s_grid[:, SG_CLOSED] > 0.5
        for i in range(p.n_island):
            if e.s_isl[i, SI_TIED] > 0.5:
                continue
            units = [u for u in range(len(p.turb)) if online[u] and int(p.turb[u, TU_ISLAND]) == i]
            if units:
                weight[self.gen_turb[units]] = self.inertia[units]
                ref = max(units, key=lambda u: p.turb[u, TU_S_MVA])
                slack[self.gen_turb[ref]] = True
            else:  # batteries alone: the largest one forms the grid
                yards = [b for b in range(len(p.bess)) if int(p.bess[b, BE_ISLAND]) == i and e.s_bess[b, SB_OK] > 0.5]
                if yards:
                    ref = max(yards, key=lambda b: p.bess[b, 1])
                    slack[self.gen_bess[ref]] = True
                    weight[self.gen_bess[ref]] = 1.0
        return NetConfig(in_service, slack, weight, eg, self.line_in_service.copy(), self.trafo_in_service.copy())

    def _compile(self, status: np.ndarray, config=None) -> None:
        p = self.eng.plant
        config = self._config(status) if config is None else config
        key = config.key()
        if key == self._key:
            return
        self.config = config
        self.state = None
        self._key = key
        self.turb_share = np.zeros(len(p.turb))
        self.lf_isl_of = np.full(p.n_island, -1, dtype=np.int64)
        if not _energised(config):  # the whole site is dark
            self.arrays = None
            return
        self.arrays = a = self.cache.compiled(config)
        online = status == STATUS_ONLINE
        # LF island of each site island (via any energised bus of it), and weights per unit
        for b, i in enumerate(self.bus_isl):
            k = a.pp_bus_internal[b]
            if k >= 0:
                self.lf_isl_of[i] = a.bus_island[k]
        for i in range(p.n_island):
            units = np.nonzero((p.turb[:, TU_ISLAND].astype(int) == i) & online)[0]
            w = config.gen_slack_weight[self.gen_turb[units]]
            if w.sum() > 0:
                self.turb_share[units] = w / w.sum()

    def loads_changed(self, p_by_load: dict[str, float]) -> None:
        """Fixed loads now draw ``p_by_load`` [MW] (by load id): the island's other load is spread by them."""
        names = list(self.t.load_name[self.load_fixed])
        for name, v in p_by_load.items():
            if name in names:
                self.fixed_p[names.index(name)] = v

    def units_changed(self) -> None:
        self._compile(self.eng.s_turb[:, ST_STATUS])

    def topology_changed(self) -> None:
        self._compile(self.eng.s_turb[:, ST_STATUS])

    def set_topology(self, slot_of_bus: np.ndarray, branch_on: np.ndarray) -> None:
        """Branches in service and the island slot of each bus (site order, :mod:`twin.topology`) changed:
        recompile once (cached by :class:`grid_models.cache.NetCache`)."""
        t = self.t
        self.line_in_service = branch_on[self._line_site].copy()
        self.trafo_in_service = branch_on[self._trafo_site].copy()
        self.bus_isl = slot_of_bus[self._bus_site]
        self._branch_isl = self.bus_isl[t.bus_pos(np.r_[t.line_from_bus, t.trafo_hv_bus])]
        self.fixed_isl = self.bus_isl[t.bus_pos(t.load_bus[self.load_fixed])]
        self._agg_key = None  # the islands' other load moved
        self._key = None  # slot shares and LF islands are recomputed even if the configuration was seen
        self._compile(self.eng.s_turb[:, ST_STATUS])

    def losses_by_slot(self, slot_of_bus: np.ndarray, branch_on: np.ndarray, n_slot: int) -> np.ndarray:
        """Losses of the last step solved [MW], summed by the slot each in-service branch will be in."""
        t, out = self.t, np.zeros(n_slot)
        res = self._lf_out
        if res is None or not len(res.p_from_mw):
            return out
        loss = np.nan_to_num(res.p_from_mw[-1] + res.p_to_mw[-1])
        on = branch_on[np.r_[self._line_site, self._trafo_site]]
        slot = slot_of_bus[self._bus_site][t.bus_pos(np.r_[t.line_from_bus, t.trafo_hv_bus])]
        np.add.at(out, slot[on], loss[on])
        return out

    # -------------------------------------------------------------- the load-flow pass
    def initial_losses(self) -> np.ndarray:
        self._aggregation()
        out = self._solve(self._nominal_profiles(), self.eng.buffers, self.eng.s_grid[:, SG_CLOSED] > 0.5)
        return out[0][-1].copy()

    def _nominal_profiles(self):
        t = self.t
        gen_p = np.where(self.config.gen_in_service, t.gen_p_mw, 0.0)[None, :]
        load_p = np.where(t.load_in_service, t.load_p_mw, 0.0)[None, :]
        p = load_p @ -self._load_to_bus + gen_p @ self._gen_to_bus
        q = (load_p * self.tan_phi[None, :]) @ -self._load_to_bus
        return p, q

    def _aggregation(self) -> None:
        """Source → bus weights of the injections, as sparse triplets (cached until the working chillers change).

        Sources, in the column order of :meth:`_profiles`: turbines, batteries, halls' IT, halls'
        cooling, islands' other load. A hall's cooling lands on the buses of its plant's working
        chillers in proportion to their capacity; an island's other load on its fixed loads in
        proportion to their nominal power.
        """
        t, e, p = self.t, self.eng, self.eng.plant
        ok = (e.s_ch[:, SC_OK] > 0.5) * e.s_ch[:, SC_DERATE] * p.chiller[:, CH_Q_REF_MW]
        key = ok.tobytes() + self.fixed_p.tobytes()  # nothing else changes the weights (dead buses are masked in _solve)
        if key == getattr(self, "_agg_key", None):
            return
        n_bus = len(t.bus_index)
        load_to_bus = np.zeros((len(t.load_name), n_bus))
        load_to_bus[np.arange(len(t.load_name)), t.bus_pos(t.load_bus)] = 1.0
        gen_to_bus = np.zeros((len(t.gen_name), n_bus))
        gen_to_bus[np.arange(len(t.gen_name)), t.bus_pos(t.gen_bus)] = 1.0
        self._load_to_bus, self._gen_to_bus = load_to_bus, gen_to_bus
        hall_p = load_to_bus[self.load_hall]
        hall_q = hall_p * self.tan_phi[self.load_hall, None]
        plant_p = np.zeros((len(p.plant), n_bus))
        plant_q = np.zeros((len(p.plant), n_bus))
        for pl in range(len(p.plant)):
            ch = np.nonzero(p.chiller[:, CH_PLANT].astype(int) == pl)[0]
            tot = ok[ch].sum()
            if tot > 0:
                w = ok[ch] / tot
                plant_p[pl] = w @ load_to_bus[self.load_chiller[ch]]
                plant_q[pl] = (w * self.tan_phi[self.load_chiller[ch]]) @ load_to_bus[self.load_chiller[ch]]
        hall_plant = np.zeros((len(p.hall), len(p.plant)))
        hall_plant[np.arange(len(p.hall)), p.hall[:, HA_PLANT].astype(int)] = 1.0
        nominal_other = np.zeros(p.n_island)
        np.add.at(nominal_other, self.fixed_isl, self.fixed_p)
        nominal_other = nominal_other[self.fixed_isl]
        other_p = np.zeros((p.n_island, n_bus))
        other_q = np.zeros((p.n_island, n_bus))
        for j, row in enumerate(self.load_fixed):
            if nominal_other[j] > 0:
                share = self.fixed_p[j] / nominal_other[j]
                other_p[self.fixed_isl[j]] += share * load_to_bus[row]
                other_q[self.fixed_isl[j]] += share * self.tan_phi[row] * load_to_bus[row]
        zeros_q = np.zeros((len(p.turb) + len(p.bess), n_bus))
        w_p = np.vstack([gen_to_bus[self.gen_turb], gen_to_bus[self.gen_bess], -hall_p, -hall_plant @ plant_p, -other_p])
        w_q = np.vstack([zeros_q, -hall_q, -hall_plant @ plant_q, -other_q])
        self._w_p = tuple(np.ascontiguousarray(x) for x in _triplets(w_p))
        self._w_q = tuple(np.ascontiguousarray(x) for x in _triplets(w_q))
        self._agg_key = key

    def _profiles(self, out, rows: slice, buf, weights=None):
        """Net injection (generation − load) per bus of net.bus for the segment rows [MW], [Mvar]; ``weights``:
        the source → bus triplets of :meth:`_aggregation` (default: as they stand now)."""
        if weights is None:
            self._aggregation()
            weights = self._w_p, self._w_q
        parts = [out["p_mech_mw"][rows], out["p_bess_mw"][rows], out["p_it_mw"][rows], out["p_cooling_mw"][rows],
                 out["p_other_mw"][rows]]
        n, n_bus = len(parts[0]), len(self.t.bus_index)
        src = np.concatenate(parts, axis=1, out=buf.get("src", (n, sum(x.shape[1] for x in parts))))
        p = buf.get("p_bus", (n, n_bus), zero=True)
        q = buf.get("q_bus", (n, n_bus), zero=True)
        scatter_columns(src, *weights[0], p)
        scatter_columns(src, *weights[1], q)
        return p, q

    def _solve(self, profiles, buf, closed: np.ndarray):
        """Load flow of the injections ``profiles`` under the current configuration, into ``buf``'s arrays;
        ``closed`` flags the grid ties that are closed. Returns losses and slack per island, import per tie,
        and the load-flow result."""
        from grid_models.timeseries import solve_timeseries

        pb, qb = profiles
        a, t, p = self.arrays, self.t, self.eng.plant
        if a is None:  # no energised island: nothing flows, nothing is lost
            return self._dark(len(pb))
        _no_injection_at_dead_buses(a, pb, qb)
        res = solve_timeseries(a, pb, qb, state=self.state, tolerance_mva=self.tol_mva, branch_flows="loading",
                               out=getattr(buf, "lf_out", None) if buf.reuse else None)
        self.state = res.state
        buf.lf_out = self._lf_out = res
        n = len(pb)
        n_i = p.n_island
        loss = buf.get("p_loss", (n, n_i), zero=True)
        island_losses(res.p_from_mw, res.p_to_mw, self._branch_isl, loss)
        slack = np.zeros((n, n_i))
        for i in range(n_i):
            k = self.lf_isl_of[i]
            if k >= 0 and a.island_distributed[k]:
                slack[:, i] = np.nan_to_num(res.slack_mw[:, k])
        # each ext_grid: what its island needs beyond the units (branch losses included)
        grid = np.zeros((n, len(self.eg_tie)))
        bus_pos = t.bus_pos(t.ext_grid_bus[self.eg_tie])
        for g, bpos in enumerate(bus_pos):
            if not closed[g]:
                continue
            i = self.bus_isl[bpos]
            ties_here = [gg for gg in range(len(self.eg_tie)) if self.bus_isl[bus_pos[gg]] == i and closed[gg]]
            if len(ties_here) == 1:
                grid[:, g] = -pb[:, self.bus_isl == i].sum(axis=1) + loss[:, i]
            else:  # several ties in one island: the flow out of each tie's bus
                bus = t.ext_grid_bus[self.eg_tie[g]]
                tf = np.r_[t.line_from_bus == bus, t.trafo_hv_bus == bus]
                tt = np.r_[t.line_to_bus == bus, t.trafo_lv_bus == bus]
                grid[:, g] = res.p_from_mw[:, tf].sum(axis=1) + res.p_to_mw[:, tt].sum(axis=1) - pb[:, bpos]
        return loss, slack, grid, res

    def _dark(self, n: int):
        """Load-flow results of a site with no energised island: no losses, no flows, voltages 0."""
        from types import SimpleNamespace

        n_bus, n_br, p = len(self.t.bus_index), len(self.t.line_name) + len(self.t.trafo_name), self.eng.plant
        res = SimpleNamespace(vm_pu=np.zeros((n, n_bus)), loading_percent=np.zeros((n, n_br)), converged=np.ones(n, bool))
        return np.zeros((n, p.n_island)), np.zeros((n, p.n_island)), np.zeros((n, len(self.eg_tie))), res

    def prepare(self, out: dict[str, np.ndarray], buf, k0: int):
        """On the kernel's thread, what a segment's load flow needs: the injections of every step, the network
        configuration of each run of steps with the same online units, the closed ties, and the islands'
        losses at the segment's last step (solved now, warm from the previous segment's last load flow, for the
        kernel's next segment: ``SI_LOSS``). Returns the job for :meth:`solve_prepared`."""
        from grid_models.timeseries import solve_timeseries

        e, p = self.eng, self.eng.plant
        status = out["turbine_status"]
        n = len(status)
        online = status == STATUS_ONLINE  # only the set of online units changes the network
        change = np.nonzero(np.any(online[1:] != online[:-1], axis=1))[0] + 1
        bounds = [0, *change.tolist(), n]
        configs = [self._config(status[a]) for a in bounds[:-1]]
        self._aggregation()
        weights = self._w_p, self._w_q
        closed = e.s_grid[:, SG_CLOSED] > 0.5
        # the losses the kernel carries into the next segment
        config = self._config(status[-1])
        if _energised(config):
            a = self.cache.compiled(config)
            pl, ql = self._profiles(out, slice(n - 1, n), _Buffers(False), weights)
            _no_injection_at_dead_buses(a, pl, ql)
            # warm from where the previous segment's load flow ended (a copy: that state stays the time series')
            warm = self.state.copy() if self.state is not None and config.key() == self._key else None
            res = solve_timeseries(a, pl, ql, state=warm, tolerance_mva=self.tol_mva, branch_flows="loading")
            loss = np.zeros((1, p.n_island))
            island_losses(res.p_from_mw, res.p_to_mw, self._branch_isl, loss)
            e.s_isl[:, SI_LOSS] = np.where(np.isfinite(loss[0]), loss[0], e.s_isl[:, SI_LOSS])
        else:
            e.s_isl[:, SI_LOSS] = 0.0
        return out, buf, k0, status, bounds, configs, weights, closed

    def solve_prepared(self, job) -> None:
        """Run the load flow of a prepared segment (on any thread: it reads nothing the kernel changes); add
        vm_pu, loading_pct, p_loss_mw, p_turbine_mw, p_grid_mw and lf_converged to the segment."""
        out, buf, k0, status, bounds, configs, weights, closed = job
        pb, qb = self._profiles(out, slice(0, len(status)), buf, weights)
        p = self.eng.plant
        n = len(status)
        n_bus = len(self.t.bus_index)
        out["vm_pu"] = buf.get("vm_pu", (n, n_bus))
        out["loading_pct"] = buf.get("loading_pct", (n, len(self.t.line_name) + len(self.t.trafo_name)))
        out["p_loss_mw"] = buf.get("p_loss_mw", (n, p.n_island))
        out["p_turbine_mw"] = buf.get("p_turbine_mw", (n, len(p.turb)))
        out["p_grid_mw"] = buf.get("p_grid_mw", (n, len(p.grid)))
        out["lf_converged"] = buf.get("lf_converged", (n,), bool)
        for a, b, config in zip(bounds[:-1], bounds[1:], configs):
            self._compile(status[a], config)
            rows = slice(a, b)
            loss, slack, grid, res = self._solve((pb[rows], qb[rows]), buf, closed)
            out["vm_pu"][rows] = res.vm_pu
            out["loading_pct"][rows] = res.loading_percent
            out["p_loss_mw"][rows] = loss
            out["p_turbine_mw"][rows] = out["p_mech_mw"][rows] + self.turb_share[None, :] * slack[:, p.turb[:, TU_ISLAND].astype(int)]
            out["p_grid_mw"][rows] = grid
            out["lf_converged"][rows] = res.converged
            failed = np.size(res.converged) - int(np.count_nonzero(res.converged))
            if failed:
                t0 = (k0 + a) * self.eng.step_s
                log.warning("load flow did not converge in %d of %d steps from t = %.0f s (%s): voltages and flows of "
                            "those steps are NaN, their losses are taken as zero", failed, b - a, t0, self.eng.site.label)


def _energised(config) -> bool:
    """Whether a network configuration has any energised island (a slack unit or battery, or a closed grid tie)."""
    return bool(config.gen_slack.any() or config.ext_grid_in_service.any())


def _no_injection_at_dead_buses(arrays, p_bus, q_bus) -> None:
    """A dead island (blackout) injects nothing: zero the injections (steps × net buses) at the buses that the
    compiled net ``arrays`` has not energised."""
    dead = arrays.pp_bus_internal < 0
    p_bus[:, dead] = 0.0
    q_bus[:, dead] = 0.0


def _triplets(w: np.ndarray):
    """Non-zeros of a (source × bus) weight matrix: source rows, bus columns, weights."""
    r, c = np.nonzero(w)
    return r.astype(np.int64), c.astype(np.int64), w[r, c].astype(np.float64)


@njit(nogil=True)
def scatter_columns(src, rows, cols, w, out):  # pragma: no cover - jitted
    """``out[t, cols[k]] += w[k] · src[t, rows[k]]`` for every triplet ``k`` and step ``t``.

    The sparse product ``src @ W`` of the segment's source powers (steps × sources) with the
    source → bus weights, without BLAS (threaded matmuls of thin matrices contend for the cores).
    """
    for t in range(src.shape[0]):
        for k in range(len(w)):
            out[t, cols[k]] += w[k] * src[t, rows[k]]


@njit(nogil=True)
def island_losses(p_from_mw, p_to_mw, branch_island, out):  # pragma: no cover - jitted
    """``out[t, i] += Σ (p_from + p_to)`` over the branches of island ``i``: its series and shunt losses [MW].

    A branch of an island whose load flow failed (NaN) counts as lossless for that step.
    """
    for t in range(p_from_mw.shape[0]):
        for b in range(len(branch_island)):
            x = p_from_mw[t, b] + p_to_mw[t, b]
            if x == x:
                out[t, branch_island[b]] += x

