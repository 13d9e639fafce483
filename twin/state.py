"""Columns of the engine's state arrays, and the named bundles the stepping kernel passes around.

The engine's state is a handful of 2-D float arrays, one row per component, with named columns in the
style of pandapower's ``idx_bus`` (``state.turb[u, ST_PM]``). The stage functions of the concept
modules (:mod:`twin.turbines`, :mod:`twin.storage`, :mod:`twin.frequency`, …) read and write them;
:mod:`twin.engine` creates them and applies events between segments. Parameter columns live in
:mod:`twin.plant`.

The bundles are ``NamedTuple`` s of arrays: numba passes each as one argument, so the kernel's
signature is a few named bundles rather than dozens of positional arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._jit import njit

__all__ = [
    "ST_STATUS", "ST_TIMER", "ST_PM", "ST_PREF", "ST_DERATE", "ST_NCOL",
    "SB_SOC", "SB_P", "SB_OK", "SB_DERATE", "SB_DF_MEAS", "SB_NCOL",
    "SH_TJ", "SH_TTCS", "SH_CAP", "SH_P_GPU_W", "SH_HOLD_S", "SH_PSU_P_W", "SH_PSU_E_J", "SH_NCOL",
    "SP_TFWS", "SP_Q_REJ_MW", "SP_P_COOL_MW", "SP_NCOL",
    "SC_OK", "SC_DERATE", "SC_NCOL",
    "SI_DF", "SI_STAGE", "SI_TRIM", "SI_LOSS", "SI_TIED", "SI_RESTORE", "SI_LPF", "SI_BLACKOUT", "SI_OTHER",
    "SI_RING", "SI_SURPLUS_S", "SI_TIE_OVER_S", "SI_TIE_VIOL", "SI_TIE_CUT", "SI_TIE_SHED", "SI_TIE_OK_S", "SI_TIE_TRIP", "SI_TIE_UNDER_S",
    "SI_NCOL", "SG_CLOSED", "SG_NCOL", "RING_N",
    "STATE_COLUMNS", "Params", "State", "Inputs", "Outputs", "SubOutputs",
    "EV_T_S", "EV_CODE", "EV_INDEX", "EV_ISLAND", "EV_VALUE", "EV_NCOL", "EVENT_CODES", "log_event",
    "EV_UFLS_TRIP", "EV_BLACKOUT", "EV_UFLS_RESTORE", "EV_UNIT_START", "EV_UNIT_ONLINE", "EV_UNIT_STOP", "EV_UNIT_STANDBY",
    "ST_ROCOF_S", "SB_ROCOF_S", "SH_UPS_USED_MWH", "SC_RESTART_S", "SI_UPS_ON", "SI_UPS_T", "SI_UPS_FRAC", "SI_UPS_DEAD",
    "SI_UPS_S", "SI_CH_TRIP", "SI_RT",
    "EV_UFLS_PICKUP", "EV_ROCOF_PICKUP", "EV_ROCOF_TRIP", "EV_BESS_ROCOF_PICKUP", "EV_BESS_ROCOF_TRIP", "EV_RT_PICKUP",
    "EV_RT_TRIP", "EV_BESS_RT_TRIP", "EV_UPS_TRANSFER", "EV_UPS_RETRANSFER", "EV_UPS_EMPTY", "EV_CHILLER_TRIP",
    "EV_CHILLER_RESTART",
    "EV_TIE_OVER", "EV_TIE_CLEAR", "EV_TIE_CURTAIL", "EV_TIE_SHED", "EV_TIE_RESTORE", "EV_TIE_TRIP",
]

# ---- turbines (status codes: twin.turbines.STATUS_*)
#      (ST_ROCOF_S: pick-up timer of the unit's RoCoF relay)
(ST_STATUS, ST_TIMER, ST_PM, ST_PREF, ST_DERATE, ST_ROCOF_S, ST_NCOL) = range(7)
# ---- batteries (SB_DF_MEAS: the frequency deviation a grid-following yard measures, its filter's state [Hz];
#      SB_ROCOF_S: pick-up timer of the yard's RoCoF relay)
(SB_SOC, SB_P, SB_OK, SB_DERATE, SB_DF_MEAS, SB_ROCOF_S, SB_NCOL) = range(7)
# ---- halls: GPU junction and coolant-loop temperatures, power cap, GPU power-smoothing filter (per GPU)
#      and rack PSU storage (grid-side power and stored energy of the hall's racks), UPS energy drawn [MWh]
(SH_TJ, SH_TTCS, SH_CAP, SH_P_GPU_W, SH_HOLD_S, SH_PSU_P_W, SH_PSU_E_J, SH_UPS_USED_MWH, SH_NCOL) = range(9)
# ---- cooling plants: facility-water temperature, heat rejected last step, electric power of the plant
(SP_TFWS, SP_Q_REJ_MW, SP_P_COOL_MW, SP_NCOL) = range(4)
# ---- chillers
#      (SC_RESTART_S: time left before a chiller tripped by a dip restarts; > 0 while it is down)
(SC_OK, SC_DERATE, SC_RESTART_S, SC_NCOL) = range(4)
# ---- islands: Δf, UFLS stages tripped, PMS trim, losses (from the load flow), grid-tied flag, restore
#      timer, load low-pass, blackout flag, fixed other load, sub-steps written to the frequency ring
#      and how long the island has had more units online than its load needs (commitment)
#      — then the protection's: halls on UPS (1/0), how long the input has been healthy since, the share of
#      the island's IT behind a UPS with energy left and behind an empty one (set each step), seconds on UPS
#      within the step, chillers tripped within the step (1/0), and the ride-through timers (SI_RT + c·N_RT_BAND + b
#      for curve c, band b: twin.plant.RT_*)
(SI_DF, SI_STAGE, SI_TRIM, SI_LOSS, SI_TIED, SI_RESTORE, SI_LPF, SI_BLACKOUT, SI_OTHER, SI_RING, SI_SURPLUS_S,
 SI_UPS_ON, SI_UPS_T, SI_UPS_FRAC, SI_UPS_DEAD, SI_UPS_S, SI_CH_TRIP, SI_RT) = range(18)
SI_NCOL = SI_RT + 16  # twin.plant.N_RT_CURVE · N_RT_BAND
#      …; then the grid-tie limit's (twin.dispatch.tie_limit_step): the age of the violation being logged
#      (0: none open), the seconds above the limit in it, the curtailed fraction of the dynamic GPU power, the
#      fraction of IT shed, seconds the island could take a shed block back, a trip waiting for the segment's
#      end, seconds back under the limit since the violation's last second above it
(SI_TIE_OVER_S, SI_TIE_VIOL, SI_TIE_CUT, SI_TIE_SHED, SI_TIE_OK_S, SI_TIE_TRIP, SI_TIE_UNDER_S, SI_NCOL) = range(SI_NCOL,
                                                                                                 SI_NCOL + 8)
# ---- grid ties
(SG_CLOSED, SG_NCOL) = range(2)
#: Length of each island's ring of sub-step frequencies (RoCoF windows up to RING_N − 1 sub-steps); a power of two
#: (positions wrap by a bit mask, :func:`twin.protection.rocof_window_hz_per_s`).
RING_N = 64

# ---- the sequence of events the kernel records (Outputs.events): time from the segment's start [s], what,
#      which component (unit, stage…), which island, the measured quantity (frequency [Hz], power [MW]…)
(EV_T_S, EV_CODE, EV_INDEX, EV_ISLAND, EV_VALUE, EV_NCOL) = range(6)
(EV_UFLS_TRIP, EV_BLACKOUT, EV_UFLS_RESTORE, EV_UNIT_START, EV_UNIT_ONLINE, EV_UNIT_STOP, EV_UNIT_STANDBY) = range(1, 8)
(EV_UFLS_PICKUP, EV_ROCOF_PICKUP, EV_ROCOF_TRIP, EV_BESS_ROCOF_PICKUP, EV_BESS_ROCOF_TRIP, EV_RT_PICKUP, EV_RT_TRIP,
 EV_BESS_RT_TRIP, EV_UPS_TRANSFER, EV_UPS_RETRANSFER, EV_UPS_EMPTY, EV_CHILLER_TRIP, EV_CHILLER_RESTART) = range(8, 21)
(EV_TIE_OVER, EV_TIE_CLEAR, EV_TIE_CURTAIL, EV_TIE_SHED, EV_TIE_RESTORE, EV_TIE_TRIP) = range(21, 27)
#: Event codes → (name, what EV_INDEX counts, what EV_VALUE holds).
EVENT_CODES = {
    1: ("ufls-trip", "stage", "f_hz"),
    2: ("blackout", "", "f_hz"),
    3: ("ufls-restore", "stage", "f_hz"),
    4: ("unit-start", "turbine", "reserve_mw"),
    5: ("unit-online", "turbine", ""),
    6: ("unit-stop", "turbine", "p_mw"),
    7: ("unit-standby", "turbine", ""),
    8: ("ufls-pickup", "stage", "f_hz"),
    9: ("rocof-pickup", "turbine", "rocof_hz_s"),
    10: ("rocof-trip", "turbine", "rocof_hz_s"),
    11: ("rocof-pickup", "bess", "rocof_hz_s"),
    12: ("rocof-trip", "bess", "rocof_hz_s"),
    13: ("ride-through-pickup", "band", "f_hz"),
    14: ("frequency-trip", "turbine", "f_hz"),
    15: ("frequency-trip", "bess", "f_hz"),
    16: ("ups-transfer", "", "f_hz"),
    17: ("ups-retransfer", "", "f_hz"),
    18: ("ups-empty", "hall", ""),
    19: ("chiller-trip", "chiller", "f_hz"),
    20: ("chiller-restart", "chiller", "f_hz"),
    21: ("tie-limit-exceeded", "grid_tie", "p_mw"),
    22: ("tie-limit-cleared", "grid_tie", "duration_s"),
    23: ("tie-curtail", "grid_tie", "p_mw"),
    24: ("tie-shed", "grid_tie", "p_mw"),
    25: ("tie-shed-restore", "grid_tie", "p_mw"),
    26: ("tie-trip", "grid_tie", "p_mw"),
}

STATE_COLUMNS = {"turb": ST_NCOL, "bess": SB_NCOL, "hall": SH_NCOL, "plant": SP_NCOL, "chiller": SC_NCOL,
                 "island": SI_NCOL, "grid": SG_NCOL}


class Params(NamedTuple):
    """Per-segment constants: the packed site (:class:`twin.plant.PlantArrays`) and the run's settings."""

    turb: np.ndarray  # (n_t, TU_NCOL)
    gov: np.ndarray  # (n_t, GG_NPAR) governor parameters, decay factors prepared for the sub-step
    bess: np.ndarray  # (n_b, BE_NCOL)
    hall: np.ndarray  # (n_h, HA_NCOL)
    plant: np.ndarray  # (n_p, PL_NCOL)
    chiller: np.ndarray  # (n_c, CH_NCOL)
    grid: np.ndarray  # (n_g, GT_NCOL)
    curves: np.ndarray  # (n_curve, 15)
    curve_ranges: np.ndarray  # (n_curve, 4)
    ctrl: np.ndarray  # (CT_NCOL,) controls, relay settings and workload options (twin.plant.CT_*)


