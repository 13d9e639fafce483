"""The plant's power-management system (PMS): commitment, turbine set points and battery schedules.

Once per step (1 s), per island (docs/physics.md §3-§5; island practice [S2] [P23]: droop on every unit with
a slower isochronous trim by the PMS):

* **Availability**: each unit's ambient-derated rating (:func:`twin.turbines.derate_factor`) times any
  event derate; start-up timers run (:func:`twin.turbines.unit_status_step`).
* **Turbine set points**: a grid-tied island's units cover what the tie cannot import; an islanded
  island's cover the low-pass of its load plus losses plus an integral trim that returns the frequency
  to nominal (:data:`TRIM_KI`). The island total is shared by available capacity, held within each
  unit's minimum (DLE) load and availability (:func:`twin.turbines.setpoint_limits_mw`) and moved at
  the unit's sustained ramp rate (:func:`twin.turbines.ramp_limit_mw`).
* **Commitment** (with ``auto_start``): an islanded island whose spinning reserve falls below its
  largest online unit (plus the load its UFLS stages keep shed, so that it can come back) starts a
  standby unit, online after its start time; one whose slow load (the
  low-pass of its load) has sat below the units' summed minimum load for :data:`COMMIT_DWELL_S` (so that
  a checkpoint dip stops nothing), with reserve to spare without the smallest unit (the largest unit plus :data:`COMMIT_MARGIN`
  of it), unloads that unit at its ramp rate and stops it (so units run above their DLE minimum load).
* **Battery schedules** by mode (:mod:`twin.storage`): ``smoothing`` takes the fast part of an islanded
  island's load (:func:`twin.storage.smoothing_step`); ``import-cap`` discharges what the tie's import
  limit and the turbines cannot cover and recharges gently under it
  (:func:`twin.storage.import_cap_schedule_mw`), and when its island loses the tie it covers what the
  island's units cannot (an import limit of zero), recharging only while no load is shed; ``droop`` has no schedule. Droop acts on top, in
  the sub-steps (:func:`twin.frequency.island_step`).
"""

from __future__ import annotations

from ._jit import njit
from .plant import (
    BE_ISLAND, BE_MODE, BE_P_MW, CT_AUTO_START, CT_SECONDARY, GT_IMPORT_MW, GT_ISLAND, TU_DERATE_PER_C, TU_ISLAND,
    TU_P_ISO_MW, TU_P_MIN_FRAC, TU_RAMP_MW_PER_S, TU_START_S,
)
from .state import (
    EV_UNIT_ONLINE, EV_UNIT_STANDBY, EV_UNIT_START, EV_UNIT_STOP, log_event,
    SB_OK, SG_CLOSED, SI_BLACKOUT, SI_DF, SI_LOSS, SI_LPF, SI_SURPLUS_S, SI_TIED, SI_TRIM, ST_DERATE, ST_PM, ST_PREF, ST_STATUS,
    ST_TIMER,
)
from .storage import SMOOTH_TAU_S, import_cap_schedule_mw, smoothing_step
from .turbines import (
    STATUS_ONLINE, STATUS_STANDBY, STATUS_STARTING, derate_factor, ramp_limit_mw, setpoint_limits_mw,
    unit_status_step,
)

__all__ = ["TRIM_KI", "RECHARGE_FRAC", "STOP_FRAC", "COMMIT_MARGIN", "COMMIT_DWELL_S", "pms_step", "trim_step"]

#: PMS isochronous trim gain [MW per MW of online capacity per Hz·s]: slow beside the droop response [E].
TRIM_KI = 0.05
#: Import-cap batteries recharge at most at this fraction of their rating [E].
RECHARGE_FRAC = 0.1
#: A unit being stopped leaves the bus once its set point is below this fraction of its rating [E].
STOP_FRAC = 0.02
#: Hysteresis of commitment: a unit is stopped only if the reserve left exceeds the largest unit by this
#: fraction of it (starts happen as soon as the reserve falls below the largest unit) [E].
COMMIT_MARGIN = 0.5
#: The PMS stops a unit only after the island's slow load has stayed below the units' minimum load this long [s] [E].
COMMIT_DWELL_S = 300.0
#: ``ST_TIMER`` of an online unit that the PMS is unloading to stop it.
_STOPPING = -1.0


