"""System frequency of an electrical island: the aggregate (centre-of-inertia) swing equation.

Model form from docs/physics.md §4 (Kundur, *Power System Stability and Control*, [P35])::

    d(Δf)/dt = f0/(2·H_sys·S_sys) · [ΣPm_i + P_bess + P_grid − P_load·(1 + D·Δf/f0)]     (P in MW)
    H_sys·S_sys = Σ H_i·S_i   over online synchronous units (+ BESS virtual inertia if grid-forming)
    RoCoF = f0·ΔP/(2·H_sys·S_sys)

Grid-tied islands: Δf is an exogenous trace and ``P_grid`` balances the island. Islanded: turbines
(+ BESS) only. Governors and batteries run on internal sub-steps of 20–50 ms (docs/physics.md
§0); rotor-angle and electromagnetic dynamics are not resolved: every unit sees the island's
centre-of-inertia frequency.

All kernels are ``@njit`` (numba ``cache=True``); their pure-Python twins are ``fn.py_func``.
Units: power [MW], frequency deviation [Hz], inertia ``H·S`` [MW·s] (MVA·s), time [s].
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import njit
from .plant import (
    BE_E_MWH, BE_ETA_C, BE_ETA_D, BE_GFM, BE_H_V_S, BE_P_MW, BE_ROCOF, CH_ISLAND, CT_BE_ROCOF_DELAY_S, CT_BE_ROCOF_HZ_S,
    CT_BE_ROCOF_WINDOW_S, CT_CH_RESTART_S, CT_CH_TRIP_HZ, CT_ROCOF_LONG_S, CT_ROCOF_SHORT_S, CT_RT, CT_TU_ROCOF_DELAY_S,
    CT_TU_ROCOF_HZ_S, CT_TU_ROCOF_WINDOW_S, CT_UFLS, CT_UFLS_DELAY_S, CT_UFLS_HZ, CT_UFLS_N, CT_UFLS_RELIEF,
    CT_UPS_F_MAX_HZ, CT_UPS_F_MIN_HZ, CT_UPS_RETRANSFER_S, N_RT_BAND, N_RT_CURVE, RT_BE_OF, RT_BE_UF, RT_TU_OF, RT_TU_UF,
    TU_GOV, TU_H_S, TU_ISLAND, TU_ONLINE0, TU_P_ISO_MW, TU_ROCOF, TU_S_MVA,
)
from .protection import (
    BLACKOUT_HZ, RT_LOG_PICKUP_MAX_S, island_shed_fraction, ride_through_step, rocof_relay_step, rocof_window_hz_per_s, ufls_shed_fraction,
    ufls_step, ups_served_fraction, ups_step,
)
from .state import (
    EV_BESS_ROCOF_PICKUP, EV_BESS_ROCOF_TRIP, EV_BESS_RT_TRIP, EV_BLACKOUT, EV_CHILLER_TRIP, EV_ROCOF_PICKUP,
    EV_ROCOF_TRIP, EV_RT_PICKUP, EV_RT_TRIP, EV_UFLS_PICKUP, EV_UFLS_TRIP, EV_UPS_RETRANSFER, EV_UPS_TRANSFER, log_event,
    RING_N, SB_DERATE, SB_DF_MEAS, SB_OK, SB_P, SB_ROCOF_S, SB_SOC, SC_OK, SC_RESTART_S, SI_BLACKOUT, SI_CH_TRIP, SI_DF, SI_RESTORE,
    SI_RING, SI_RT, SI_STAGE, SI_TIED, SI_UPS_DEAD, SI_UPS_FRAC, SI_UPS_ON, SI_UPS_S, SI_UPS_T, ST_DERATE, ST_PM, ST_PREF,
    ST_ROCOF_S, ST_STATUS,
)
from .storage import bess_substep_mw, freq_measurement_step, soc_step
from .turbines import GOV_IDEAL, STATUS_ONLINE, STATUS_STANDBY, STATUS_TRIPPED, governor_step

__all__ = [
    "F0_HZ", "D_LOAD_CONVENTIONAL", "D_LOAD_DATACENTRE",
    "inertial_power_mw", "droop_stiffness_mw_per_hz", "swing_step", "grid_tied_balance_mw", "island_inertia_mw_s",
    "island_step",
    "ISL_F_MIN_HZ", "ISL_F_MAX_HZ", "ISL_ROCOF_SHORT", "ISL_ROCOF_LONG", "ISL_LOAD_MW", "ISL_KIN_MW",
    "ISL_IMPORT_MW", "ISL_TRIPPED", "ISL_NOUT",
]

#: Nominal frequency [Hz].
F0_HZ = 60.0
#: Load damping of conventional load [%ΔP per %Δf], 1–2 (NEM ≈1.5) [S2] [P35].
D_LOAD_CONVENTIONAL = 1.5
#: Load damping of data-centre (constant-power converter/UPS, VFD chiller) load ≈0 [E].
D_LOAD_DATACENTRE = 0.0

# ---- island_step output vector: per-step extremes and means of the island
# (ISL_LOAD_MW is the served load without losses; ISL_KIN_MW the kinetic power of the rotors alone)
(ISL_F_MIN_HZ, ISL_F_MAX_HZ, ISL_ROCOF_SHORT, ISL_ROCOF_LONG, ISL_LOAD_MW, ISL_KIN_MW, ISL_IMPORT_MW, ISL_TRIPPED,
 ISL_NOUT) = range(9)


@njit(inline="always")
def inertial_power_mw(hs_mw_s, dfdt_hz_per_s, f0_hz=F0_HZ):  # pragma: no cover - jitted
    """Power released by stored kinetic energy ``H·S`` (rotors, or a grid-forming inverter's virtual
    inertia) while the frequency changes, ``−2·H·S·(df/dt)/f0`` [MW] (linearised swing equation,
    docs/physics.md §4/§5; positive while the frequency falls)."""
    return -2.0 * hs_mw_s * dfdt_hz_per_s / f0_hz


@njit
def droop_stiffness_mw_per_hz(p_rated_mw, r, f0_hz=F0_HZ):  # pragma: no cover - jitted
    """Steady-state frequency response of an ideal droop governor, ``P_rated/(R·f0)`` [MW/Hz]."""
    return p_rated_mw / (r * f0_hz)


@njit(inline="always")
def swing_step(df_hz, p_gen_mw, p_load_mw, hs_mw_s, k_mw_per_hz, d_load, f0_hz, dt_s, out):  # pragma: no cover
    """Advance the aggregate swing equation by ``dt_s`` exactly, with inputs held and linear feedback.

    Solves ``M·dΔf/dt = A − B·Δf`` with ``M = 2·H·S/f0`` [MW·s/Hz], ``A = P_gen − P_load`` and
    ``B = K + P_load·D/f0`` (docs/physics.md §4): ``K`` is the stiffness of lag-free (ideal) droop
    governors [MW/Hz] (:func:`droop_stiffness_mw_per_hz`; ``p_gen_mw`` then holds their output at
    Δf = 0) and ``P_load·D/f0`` the load damping. ``B > 0``: ``Δf(t) = A/B + (Δf0 − A/B)·e^(−B·t/M)``;
    ``B = 0``: a ramp.

    Parameters
    ----------
    df_hz : float
        Frequency deviation at the start [Hz].
    p_gen_mw : float
        Mechanical + BESS + grid power into the island at Δf = 0 [MW].
    p_load_mw : float
        Load at nominal frequency [MW].
    hs_mw_s : float
        ``Σ H·S`` of online units (+ virtual inertia) [MW·s].
    k_mw_per_hz : float
        Lag-free droop stiffness [MW/Hz].
    d_load : float
        Load damping [%ΔP per %Δf] (≈0 for data-centre load, 1–2 conventional).
    f0_hz, dt_s : float
        Nominal frequency [Hz] and step [s].
    out : ndarray(float, 3)
        Receives ``[Δf_end, Δf_mean, dΔf/dt at the start]`` [Hz, Hz, Hz/s]. With no spinning mass
        (``hs_mw_s ≤ 0``) Δf is left unchanged and the rate is ``±inf`` for any imbalance (the caller
        declares the island collapsed).
    """
    b = k_mw_per_hz + p_load_mw * d_load / f0_hz
    a = p_gen_mw - p_load_mw
    if hs_mw_s <= 0.0:
        imb = a - b * df_hz
        out[0] = df_hz
        out[1] = df_hz
        out[2] = 0.0 if imb == 0.0 else (math.inf if imb > 0.0 else -math.inf)
        return
    m = 2.0 * hs_mw_s / f0_hz
    out[2] = (a - b * df_hz) / m
    if b > 0.0:
        x = a / b
        lam = b / m * dt_s
        e = math.exp(-lam)
        out[0] = x + (df_hz - x) * e
        out[1] = x + (df_hz - x) * (1.0 - e) / lam if lam > 0.0 else df_hz
    else:
        out[0] = df_hz + dt_s * a / m
        out[1] = 0.5 * (df_hz + out[0])


@njit
def grid_tied_balance_mw(p_gen_mw, p_load_mw, df_hz, d_load, f0_hz=F0_HZ):  # pragma: no cover - jitted
    """Grid import that balances a grid-tied island, ``P_load·(1 + D·Δf/f0) − P_gen`` [MW].

    Positive = import from the grid (the grid is a source for the island, docs/physics.md §4).
    """
    return p_load_mw * (1.0 + d_load * df_hz / f0_hz) - p_gen_mw


@njit
def _ideal_output_mw(p_ref_mw, k_mw_per_hz, df_hz, p_av_mw):  # pragma: no cover - jitted
    """Output of an ideal droop unit at Δf: ``P_ref − K·Δf`` within ``[0, P_av]`` [MW]."""
    p = p_ref_mw - k_mw_per_hz * df_hz
    return min(max(p, 0.0), p_av_mw)


@njit(inline="always")
def _rocof_relay(r, timer_s, setting_hz_per_s, delay_s, h_s, pickup_code, index, i, t_ev, events,
                 n_events):  # pragma: no cover - jitted
    """A unit's or yard's RoCoF relay over one sub-step (:func:`twin.protection.rocof_relay_step`; nothing to do
    while the measured ``r`` is within the setting and the relay has not picked up), logging its pick-up;
    returns ``(tripped, timer_s)``."""
    if abs(r) <= setting_hz_per_s and timer_s == 0.0:
        return False, 0.0
    trip, t1 = rocof_relay_step(r, timer_s, setting_hz_per_s, delay_s, h_s)
    if timer_s == 0.0 and t1 > 0.0:
        log_event(events, n_events, t_ev, pickup_code, index, i, r)
    return trip, t1


@njit(inline="always")
def island_inertia_mw_s(par, st, units, counts, bess):  # pragma: no cover - jitted
    """``(ΣH·S of the island's online units, that plus the grid-forming batteries' virtual inertia)`` [MW·s].

    ``units``/``counts``: the stepped units and how many each stands for (0 once tripped); ``bess``: the
    island's batteries (in service when ``SB_OK``). Summed afresh after every relay trip rather than
    decremented: an island whose last unit and grid-forming battery trip has exactly zero inertia (a running
    difference leaves a rounding residue of ~1e-13 MW·s, on which the swing equation diverges)."""
    hs_rot = 0.0
    for j in range(units.shape[0]):
        if counts[j] > 0.0:
            u = units[j]
            hs_rot += counts[j] * par.turb[u, TU_H_S] * par.turb[u, TU_S_MVA]
    hs_tot = hs_rot
    for b in bess:
        if st.bess[b, SB_OK] > 0.5 and par.bess[b, BE_GFM] > 0.5:
            hs_tot += par.bess[b, BE_H_V_S] * par.bess[b, BE_P_MW] * st.bess[b, SB_DERATE]
    return hs_rot, hs_tot


@njit(inline="always")
def island_step(i, n_sub, h_s, par, st, units, counts, pref_mw, pav_mw, sched_mw, bess, bess_a, it_sub_mw, fixed_mw,
                loss_mw, keep, pm_mean, pb_mean, out, sub, k, sw, events, n_events, f0_hz=F0_HZ):  # pragma: no cover - jitted
    """Advance island ``i`` by one step of ``n_sub`` sub-steps of ``h_s``: governors, batteries, swing, relays.

    Per sub-step (docs/physics.md §4 and step-size warning):

    1. sources at the start of the sub-step: each lagged governor's mechanical power (GGOV1/TGOV1,
       :func:`twin.turbines.governor_step`), ideal droop units as a stiffness, each battery's power
       (:func:`twin.storage.bess_substep_mw`: schedule + droop with deadband on the yard's measured
       frequency, :func:`twin.storage.freq_measurement_step`, within SoC limits, through its response
       lag; grid-forming ones lag-free on the island frequency);
    2. the island load ``IT·(1 − shed) + fixed`` with the IT on the sub-step grid (sub-second
       workload, smoothing and PSU storage already applied);
    3. islanded: the swing equation over the sub-step (:func:`swing_step`) with the inertia of the
       online units and of grid-forming batteries; grid-tied: Δf = 0 and the tie imports the balance
       (:func:`grid_tied_balance_mw`);
    4. the kinetic power released, ``−M·ΔΔf/h`` (:func:`inertial_power_mw`), is shared by inertia:
       each unit's electrical output is ``Pe = Pm + (H·S/ΣH·S)·P_kin`` (coherent machines) and feeds
       its governor; a grid-forming battery delivers its share on top of its power (and its SoC
       pays for it); every battery's SoC advances over the sub-step (:func:`twin.storage.soc_step`);
    5. relays on the sub-step frequency, with the site's settings (``par.ctrl``, twin.plant ``CT_*``;
       docs/physics.md §4 *Protection*), each acting from the next sub-step: the UPS input window
       (:func:`twin.protection.ups_step`: the island's halls go on battery and stop drawing from it),
       chillers dropping out on a dip, the 57 Hz blackout backstop
       (:data:`twin.protection.BLACKOUT_HZ`), the RoCoF relays of units and inverters that carry one
       (:func:`twin.protection.rocof_relay_step` over their windows of the frequency ring), the
       frequency ride-through integrators of turbines and inverters
       (:func:`twin.protection.ride_through_step`: a trip takes every unit of that class on the island
       out) and the UFLS stages with their delay (:func:`twin.protection.ufls_step`). RoCoF over the
       100/500 ms reporting windows (:func:`twin.protection.rocof_window_hz_per_s`).

    A grid-tied island holds Δf = 0, so nothing in it needs the sub-steps: it is advanced in one pass
    of the whole step with the step-mean IT (governors and battery lags exactly as on sub-steps, with
    the step as their time step).

    ``units`` are the island's online units that are stepped, each standing for ``counts[j]``
    identical units (same model, state and set point: their trajectories are identical, so one is
    stepped and the engine copies it). ``pref_mw``/``pav_mw`` are per unit [MW]. ``it_sub_mw``
    (n_sub,) is the island's IT before shedding, ``fixed_mw`` the rest of its served load (cooling,
    other) and ``loss_mw`` its network losses (from the load flow). ``bess`` lists the island's batteries,
    ``bess_a`` (n_bess, :data:`twin.storage.BA_NCOL`) their lag factors (:func:`twin.storage.bess_lag_factors`). Fills ``keep`` (n_sub,) with the served fraction of IT on each sub-step, ``pm_mean``/
    ``pb_mean`` with each stepped unit's/battery's step-mean power [MW], ``out`` (ISL_NOUT,) with the
    island's step extremes and means, and ``sub`` (SubOutputs) at row ``k`` when it is recorded; ``sw`` is
    scratch of shape (3,). Relay pick-ups and trips (with the measured quantity), UPS transfers, chiller trips and a
    blackout are appended to ``events``/``n_events`` (:func:`twin.state.log_event`, at the sub-step's end time). A
    unit tripped within the step has its ``counts`` entry set to 0 (the caller regroups: ``ISL_TRIPPED``).
    Relays cost nothing while the frequency is away from every setting: each is checked only when its
    threshold is crossed or its timer runs.
    """
    tied = st.isl[i, SI_TIED] > 0.5
    ctrl = par.ctrl
    ufls_on = ctrl[CT_UFLS] > 0.5
    n_stage = int(ctrl[CT_UFLS_N])
    set_hz = ctrl[CT_UFLS_HZ:CT_UFLS_HZ + n_stage]
    relief = ctrl[CT_UFLS_RELIEF:CT_UFLS_RELIEF + n_stage]
    n_short = max(1, int(round(ctrl[CT_ROCOF_SHORT_S] / h_s)))
    n_long = max(1, int(round(ctrl[CT_ROCOF_LONG_S] / h_s)))
    rec = sub.f.shape[0] > 0
    n_u = units.shape[0]
    n_pass = 1 if tied else n_sub
    h = h_s * n_sub if tied else h_s
    t_seg = k * n_sub * h_s  # the step's start, from the segment's start [s]
    col = 1 if tied else 0
    it_step = 0.0
    if tied:
        for jj in range(n_sub):
            it_step += it_sub_mw[jj] / n_sub
    rocof_tu = False  # any online unit here with a RoCoF relay
    for j in range(n_u):
        u = units[j]
        pm_mean[u] = 0.0
        if par.turb[u, TU_ROCOF] > 0.5 and counts[j] > 0.0:
            rocof_tu = True
    rocof_be = False
    n_bess_ok = 0
    for b in bess:
        pb_mean[b] = 0.0
        if st.bess[b, SB_OK] > 0.5:
            n_bess_ok += 1
            if par.bess[b, BE_ROCOF] > 0.5:
                rocof_be = True
    hs_rot, hs_tot = island_inertia_mw_s(par, st, units, counts, bess)
    n_w_tu = min(max(1, int(round(ctrl[CT_TU_ROCOF_WINDOW_S] / h_s))), RING_N - 1)
    n_w_be = min(max(1, int(round(ctrl[CT_BE_ROCOF_WINDOW_S] / h_s))), RING_N - 1)
    # ride-through: the highest under-frequency and lowest over-frequency threshold (nothing to do in between
    # unless a timer runs)
    uf_top, of_bot = -1.0, 1e9
    for c in range(N_RT_CURVE):
        for b in range(N_RT_BAND):
            kb = CT_RT + 2 * (c * N_RT_BAND + b)
            if ctrl[kb + 1] >= 0.0:
                if c == RT_TU_UF or c == RT_BE_UF:
                    uf_top = max(uf_top, ctrl[kb])
                else:
                    of_bot = min(of_bot, ctrl[kb])
    rt_active = False
    for c in range(N_RT_CURVE * N_RT_BAND):
        if st.isl[i, SI_RT + c] > 0.0:
            rt_active = True
    df = st.isl[i, SI_DF]
    stage = int(st.isl[i, SI_STAGE])
    dark = st.isl[i, SI_BLACKOUT] > 0.5
    shed = island_shed_fraction(stage, dark, relief)
    ups_u, ups_d = st.isl[i, SI_UPS_FRAC], st.isl[i, SI_UPS_DEAD]
    ups_on = st.isl[i, SI_UPS_ON] > 0.5
    has_ups = ups_on or ups_u + ups_d > 0.0
    st.isl[i, SI_UPS_S] = 0.0
    f_min = f0_hz + df
    f_max = f_min
    r_short = 0.0
    r_long = 0.0
    load_acc = 0.0
    kin_acc = 0.0
    imp_acc = 0.0
    tripped = 0.0
    for jj in range(n_pass):
        # 1. sources held over the sub-step
        pm = 0.0
        a_id = 0.0
        b_id = 0.0
        for j in range(n_u):
            u = units[j]
            if int(par.turb[u, TU_GOV]) == GOV_IDEAL:
                kd = droop_stiffness_mw_per_hz(par.turb[u, TU_P_ISO_MW], par.gov[u, 0], f0_hz)
                tgt = pref_mw[u] - kd * df
                if tgt >= pav_mw[u]:
                    a_id += counts[j] * pav_mw[u]
                elif tgt > 0.0:
                    a_id += counts[j] * pref_mw[u]
                    b_id += counts[j] * kd
            else:
                pm += counts[j] * st.turb[u, ST_PM]
        pb = 0.0
        for b in bess:
            df_b, m_end = freq_measurement_step(st.bess[b, SB_DF_MEAS], df, bess_a[b, 2 + col], bess_a[b, 4 + col])
            st.bess[b, SB_DF_MEAS] = m_end
            if st.bess[b, SB_OK] < 0.5 or dark:
                st.bess[b, SB_P] = 0.0
                continue
            p = bess_substep_mw(st.bess[b, SB_P], sched_mw[b], df_b, st.bess[b, SB_SOC], par.bess[b], st.bess[b, SB_DERATE],
                                bess_a[b, col], f0_hz)
            st.bess[b, SB_P] = p
            pb += p
        # 2. load (halls on UPS draw nothing from the island)
        it = it_step if tied else it_sub_mw[jj]
        serve_f, draw_f = ups_served_fraction(ups_on, shed, ups_u, ups_d)
        served = 0.0 if dark else it * draw_f + fixed_mw
        load = 0.0 if dark else served + loss_mw
        if not tied:
            keep[jj] = serve_f
        # 3. frequency
        if tied:
            df1 = 0.0
            dfm = 0.0
            kin = 0.0
            imp_acc += grid_tied_balance_mw(pm + pb + a_id, load, 0.0, D_LOAD_DATACENTRE, f0_hz)
        elif dark:
            df1 = df
            dfm = df
            kin = 0.0
        else:
            swing_step(df, pm + pb + a_id, load, hs_tot, b_id, D_LOAD_DATACENTRE, f0_hz, h, sw)
            df1, dfm = sw[0], sw[1]
            if hs_tot <= 0.0:  # no spinning mass: only an exact balance holds
                df1 = df if abs(pm + pb + a_id - load) < 1e-6 else BLACKOUT_HZ - f0_hz - 1.0
                dfm = df1
            kin = inertial_power_mw(hs_tot, (df1 - df) / h, f0_hz) if hs_tot > 0.0 else 0.0
        # 4. kinetic power shared by inertia; governors; SoC
        kin_rot = kin * hs_rot / hs_tot if hs_tot > 0.0 else 0.0
        for j in range(n_u):
            if counts[j] <= 0.0:  # tripped by a relay within the step
                continue
            u = units[j]
            kind = int(par.turb[u, TU_GOV])
            p_base = par.turb[u, TU_P_ISO_MW]
            if kind == GOV_IDEAL:
                kd = droop_stiffness_mw_per_hz(p_base, par.gov[u, 0], f0_hz)
                pm_mean[u] += _ideal_output_mw(pref_mw[u], kd, dfm, pav_mw[u])
                st.turb[u, ST_PM] = _ideal_output_mw(pref_mw[u], kd, df1, pav_mw[u])
                continue
            pm_u = st.turb[u, ST_PM]
            pm_mean[u] += pm_u
            share = par.turb[u, TU_H_S] * par.turb[u, TU_S_MVA] / hs_tot if hs_tot > 0.0 else 0.0
            pe_u = pm_u + share * kin
            st.turb[u, ST_PM] = p_base * governor_step(kind, st.gov[u], par.gov[u], pref_mw[u] / p_base, pe_u / p_base,
                                                       df1 / f0_hz, h, pav_mw[u] / p_base)
        for b in bess:
            if st.bess[b, SB_OK] < 0.5:
                continue
            p = st.bess[b, SB_P]
            if par.bess[b, BE_GFM] > 0.5 and hs_tot > 0.0 and not tied:
                p += inertial_power_mw(par.bess[b, BE_H_V_S] * par.bess[b, BE_P_MW] * st.bess[b, SB_DERATE], (df1 - df) / h, f0_hz)
            pb_mean[b] += p
            if rec:
                for j2 in range(jj, n_sub if tied else jj + 1):
                    sub.bess_unit[k, j2, b] = p
            st.bess[b, SB_SOC] = soc_step(st.bess[b, SB_SOC], p, par.bess[b, BE_E_MWH], par.bess[b, BE_ETA_C],
                                          par.bess[b, BE_ETA_D], h)
        load_acc += served
        kin_acc += kin_rot
        if rec:
            for j2 in range(jj, n_sub if tied else jj + 1):
                sub.f[k, j2, i] = f0_hz + df1
                sub.load[k, j2, i] = load
                sub.mech[k, j2, i] = pm + a_id - b_id * dfm
                sub.bess[k, j2, i] = pb + (kin - kin_rot)
                sub.kin[k, j2, i] = kin_rot
        df = df1
        f = f0_hz + df
        t_ev = t_seg + (jj + 1) * h  # the sub-step's end: relay events carry its time
        # 5. relays on the sub-step frequency (they act from the next sub-step)
        if has_ups:  # UPS input window (a dark island is outside it)
            if ups_on:
                st.isl[i, SI_UPS_S] += h
            bad = dark or f < ctrl[CT_UPS_F_MIN_HZ] or f > ctrl[CT_UPS_F_MAX_HZ]
            on2, t_ups, changed = ups_step(ups_on, st.isl[i, SI_UPS_T], bad, ctrl[CT_UPS_RETRANSFER_S], h)
            st.isl[i, SI_UPS_T] = t_ups
            if changed:
                log_event(events, n_events, t_ev, EV_UPS_TRANSFER if on2 else EV_UPS_RETRANSFER, -1, i, f)
                ups_on = on2
                st.isl[i, SI_UPS_ON] = 1.0 if on2 else 0.0
        if tied:
            continue
        if (dark or f < ctrl[CT_CH_TRIP_HZ]) and st.isl[i, SI_CH_TRIP] < 0.5:  # chillers drop out on a dip
            st.isl[i, SI_CH_TRIP] = 1.0
            for c in range(par.chiller.shape[0]):
                if int(par.chiller[c, CH_ISLAND]) == i and st.chiller[c, SC_OK] > 0.5 and st.chiller[c, SC_RESTART_S] <= 0.0:
                    st.chiller[c, SC_RESTART_S] = ctrl[CT_CH_RESTART_S]
                    st.isl[i, SI_CH_TRIP] = 2.0
                    log_event(events, n_events, t_ev, EV_CHILLER_TRIP, c, i, f)
        pos = int(st.isl[i, SI_RING])
        st.ring[i, pos & (RING_N - 1)] = f
        st.isl[i, SI_RING] = pos + 1
        if pos >= n_short:
            r_short = max(r_short, abs(rocof_window_hz_per_s(st.ring[i], pos, n_short, h)))
        if pos >= n_long:
            r_long = max(r_long, abs(rocof_window_hz_per_s(st.ring[i], pos, n_long, h)))
        f_min = min(f_min, f)
        f_max = max(f_max, f)
        if dark:
            continue
        if f < BLACKOUT_HZ:  # the backstop: every unit's under-frequency protection acts at once
            log_event(events, n_events, t_ev, EV_BLACKOUT, -1, i, f)
            st.isl[i, SI_BLACKOUT] = 1.0
            dark = True
            for u in range(par.turb.shape[0]):
                if int(par.turb[u, TU_ISLAND]) == i and st.turb[u, ST_STATUS] != STATUS_STANDBY:
                    st.turb[u, ST_STATUS] = STATUS_TRIPPED
                    st.turb[u, ST_PM] = 0.0
            for b in bess:
                st.bess[b, SB_P] = 0.0
            shed = 1.0
            tripped = 1.0
            hs_tot = 0.0
            hs_rot = 0.0
            n_u = 0
            continue
        # RoCoF relays of turbines and inverters (loss-of-mains style), on their measuring windows
        if rocof_tu and pos >= n_w_tu:
            r = rocof_window_hz_per_s(st.ring[i], pos, n_w_tu, h)
            for j in range(n_u):
                u = units[j]
                if counts[j] <= 0.0 or par.turb[u, TU_ROCOF] < 0.5:
                    continue
                trip, t1 = _rocof_relay(r, st.turb[u, ST_ROCOF_S], ctrl[CT_TU_ROCOF_HZ_S], ctrl[CT_TU_ROCOF_DELAY_S], h,
                                        EV_ROCOF_PICKUP, u, i, t_ev, events, n_events)
                st.turb[u, ST_ROCOF_S] = t1
                if trip:
                    _trip_unit_group(par, st, units, u, i, np.int64(EV_ROCOF_TRIP), t_ev, r, events, n_events)
                    counts[j] = 0.0
                    tripped = 1.0
                    hs_rot, hs_tot = island_inertia_mw_s(par, st, units, counts, bess)
        if rocof_be and pos >= n_w_be:
            r = rocof_window_hz_per_s(st.ring[i], pos, n_w_be, h)
            for b in bess:
                if st.bess[b, SB_OK] < 0.5 or par.bess[b, BE_ROCOF] < 0.5:
                    continue
                trip, t1 = _rocof_relay(r, st.bess[b, SB_ROCOF_S], ctrl[CT_BE_ROCOF_HZ_S], ctrl[CT_BE_ROCOF_DELAY_S], h,
                                        EV_BESS_ROCOF_PICKUP, b, i, t_ev, events, n_events)
                st.bess[b, SB_ROCOF_S] = t1
                if trip:
                    _trip_bess(par, st, b, i, np.int64(EV_BESS_ROCOF_TRIP), t_ev, r, events, n_events)
                    n_bess_ok -= 1
                    hs_rot, hs_tot = island_inertia_mw_s(par, st, units, counts, bess)
        # frequency ride-through of turbines and inverters: time beyond each band of their no-trip curves
        if f < uf_top or f > of_bot or rt_active:
            rt_active = False
            for c in range(N_RT_CURVE):
                turb_curve = c == RT_TU_UF or c == RT_TU_OF
                if (turb_curve and n_u == 0) or (not turb_curve and n_bess_ok == 0):
                    continue
                base = SI_RT + c * N_RT_BAND
                band, pick = ride_through_step(f, st.isl[i, base:base + N_RT_BAND], ctrl, CT_RT + 2 * c * N_RT_BAND,
                                               N_RT_BAND, c == RT_TU_OF or c == RT_BE_OF, h)
                if pick >= 0 and ctrl[CT_RT + 2 * (c * N_RT_BAND + pick) + 1] <= RT_LOG_PICKUP_MAX_S:
                    log_event(events, n_events, t_ev, EV_RT_PICKUP, c * N_RT_BAND + pick, i, f)
                if band >= 0 and turb_curve:
                    for j in range(n_u):
                        if counts[j] > 0.0:
                            u = units[j]
                            _trip_unit_group(par, st, units, u, i, np.int64(EV_RT_TRIP), t_ev, f, events, n_events)
                            counts[j] = 0.0
                    tripped = 1.0
                    hs_rot, hs_tot = island_inertia_mw_s(par, st, units, counts, bess)
                elif band >= 0:
                    for b in bess:
                        if st.bess[b, SB_OK] > 0.5:
                            _trip_bess(par, st, b, i, np.int64(EV_BESS_RT_TRIP), t_ev, f, events, n_events)
                    n_bess_ok = 0
                    hs_rot, hs_tot = island_inertia_mw_s(par, st, units, counts, bess)
                for b in range(N_RT_BAND):
                    if st.isl[i, base + b] > 0.0:
                        rt_active = True
        # UFLS stages (they run only while picked up or below the next set point: above it every timer is reset)
        if ufls_on and stage < n_stage and (f < set_hz[stage] or st.ufls_timer[i, stage] > 0.0):
            for s in range(stage, n_stage):
                if f < set_hz[s] and st.ufls_timer[i, s] == 0.0:
                    log_event(events, n_events, t_ev, EV_UFLS_PICKUP, s + 1, i, f)
            new = ufls_step(f, stage, st.ufls_timer[i], set_hz, ctrl[CT_UFLS_DELAY_S], h)
            if new > stage:
                for s in range(stage, new):
                    log_event(events, n_events, t_ev, EV_UFLS_TRIP, s + 1, i, f)
                stage = new
                st.isl[i, SI_STAGE] = stage
                st.isl[i, SI_RESTORE] = 0.0
                shed = ufls_shed_fraction(stage, relief)
    if tied:
        for jj in range(n_sub):
            keep[jj] = ups_served_fraction(ups_on, shed, ups_u, ups_d)[0]
    st.isl[i, SI_DF] = df
    for j in range(units.shape[0]):
        pm_mean[units[j]] /= n_pass
    for b in bess:
        pb_mean[b] /= n_pass
    out[ISL_F_MIN_HZ] = f_min
    out[ISL_F_MAX_HZ] = f_max
    out[ISL_ROCOF_SHORT] = r_short
    out[ISL_ROCOF_LONG] = r_long
    out[ISL_LOAD_MW] = load_acc / n_pass
    out[ISL_KIN_MW] = kin_acc / n_pass
    out[ISL_IMPORT_MW] = imp_acc / n_pass
    out[ISL_TRIPPED] = tripped


@njit
def _trip_unit_group(par, st, units, u, i, code, t_s, value, events, n_events):  # pragma: no cover - jitted
    """A relay trips stepped unit ``u`` of island ``i`` and the online units the engine steps as ``u`` (same
    parameters and set point, not stepped themselves): status tripped, no power, each logged with ``code`` and
    the measured ``value``. Callers pass ``code`` as ``np.int64(EV_…)``: an event code as such is a literal to
    numba, which would compile a copy of this function for each code (twice the compilation, for a rare path)."""
    n_t, n_c = par.turb.shape[0], par.turb.shape[1]
    for v in range(n_t):
        if v != u:
            if int(par.turb[v, TU_ISLAND]) != i or st.turb[v, ST_STATUS] != STATUS_ONLINE:
                continue
            stepped = False
            for j in range(units.shape[0]):
                if units[j] == v:
                    stepped = True
            if stepped or st.turb[v, ST_PREF] != st.turb[u, ST_PREF] or st.turb[v, ST_DERATE] != st.turb[u, ST_DERATE]:
                continue
            same = True
            for c in range(n_c):
                if c != TU_ONLINE0 and par.turb[v, c] != par.turb[u, c]:  # (but the initial status)
                    same = False
            for c in range(par.gov.shape[1]):
                if par.gov[v, c] != par.gov[u, c]:
                    same = False
            if not same:
                continue
        st.turb[v, ST_STATUS] = STATUS_TRIPPED
        st.turb[v, ST_PM] = 0.0
        st.turb[v, ST_ROCOF_S] = 0.0
        log_event(events, n_events, t_s, code, v, i, value)


@njit
def _trip_bess(par, st, b, i, code, t_s, value, events, n_events):  # pragma: no cover - jitted
    """A relay trips battery yard ``b`` of island ``i`` (out of service, no power; logged with ``code`` and the
    measured ``value``; ``code`` as ``np.int64(EV_…)``, see :func:`_trip_unit_group`)."""
    st.bess[b, SB_OK] = 0.0
    st.bess[b, SB_P] = 0.0
    st.bess[b, SB_ROCOF_S] = 0.0
    log_event(events, n_events, t_s, code, b, i, value)