class State(NamedTuple):
    """The engine's state, updated in place by the kernel."""

    turb: np.ndarray  # (n_t, ST_NCOL)
    gov: np.ndarray  # (n_t, GX_NSTATE)
    bess: np.ndarray  # (n_b, SB_NCOL)
    hall: np.ndarray  # (n_h, SH_NCOL)
    plant: np.ndarray  # (n_p, SP_NCOL)
    chiller: np.ndarray  # (n_c, SC_NCOL)
    isl: np.ndarray  # (n_i, SI_NCOL)
    grid: np.ndarray  # (n_g, SG_NCOL)
    ufls_timer: np.ndarray  # (n_i, n_stages) UFLS relay pick-up timers [s]
    ring: np.ndarray  # (n_i, RING_N) last sub-step frequencies [Hz]


class Inputs(NamedTuple):
    """Exogenous inputs of a segment."""

    demand: np.ndarray  # (n, n_sub, n_h) demanded IT power on the sub-step grid [MW]
    t_amb: np.ndarray  # (n,) ambient dry-bulb [°C]


class Outputs(NamedTuple):
    """Per-step results of a segment (steps × components); the engine names them (twin.variables)."""

    p_it: np.ndarray  # served IT power, step mean [MW]
    p_it_min: np.ndarray  # … its minimum over the sub-steps
    p_it_max: np.ndarray  # … and maximum
    p_cool: np.ndarray  # cooling power attributed to the hall [MW]
    t_gpu: np.ndarray
    t_tcs: np.ndarray
    thr: np.ndarray
    shed: np.ndarray  # IT shed by UFLS (and lost in a blackout), step mean [MW]
    pm: np.ndarray  # turbine mechanical power, step mean [MW]
    p_bess: np.ndarray  # battery power, step mean [MW]
    soc: np.ndarray
    f: np.ndarray  # island frequency at the end of the step [Hz]
    f_min: np.ndarray  # … its minimum over the sub-steps
    f_max: np.ndarray  # … and maximum
    rocof: np.ndarray  # largest |RoCoF| over the short relay window within the step [Hz/s]
    rocof_long: np.ndarray  # … over the long window
    p_kin: np.ndarray  # kinetic power released by the island's rotors (and virtual inertia), step mean [MW]
    unserved: np.ndarray  # island load not served [MW]
    other: np.ndarray  # fixed other load served [MW]
    load_isl: np.ndarray  # island load served (IT + cooling + other), step mean [MW]
    p_import: np.ndarray  # import of a grid-tied island (load + losses − units − batteries), step mean [MW]
    starts: np.ndarray  # (n,) units that came online in the step
    status: np.ndarray  # turbine status at the end of the step
    events: np.ndarray  # (max_events, EV_NCOL) the sequence of events of the segment
    n_events: np.ndarray  # (1,) int64: rows of ``events`` written (more are counted, not written)