@njit(inline="always")
def pms_step(par, st, t_amb_c, load_mw, shed_mw, dt_s, p_av_mw, sched_mw, work, status_out, events, n_events,
             t_s):  # pragma: no cover - jitted
    """One PMS step: availability, start timers, commitment, set points (``ST_PREF``) and battery schedules.

    ``load_mw`` (n_island,) is each island's served load this step (IT + cooling + other) [MW] and
    ``shed_mw`` the IT its UFLS stages keep off, which the commitment adds to the reserve it wants. Fills
    ``p_av_mw`` (n_turbine,) with each unit's available power and ``sched_mw`` (n_bess,) with each
    battery's schedule [MW]; ``work`` is scratch of shape (7, n_island) (rows 0 and 5 keep each island's
    online capacity and set-point total for the slow controls), ``status_out`` scratch of shape (3,).
    Starts, units coming online, stops and units leaving the bus are appended to ``events``/``n_events``
    at time ``t_s`` (:func:`twin.state.log_event`). Returns ``(units that came
    online, status changed)``.
    """
    secondary = par.ctrl[CT_SECONDARY] > 0.5
    auto_start = par.ctrl[CT_AUTO_START] > 0.5
    n_t = par.turb.shape[0]
    n_i = st.isl.shape[0]
    cap_on = work[0]
    big = work[1]
    p_min_on = work[2]
    pm_now = work[3]
    imp_lim = work[4]
    pref_tot = work[5]
    any_starting = work[6]
    for i in range(n_i):
        any_starting[i] = 0.0
        cap_on[i] = 0.0
        big[i] = 0.0
        p_min_on[i] = 0.0
        pm_now[i] = 0.0
        imp_lim[i] = 0.0
    for g in range(par.grid.shape[0]):
        if st.grid[g, SG_CLOSED] > 0.5:
            imp_lim[int(par.grid[g, GT_ISLAND])] += par.grid[g, GT_IMPORT_MW]
    started = 0
    changed = False
    for u in range(n_t):
        i = int(par.turb[u, TU_ISLAND])
        p_av_mw[u] = par.turb[u, TU_P_ISO_MW] * derate_factor(t_amb_c, par.turb[u, TU_DERATE_PER_C]) * st.turb[u, ST_DERATE]
        if st.turb[u, ST_STATUS] == STATUS_STARTING:
            unit_status_step(STATUS_STARTING, st.turb[u, ST_TIMER], False, False, par.turb[u, TU_START_S], dt_s, status_out)
            st.turb[u, ST_TIMER] = status_out[1]
            if status_out[0] == STATUS_ONLINE:
                log_event(events, n_events, t_s, EV_UNIT_ONLINE, u, i, 0.0)
                st.turb[u, ST_STATUS] = STATUS_ONLINE
                st.turb[u, ST_PM] = 0.0
                st.turb[u, ST_PREF] = 0.0
                started += 1
                changed = True
            else:
                any_starting[i] = 1.0
        if st.turb[u, ST_STATUS] == STATUS_ONLINE:
            pm_now[i] += st.turb[u, ST_PM]
            if st.turb[u, ST_TIMER] != _STOPPING:  # a unit being stopped neither shares load nor counts as reserve
                cap_on[i] += p_av_mw[u]
                p_min_on[i] += setpoint_limits_mw(0.0, par.turb[u, TU_P_MIN_FRAC] * par.turb[u, TU_P_ISO_MW], p_av_mw[u])
                if p_av_mw[u] > big[i]:
                    big[i] = p_av_mw[u]
    # ---- island totals of the turbines' set points, battery schedules
    for i in range(n_i):
        tied = st.isl[i, SI_TIED] > 0.5
        lpf, fast = smoothing_step(st.isl[i, SI_LPF], load_mw[i], SMOOTH_TAU_S, dt_s)
        st.isl[i, SI_LPF] = lpf
        need = load_mw[i] + st.isl[i, SI_LOSS]
        if not secondary:
            pref_tot[i] = -1.0  # set points stay where they are
        elif tied:
            pref_tot[i] = min(max(need - imp_lim[i], 0.0), cap_on[i])
        else:
            pref_tot[i] = min(max(lpf + st.isl[i, SI_LOSS] + st.isl[i, SI_TRIM], 0.0), cap_on[i])
        for b in range(par.bess.shape[0]):
            if int(par.bess[b, BE_ISLAND]) != i:
                continue
            mode = int(par.bess[b, BE_MODE])
            if st.bess[b, SB_OK] < 0.5 or st.isl[i, SI_BLACKOUT] > 0.5:
                sched_mw[b] = 0.0
            elif mode == 0 and not tied:  # smoothing: the fast part of the island load
                sched_mw[b] = fast
            elif mode == 2:  # import cap (an islanded island imports nothing): the turbines' actual output
                recharge = RECHARGE_FRAC * par.bess[b, BE_P_MW] if shed_mw[i] <= 0.0 else 0.0  # not while load is shed
                sched_mw[b] = import_cap_schedule_mw(need, pm_now[i] if tied else cap_on[i], imp_lim[i] if tied else 0.0,
                                                     recharge)
            else:
                sched_mw[b] = 0.0
        # ---- commitment of islanded islands
        if not auto_start or tied or st.isl[i, SI_BLACKOUT] > 0.5 or pref_tot[i] < 0.0:
            continue
        if cap_on[i] - pref_tot[i] < big[i] + shed_mw[i] and any_starting[i] < 0.5:
            for u in range(n_t):
                if int(par.turb[u, TU_ISLAND]) == i and st.turb[u, ST_STATUS] == STATUS_STANDBY:
                    log_event(events, n_events, t_s, EV_UNIT_START, u, i, cap_on[i] - pref_tot[i])
                    st.turb[u, ST_STATUS] = STATUS_STARTING
                    st.turb[u, ST_TIMER] = par.turb[u, TU_START_S]
                    break
            continue
        surplus = st.isl[i, SI_LPF] + st.isl[i, SI_LOSS] < p_min_on[i]
        st.isl[i, SI_SURPLUS_S] = st.isl[i, SI_SURPLUS_S] + dt_s if surplus else 0.0
        if surplus and st.isl[i, SI_SURPLUS_S] >= COMMIT_DWELL_S:  # held long enough: no stop for a checkpoint dip
            st.isl[i, SI_SURPLUS_S] = 0.0
            # the smallest online unit that the island can spare with reserve ≥ its largest unit left
            pick = -1
            for u in range(n_t):
                if int(par.turb[u, TU_ISLAND]) != i or st.turb[u, ST_STATUS] != STATUS_ONLINE or st.turb[u, ST_TIMER] == _STOPPING:
                    continue
                if pick < 0 or p_av_mw[u] <= p_av_mw[pick]:  # ties: the highest-numbered unit (starts take the lowest)
                    pick = u
            if pick >= 0 and cap_on[i] - p_av_mw[pick] - st.isl[i, SI_LPF] - st.isl[i, SI_LOSS] >= (1.0 + COMMIT_MARGIN) * big[i]:
                st.turb[pick, ST_TIMER] = _STOPPING
                log_event(events, n_events, t_s, EV_UNIT_STOP, pick, i, st.turb[pick, ST_PM])
                changed = True
    # ---- unit set points
    for u in range(n_t):
        if st.turb[u, ST_STATUS] != STATUS_ONLINE:
            st.turb[u, ST_PREF] = 0.0
            continue
        i = int(par.turb[u, TU_ISLAND])
        ramp = par.turb[u, TU_RAMP_MW_PER_S]
        if st.turb[u, ST_TIMER] == _STOPPING:
            st.turb[u, ST_PREF] = ramp_limit_mw(st.turb[u, ST_PREF], 0.0, ramp, ramp, dt_s)
            if st.turb[u, ST_PREF] <= STOP_FRAC * par.turb[u, TU_P_ISO_MW]:
                log_event(events, n_events, t_s, EV_UNIT_STANDBY, u, i, 0.0)
                st.turb[u, ST_STATUS] = STATUS_STANDBY
                st.turb[u, ST_TIMER] = 0.0
                st.turb[u, ST_PREF] = 0.0
                st.turb[u, ST_PM] = 0.0
                changed = True
            continue
        if pref_tot[i] < 0.0:
            continue
        share = pref_tot[i] * p_av_mw[u] / cap_on[i] if cap_on[i] > 0.0 else 0.0
        target = setpoint_limits_mw(share, par.turb[u, TU_P_MIN_FRAC] * par.turb[u, TU_P_ISO_MW], p_av_mw[u])
        st.turb[u, ST_PREF] = ramp_limit_mw(st.turb[u, ST_PREF], target, ramp, ramp, dt_s)
    return started, changed


@njit(inline="always")
def trim_step(st, i, cap_on_mw, pref_tot_mw, p_min_mw, dt_s, f0_hz):  # pragma: no cover - jitted
    """Isochronous trim of an islanded island: integrate the frequency error into its set points [MW].

    ``trim −= Ki·(Δf/f0)·cap_on·f0·dt`` (:data:`TRIM_KI`), held while the set points sit at the island's
    capacity (or at the units' minimum load ``p_min_mw``) and the error would push them further
    (anti-windup), and within ±cap_on; reset while grid-tied or dark.
    """
    if st.isl[i, SI_TIED] > 0.5 or st.isl[i, SI_BLACKOUT] > 0.5:
        st.isl[i, SI_TRIM] = 0.0
        return
    df = st.isl[i, SI_DF]
    if (df < 0.0 and pref_tot_mw >= cap_on_mw) or (df > 0.0 and pref_tot_mw <= p_min_mw):
        return
    trim = st.isl[i, SI_TRIM] - TRIM_KI * df / f0_hz * cap_on_mw * dt_s * f0_hz
    st.isl[i, SI_TRIM] = min(max(trim, -cap_on_mw), cap_on_mw)
