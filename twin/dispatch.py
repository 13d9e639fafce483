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
* **Commitment** (with ``auto_start``), by the rule of each turbine group in the site file
  (``commitment``, :data:`twin.plant.COMMIT_RULES`): ``fixed`` units keep the number online the file
  sets (a tripped one is replaced by a standby unit of the rule, if there is one; none is stopped);
  with ``reserve`` units, an island whose reserve falls below its requirement — the largest online unit
  (N-1) or a stated ``reserve_mw``, times ``1 + reserve_margin_frac``, plus the load its UFLS stages or
  the tie limit keep shed, so that it can come back — starts a standby unit, online after its start
  time. The reserve is the units' headroom, plus, on a grid-tied island, the tie's headroom under its
  limit. One whose slow load (the low-pass of its load, less the tie's limit) has sat below the units'
  summed minimum load for :data:`COMMIT_DWELL_S` (so that a checkpoint dip stops nothing), with the
  requirement plus :data:`COMMIT_MARGIN` of its largest unit to spare without the smallest unit,
  unloads that unit at its ramp rate and stops it (so units run above their DLE minimum load).
* **Grid-tie import limit** (:func:`tie_limit_step`, after the island's step): every second the import
  is above the sum of the island's closed ties' firm limits opens (and its end closes) a logged
  violation; after the tie's ``limit_delay_s`` its ``limit_action`` acts: ``curtail`` caps the
  dynamic GPU power (down to :data:`twin.protection.CAP_MIN` of it) by what the turbines and batteries
  (which already cover all they can) leave above the limit, ``shed`` sheds IT in blocks of
  :data:`TIE_SHED_BLOCK`, ``trip`` opens the tie (at the segment's end, :class:`twin.engine.Engine`).
  A grid-tied island's import is the balance of its own load and sources, so cutting load after the
  island's step is exact; curtailing and shedding hold the import :data:`TIE_MARGIN_FRAC` under the
  limit, where an enforcing tie's units and import-cap batteries also aim.
* **Battery schedules** by mode (:mod:`twin.storage`): ``smoothing`` takes the fast part of an islanded
  island's load (:func:`twin.storage.smoothing_step`); ``import-cap`` discharges what the tie's import
  limit and the turbines cannot cover and recharges gently under it
  (:func:`twin.storage.import_cap_schedule_mw`), and when its island loses the tie it covers what the
  island's units cannot (an import limit of zero), recharging only while no load is shed; ``droop`` has no schedule. Droop acts on top, in
  the sub-steps (:func:`twin.frequency.island_step`).
"""

from __future__ import annotations

import math

from ._jit import njit
from .frequency import F0_HZ, ISL_IMPORT_MW, ISL_LOAD_MW
from .plant import (
    BE_E_MWH, BE_ETA_D, BE_ISLAND, BE_MODE, BE_P_MW, BE_SOC_MAX, BE_SOC_MIN, CT_AUTO_START, CT_SECONDARY, GT_ACTION,
    GT_DELAY_S, GT_IMPORT_MW, GT_ISLAND, HA_ISLAND, HA_P_IDLE_MW, TU_COMMIT, TU_DERATE_PER_C, TU_GOV, TU_H_S, TU_ISLAND,
    TU_ONLINE0, TU_P_ISO_MW, TU_P_MIN_FRAC, TU_RAMP_MW_PER_S, TU_RESERVE_MARGIN, TU_RESERVE_MW, TU_S_MVA, TU_START_S,
)
from .protection import CAP_MIN
from .state import (
    EV_TIE_CLEAR, EV_TIE_CURTAIL, EV_TIE_OVER, EV_TIE_RESTORE, EV_TIE_SHED, EV_TIE_TRIP, EV_UNIT_ONLINE, EV_UNIT_STANDBY,
    EV_UNIT_START, EV_UNIT_STOP, log_event,
    SB_DERATE, SB_OK, SB_P, SB_SOC, SG_CLOSED, SI_BLACKOUT, SI_DF, SI_LOSS, SI_LPF, SI_SURPLUS_S, SI_TIE_CUT, SI_TIE_OK_S,
    SI_TIE_OVER_S, SI_TIE_SHED, SI_TIE_TRIP, SI_TIE_UNDER_S, SI_TIE_VIOL, SI_TIED, SI_TRIM, ST_DERATE, ST_PM, ST_PREF, ST_STATUS, ST_TIMER,
)
from .storage import SMOOTH_TAU_S, SOC_BAND, import_cap_schedule_mw, smoothing_step, soc_power_limit_mw
from .turbines import (
    GG_KTURB, GG_ROPEN, GOV_GGOV1, STATUS_ONLINE, STATUS_STANDBY, STATUS_STARTING, derate_factor, ramp_limit_mw, setpoint_limits_mw,
    unit_status_step,
)

__all__ = ["TRIM_KI", "RECHARGE_FRAC", "STOP_FRAC", "COMMIT_MARGIN", "COMMIT_DWELL_S", "PMS_WORK_ROWS", "RESERVE_HOLD_S",
           "TIE_TOL_MW", "TIE_MARGIN_FRAC", "TIE_CLEAR_S", "TIE_SHED_BLOCK", "TIE_RESTORE_S", "TIE_CUT_UP_PER_S", "pms_step", "trim_step",
           "island_reserve_mw", "tie_limit_step"]

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
#: Rows of :func:`pms_step`'s per-island scratch (``work``); rows 0, 2 and 5 are read by the slow controls.
PMS_WORK_ROWS = 13
#: A battery counts toward the reserve that brings load back (UFLS restoration, released curtailment) only with
#: the power it can hold this long from the energy above its SoC derate band [s] [E]: a yard near its floor
#: would otherwise bring a stage back that it drops again seconds later.
RESERVE_HOLD_S = 900.0
#: Import above a tie's limit by less than this is no violation (the KPI's tolerance, twin.kpi) [MW].
TIE_TOL_MW = 1e-3
#: The PMS aims the import this fraction under a tie's limit (units, import-cap batteries, curtailing and
#: shedding): the island's losses reach the kernel a segment late and batteries follow with a lag [E].
TIE_MARGIN_FRAC = 0.005
#: A logged violation ends once the import has stayed under the limit this long [s] (every second above it
#: counts in the KPI regardless) [E].
TIE_CLEAR_S = 60.0
#: The tie-limit ``shed`` action sheds IT in blocks of this fraction of the island's IT (UFLS stage 1's
#: relief, twin.protection.UFLS_RELIEF) [E].
TIE_SHED_BLOCK = 0.05
#: A block shed for the tie limit comes back, and a curtailment starts to be given back, once the island could
#: carry it for this long [s] [E]: as UFLS restoration (twin.protection.RESTORE_S), longer than a checkpoint's
#: pause (5-120 s, twin.workload), so that the training resuming does not shed it again.
TIE_RESTORE_S = 300.0
#: A tie-limit curtailment is given back at this rate [fraction of the dynamic GPU power per s] [E]: slowly, so
#: that a checkpoint's pause (5-120 s, twin.workload) does not lift the cap the training needs when it resumes.
TIE_CUT_UP_PER_S = 0.001


@njit(inline="always")
def pms_step(par, st, t_amb_c, load_mw, shed_mw, dt_s, p_av_mw, sched_mw, work, status_out, events, n_events,
             t_s):  # pragma: no cover - jitted
    """One PMS step: availability, start timers, commitment, set points (``ST_PREF``) and battery schedules.

    ``load_mw`` (n_island,) is each island's served load this step (IT + cooling + other) [MW] and
    ``shed_mw`` the IT its UFLS stages (or its tie limit) keep off, which the commitment adds to the
    reserve it wants. Fills ``p_av_mw`` (n_turbine,) with each unit's available power and ``sched_mw``
    (n_bess,) with each battery's schedule [MW]; ``work`` is scratch of shape (:data:`PMS_WORK_ROWS`,
    n_island) (rows 0, 2 and 5 keep each island's online capacity, minimum load and set-point total for the
    slow controls), ``status_out`` scratch of shape (3,). Starts, units coming online, stops and units
    leaving the bus are appended to ``events``/``n_events`` at time ``t_s`` (:func:`twin.state.log_event`).
    Returns ``(units that came online, status changed)``.
    """
    secondary = par.ctrl[CT_SECONDARY] > 0.5
    auto_start = par.ctrl[CT_AUTO_START] > 0.5
    n_t = par.turb.shape[0]
    n_i = st.isl.shape[0]
    cap_on = work[0]
    big = work[1]
    p_min_on = work[2]
    pm_now = work[3]
    imp_lim = work[4]  # what the closed ties may import: their limits less TIE_MARGIN_FRAC
    pref_tot = work[5]
    any_starting = work[6]
    n_res = work[7]  # units under the 'reserve' rule (online, starting or standby)
    res_mw = work[8]  # largest stated reserve of those [MW]
    res_big = work[9]  # 1: one of them asks for the largest unit as reserve
    res_margin = work[10]
    fix_target = work[11]  # 'fixed' units the file puts online
    fix_now = work[12]  # 'fixed' units online or starting
    work[:] = 0.0  # every row is this step's (pref_tot is set for each island before it is read)
    for g in range(par.grid.shape[0]):
        if st.grid[g, SG_CLOSED] > 0.5:
            imp_lim[int(par.grid[g, GT_ISLAND])] += par.grid[g, GT_IMPORT_MW] * (1.0 - TIE_MARGIN_FRAC)
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
        status = st.turb[u, ST_STATUS]
        if par.turb[u, TU_COMMIT] > 0.5:
            if status == STATUS_ONLINE or status == STATUS_STARTING or status == STATUS_STANDBY:
                n_res[i] += 1.0
                if par.turb[u, TU_RESERVE_MW] < 0.0:
                    res_big[i] = 1.0
                res_mw[i] = max(res_mw[i], par.turb[u, TU_RESERVE_MW])
                res_margin[i] = max(res_margin[i], par.turb[u, TU_RESERVE_MARGIN])
        else:
            fix_target[i] += par.turb[u, TU_ONLINE0]
            if status == STATUS_ONLINE or status == STATUS_STARTING:
                fix_now[i] += 1.0
        if status == STATUS_ONLINE:
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
        # ---- commitment
        if not auto_start or st.isl[i, SI_BLACKOUT] > 0.5 or pref_tot[i] < 0.0:
            continue
        if fix_now[i] < fix_target[i]:  # 'fixed': replace a unit that left the bus
            if _start_standby(par, st, i, 0, events, n_events, t_s, cap_on[i] - pref_tot[i]):
                fix_now[i] += 1.0
        if n_res[i] < 0.5:
            continue
        # 'reserve': the units' headroom (and the tie's under its limit) against the requirement
        slow = st.isl[i, SI_LPF] + st.isl[i, SI_LOSS] - (imp_lim[i] if tied else 0.0)
        headroom = cap_on[i] + imp_lim[i] - need if tied else cap_on[i] - pref_tot[i]
        want = max(big[i] if res_big[i] > 0.5 else 0.0, res_mw[i]) * (1.0 + res_margin[i]) + shed_mw[i]
        if headroom < want and any_starting[i] < 0.5:
            _start_standby(par, st, i, 1, events, n_events, t_s, headroom)
            st.isl[i, SI_SURPLUS_S] = 0.0
            continue
        surplus = slow < p_min_on[i]
        st.isl[i, SI_SURPLUS_S] = st.isl[i, SI_SURPLUS_S] + dt_s if surplus else 0.0
        if surplus and st.isl[i, SI_SURPLUS_S] >= COMMIT_DWELL_S:  # held long enough: no stop for a checkpoint dip
            st.isl[i, SI_SURPLUS_S] = 0.0
            # the smallest online 'reserve' unit that the island can spare with the requirement (and margin) left
            pick = -1
            for u in range(n_t):
                if (int(par.turb[u, TU_ISLAND]) != i or st.turb[u, ST_STATUS] != STATUS_ONLINE or st.turb[u, ST_TIMER] == _STOPPING
                        or par.turb[u, TU_COMMIT] < 0.5):
                    continue
                if pick < 0 or p_av_mw[u] <= p_av_mw[pick]:  # ties: the highest-numbered unit (starts take the lowest)
                    pick = u
            if pick >= 0 and cap_on[i] - p_av_mw[pick] - slow >= want + COMMIT_MARGIN * big[i]:
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
def _start_standby(par, st, i, rule, events, n_events, t_s, reserve_mw):  # pragma: no cover - jitted
    """Start island ``i``'s lowest-numbered standby unit of commitment ``rule`` (online after its start time);
    log it with the reserve that asked for it. Returns whether a unit was started."""
    for u in range(par.turb.shape[0]):
        if (int(par.turb[u, TU_ISLAND]) == i and st.turb[u, ST_STATUS] == STATUS_STANDBY
                and int(par.turb[u, TU_COMMIT]) == rule):
            log_event(events, n_events, t_s, EV_UNIT_START, u, i, reserve_mw)
            st.turb[u, ST_STATUS] = STATUS_STARTING
            st.turb[u, ST_TIMER] = par.turb[u, TU_START_S]
            return True
    return False


@njit(inline="always")
def island_reserve_mw(par, st, i, cap_on_mw, pref_tot_mw, df_allowed_hz=0.0, hold_s=RESERVE_HOLD_S):  # pragma: no cover
    """Reserve of island ``i`` for bringing load back [MW]: its units' headroom ``cap_on − pref_tot`` plus, per
    working battery, the discharge it can still add, no more than it can hold for ``hold_s`` from the energy above
    its SoC derate band (:data:`RESERVE_HOLD_S`, :data:`twin.storage.SOC_BAND`); a battery that is charging counts
    from zero (its charge is mostly its droop answering a training swing, gone when the load comes back).

    With ``df_allowed_hz`` > 0 (a load step that the frequency may meet only down to ``f0 − df_allowed``, e.g.
    a UFLS stage's set point) the units count only what their governors' loading rate ``R`` (GGOV1 ``Kturb·Ropen``,
    [P22] [P23]; TGOV1 and ideal governors are not rate-limited) can pick up while the rotors carry the rest: a step
    ``ΔP`` met by a ramp leaves ``ΔP²/(2R)`` to the kinetic energy ``2·ΣH·S·Δf/f0``, so ``ΔP ≤ √(4·R·ΣH·S·Δf/f0)``
    [E]. A DLE island (0.5 %/s) thus takes a stage back only with batteries to carry it.
    """
    reserve = cap_on_mw - pref_tot_mw
    if df_allowed_hz > 0.0 and reserve > 0.0:
        rate = 0.0
        hs = 0.0
        limited = True
        for u in range(par.turb.shape[0]):
            if int(par.turb[u, TU_ISLAND]) != i or st.turb[u, ST_STATUS] != STATUS_ONLINE:
                continue
            hs += par.turb[u, TU_H_S] * par.turb[u, TU_S_MVA]
            if int(par.turb[u, TU_GOV]) == GOV_GGOV1:
                rate += par.gov[u, GG_KTURB] * par.gov[u, GG_ROPEN] * par.turb[u, TU_P_ISO_MW]
            else:
                limited = False
        if limited:
            reserve = min(reserve, math.sqrt(4.0 * rate * hs * df_allowed_hz / F0_HZ))
    for b in range(par.bess.shape[0]):
        if int(par.bess[b, BE_ISLAND]) != i or st.bess[b, SB_OK] < 0.5:
            continue
        row = par.bess[b]
        p_lim = soc_power_limit_mw(st.bess[b, SB_SOC], row[BE_SOC_MIN], row[BE_SOC_MAX], row[BE_P_MW] * st.bess[b, SB_DERATE], True)
        e_mwh = (st.bess[b, SB_SOC] - row[BE_SOC_MIN] - SOC_BAND) * row[BE_E_MWH] * row[BE_ETA_D]
        p_hold = max(e_mwh, 0.0) * 3600.0 / hold_s
        reserve += max(min(p_lim, p_hold) - max(st.bess[b, SB_P], 0.0), 0.0)  # a charge (droop on a swing) is no reserve
    return reserve


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


@njit(inline="always")
def tie_limit_step(par, st, work, isl_out, it_sub, it_hall, gfac, keep, it_mean_isl, dt_s, t0_s, events,
                   n_events):  # pragma: no cover - jitted
    """Hold each grid-tied island's import to its ties' firm limit as the site file says; report every second above it.

    Called once per step after the islands' sub-steps (``isl_out`` (n_island, ISL_NOUT) holds each island's
    step-mean import and served load, ``t0_s`` is the step's start). Per island with closed ties: the limit is
    the sum of their ``GT_IMPORT_MW``; the action and its delay those of the strictest tie
    (:data:`twin.plant.TIE_ACTIONS`). A violation starts with the first second the import is above the limit
    (by more than :data:`TIE_TOL_MW`) and ends once it has stayed under it for :data:`TIE_CLEAR_S`
    (``SI_TIE_OVER_S``: its age); from the step that starts ``delay`` into it (or while an action already holds):

    * ``curtail``: the import above ``limit·(1 − TIE_MARGIN_FRAC)`` is taken off the dynamic GPU power of the
      island's halls (``P = P_idle + (P − P_idle)·c`` on this step's sub-step and step IT ``it_sub``/``it_hall``,
      the throttle factor ``gfac`` and ``it_mean_isl``), at most down to :data:`twin.protection.CAP_MIN` of
      it; the cut is kept in ``SI_TIE_CUT`` (the workload stage applies it from the next step) and given back
      at :data:`TIE_CUT_UP_PER_S` once the units' and batteries' reserve (:func:`island_reserve_mw`) and the
      room under the limit have allowed it for :data:`TIE_RESTORE_S`;
    * ``shed``: IT is shed in blocks of :data:`TIE_SHED_BLOCK` (``SI_TIE_SHED``, applied to ``keep`` here
      and, from the next step, like a UFLS stage) as many as bring the import under; a block comes back once
      the island's reserve has covered it for :data:`TIE_RESTORE_S`;
    * ``trip``: at the end of the step that ends ``delay`` after the first step over (one step after it with
      no delay), the island's closed ``trip`` ties are logged as tripped and ``SI_TIE_TRIP`` is set; the
      engine opens them there (:class:`twin.engine.Engine`), and the kernel ends the segment.

    The import left after the action is what is reported: a violation's start (``tie-limit-exceeded``, with
    the import [MW]) and end (``tie-limit-cleared`` once the import has stayed under the limit for
    :data:`TIE_CLEAR_S`, with the seconds it spent above) are logged. Returns True when a
    tie is to open.
    """
    n_i = st.isl.shape[0]
    n_g = par.grid.shape[0]
    n_sub = it_sub.shape[1]
    trip = False
    for i in range(n_i):
        lim = 0.0
        act = 0
        delay = math.inf
        g_any = -1
        g_act = -1
        for g in range(n_g):
            if int(par.grid[g, GT_ISLAND]) != i:
                continue
            if g_any < 0:
                g_any = g
            if st.grid[g, SG_CLOSED] < 0.5:
                continue
            lim += par.grid[g, GT_IMPORT_MW]
            a = int(par.grid[g, GT_ACTION])
            if a > act or (a == act and par.grid[g, GT_DELAY_S] < delay):
                act = a
                delay = par.grid[g, GT_DELAY_S]
                g_act = g
        if g_any < 0:
            continue
        if g_act < 0 or st.isl[i, SI_TIED] < 0.5 or st.isl[i, SI_BLACKOUT] > 0.5:  # no limit while islanded
            if st.isl[i, SI_TIE_VIOL] > 0.0:
                log_event(events, n_events, t0_s, EV_TIE_CLEAR, g_any, i, st.isl[i, SI_TIE_VIOL])
            for c in (SI_TIE_OVER_S, SI_TIE_VIOL, SI_TIE_CUT, SI_TIE_SHED, SI_TIE_OK_S, SI_TIE_UNDER_S):
                st.isl[i, c] = 0.0
            continue
        imp = isl_out[i, ISL_IMPORT_MW]
        above = imp > lim + TIE_TOL_MW
        age = st.isl[i, SI_TIE_OVER_S] + dt_s if (above or st.isl[i, SI_TIE_OVER_S] > 0.0) else 0.0  # of the violation
        due = age > 0.0 and age - dt_s >= delay - 1e-9  # curtail, shed: from the step that starts `delay` in
        due_trip = above and age >= delay - 1e-9  # trip: the tie opens `delay` after the violation's first second
        target = lim * (1.0 - TIE_MARGIN_FRAC)
        cut_mw = 0.0
        if act == 1:  # curtail: cap the dynamic GPU power
            cut = st.isl[i, SI_TIE_CUT]
            dyn = 0.0
            for hh in range(par.hall.shape[0]):
                if int(par.hall[hh, HA_ISLAND]) == i:
                    dyn += max(it_hall[hh, 0] - par.hall[hh, HA_P_IDLE_MW], 0.0) * keep[i, 0]
            dyn_full = dyn / (1.0 - cut) if cut < 1.0 else 0.0
            if imp > target and (due or cut > 0.0) and dyn > 0.0:
                cut_mw = min(imp - target, dyn_full * (1.0 - CAP_MIN - cut))
                if cut_mw > 0.0:
                    c = 1.0 - cut_mw / dyn
                    if cut <= 0.0:
                        log_event(events, n_events, t0_s, EV_TIE_CURTAIL, g_act, i, cut_mw)
                    _scale_dynamic_it(par, i, c, it_sub, it_hall, gfac)
                    it_mean_isl[i] -= cut_mw / keep[i, 0] if keep[i, 0] > 0.0 else 0.0
                    st.isl[i, SI_TIE_CUT] = 1.0 - (1.0 - cut) * c
                else:
                    cut_mw = 0.0
                st.isl[i, SI_TIE_OK_S] = 0.0
            elif cut > 0.0:  # give it back, slowly, once the units, the batteries and the room under the limit allow
                room = target - imp + max(island_reserve_mw(par, st, i, work[0, i], work[5, i]), 0.0)
                st.isl[i, SI_TIE_OK_S] = st.isl[i, SI_TIE_OK_S] + dt_s if room > 0.0 else 0.0
                if st.isl[i, SI_TIE_OK_S] >= TIE_RESTORE_S:
                    back = min(TIE_CUT_UP_PER_S * dt_s, room / dyn_full if dyn_full > 0.0 else cut)
                    st.isl[i, SI_TIE_CUT] = max(cut - back, 0.0)
                    if st.isl[i, SI_TIE_CUT] <= 0.0:
                        st.isl[i, SI_TIE_OK_S] = 0.0
                        log_event(events, n_events, t0_s + dt_s, EV_TIE_CURTAIL, g_act, i, 0.0)
        elif act == 2:  # shed IT in blocks
            f = st.isl[i, SI_TIE_SHED]
            it_served = it_mean_isl[i] * keep[i, 0]
            blk = TIE_SHED_BLOCK * it_served
            n_cur = int(round(f / TIE_SHED_BLOCK))
            if blk > 0.0 and imp - n_cur * blk > target and (due or n_cur > 0):
                n_new = min(int(math.ceil((imp - target) / blk - 1e-3)), int(round(1.0 / TIE_SHED_BLOCK)))
                if n_new > n_cur:
                    log_event(events, n_events, t0_s, EV_TIE_SHED, g_act, i, (n_new - n_cur) * blk)
                    n_cur = n_new
                st.isl[i, SI_TIE_OK_S] = 0.0
            elif n_cur > 0:  # a block comes back once the island has covered it for TIE_RESTORE_S
                room = target - (imp - n_cur * blk) + max(island_reserve_mw(par, st, i, work[0, i], work[5, i]), 0.0)
                st.isl[i, SI_TIE_OK_S] = st.isl[i, SI_TIE_OK_S] + dt_s if room > blk else 0.0
                if st.isl[i, SI_TIE_OK_S] >= TIE_RESTORE_S:
                    st.isl[i, SI_TIE_OK_S] = 0.0
                    log_event(events, n_events, t0_s + dt_s, EV_TIE_RESTORE, g_act, i, blk)
                    n_cur -= 1
            st.isl[i, SI_TIE_SHED] = n_cur * TIE_SHED_BLOCK
            if n_cur > 0:
                cut_mw = n_cur * blk
                kp = 1.0 - n_cur * TIE_SHED_BLOCK
                for j in range(n_sub):
                    keep[i, j] *= kp
        elif act == 3 and due_trip:  # trip: the ties open at the end of this step
            for g in range(n_g):
                if int(par.grid[g, GT_ISLAND]) == i and st.grid[g, SG_CLOSED] > 0.5 and int(par.grid[g, GT_ACTION]) == 3:
                    log_event(events, n_events, t0_s + dt_s, EV_TIE_TRIP, g, i, imp)
            st.isl[i, SI_TIE_TRIP] = 1.0
            trip = True
        if cut_mw > 0.0:
            imp -= cut_mw
            isl_out[i, ISL_IMPORT_MW] = imp
            isl_out[i, ISL_LOAD_MW] -= cut_mw
        # ---- the report: every second above the limit, after any action
        if imp > lim + TIE_TOL_MW:
            if st.isl[i, SI_TIE_VIOL] <= 0.0:
                log_event(events, n_events, t0_s, EV_TIE_OVER, g_act, i, imp)
            st.isl[i, SI_TIE_VIOL] += dt_s
            st.isl[i, SI_TIE_UNDER_S] = 0.0
        elif st.isl[i, SI_TIE_VIOL] > 0.0:
            st.isl[i, SI_TIE_UNDER_S] += dt_s
            if st.isl[i, SI_TIE_UNDER_S] >= TIE_CLEAR_S:
                log_event(events, n_events, t0_s + dt_s, EV_TIE_CLEAR, g_act, i, st.isl[i, SI_TIE_VIOL])
                st.isl[i, SI_TIE_VIOL] = 0.0
                st.isl[i, SI_TIE_UNDER_S] = 0.0
        st.isl[i, SI_TIE_OVER_S] = age if st.isl[i, SI_TIE_VIOL] > 0.0 else 0.0
    return trip


@njit(inline="always")
def _scale_dynamic_it(par, i, c, it_sub, it_hall, gfac):  # pragma: no cover - jitted
    """Scale the dynamic part (above idle) of island ``i``'s halls' IT by ``c``: sub-steps, step mean/min/max, throttle."""
    for hh in range(par.hall.shape[0]):
        if int(par.hall[hh, HA_ISLAND]) != i:
            continue
        idle = par.hall[hh, HA_P_IDLE_MW]
        for j in range(it_sub.shape[1]):
            if it_sub[hh, j] > idle:
                it_sub[hh, j] = idle + (it_sub[hh, j] - idle) * c
        for m in range(3):
            if it_hall[hh, m] > idle:
                it_hall[hh, m] = idle + (it_hall[hh, m] - idle) * c
        gfac[hh] *= c