class SubOutputs(NamedTuple):
    """Sub-step records (n, n_sub, n_island) for validation; arrays of shape (0, 0, 0) when not recorded."""

    f: np.ndarray  # frequency at the end of each sub-step [Hz]
    load: np.ndarray  # island load incl. losses over the sub-step [MW]
    mech: np.ndarray  # mechanical power of the island's units over the sub-step [MW]
    bess: np.ndarray  # battery power of the island over the sub-step [MW]
    kin: np.ndarray  # kinetic power released over the sub-step [MW]
    bess_unit: np.ndarray  # (n, n_sub, n_bess) each battery's power over the sub-step [MW]


@njit(inline="always")
def log_event(events, n_events, t_s, code, index, island, value):  # pragma: no cover - jitted
    """Append one row to a segment's event table (rows beyond its size are counted, not written).

    Inlined: called as a function, numba compiles a copy for every combination of literal event codes
    and argument types at its 25 call sites (31 copies, 3-5 s of a first run's compilation); a stated
    signature would compile it at import instead, before every run."""
    n = n_events[0]
    if n < events.shape[0]:
        events[n, EV_T_S] = t_s
        events[n, EV_CODE] = code
        events[n, EV_INDEX] = index
        events[n, EV_ISLAND] = island
        events[n, EV_VALUE] = value
    n_events[0] = n + 1

