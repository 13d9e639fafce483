"""The coupled stepping kernel: a composition of the concept modules' stages, one step at a time.

One call advances a whole segment (thousands of steps) over packed arrays (:mod:`twin.state`); Python
runs only between segments (events, the load-flow pass, recording). Each step composes, in order:

1. **workload** (:func:`twin.workload.hall_it_substeps`): each hall's IT power on the sub-step grid —
   the demanded power throttled by GPU temperature (:func:`twin.thermal.gpu_throttle_factor`) and the
   power cap, through GPU power smoothing and rack PSU storage when the scenario turns them on;
2. **thermal and cooling** (:func:`twin.thermal.hall_thermal_step`, :func:`twin.thermal.fws_step`,
   :func:`twin.thermal.chiller_heat_rejection_mw`, :func:`twin.cooling.cooling_plant_power_mw`): the
   three-node RC network per hall and plant, the chillers' duty and their electric power;
3. **dispatch** (:func:`twin.dispatch.pms_step`): availability, commitment, set points, battery schedules;
4. **island sub-steps** (:func:`twin.frequency.island_step`): governors, batteries, the swing equation
   and the relays on ``n_sub`` sub-steps, driven by the sub-step IT power;
5. **slow controls** (:func:`twin.dispatch.trim_step`, :func:`twin.protection.ufls_restore_step`,
   :func:`twin.protection.gpu_cap_step`): isochronous trim, UFLS restoration, GPU power capping.

Identical online units of an island (same model, state and set point) follow identical trajectories;
the kernel steps one of each such group and copies its state to the others (exact, and the cost of a
step grows with the number of distinct units, not of units). Results are step means (energy) except
temperatures, SoC and frequency (end of step), with per-step extremes of frequency and IT power and the
largest RoCoF over the relay windows. What is resolved is stated in :mod:`twin.frequency` and
docs/physics.md; electromagnetic and rotor-angle dynamics are not.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit
from .cooling import chiller_capacity_mw, cooling_plant_power_mw
from .dispatch import PMS_WORK_ROWS, island_reserve_mw, pms_step, tie_limit_step, trim_step
from .frequency import (
    F0_HZ, ISL_F_MAX_HZ, ISL_F_MIN_HZ, ISL_IMPORT_MW, ISL_KIN_MW, ISL_LOAD_MW, ISL_NOUT, ISL_ROCOF_LONG,
    ISL_ROCOF_SHORT, ISL_TRIPPED, island_step,
)
from .plant import (
    BE_ISLAND, CH_COP_REF, CH_CURVE, CH_ISLAND, CH_PLANT, CH_Q_REF_MW, CT_CAPPING, CT_SECONDARY, CT_UFLS_HZ, CT_UFLS_N,
    CT_UFLS_RELIEF, HA_UPS_E_MWH, HA_C_GPU_MJ_PER_K, HA_C_TCS_MJ_PER_K,
    HA_G_JC_MW_PER_K, HA_ISLAND, HA_LIQUID_FRAC, HA_N_GPU, HA_P_IDLE_MW, HA_P_PEAK_MW, HA_P_STATIC_MW, HA_PLANT, HA_T_SHUT_C,
    HA_T_SLOW_C, HA_TDP_KW, HA_UA_CDU_MW_PER_K, PL_C_FWS_MJ_PER_K, PL_FAN_FRAC, PL_PUMP_FRAC, PL_T_CHW_C, TU_ISLAND, TU_ONLINE0,
)
from .protection import chiller_restarts, gpu_cap_step, island_shed_fraction, ufls_restore_step, ups_drain, ups_shares
from .state import (
    EV_UFLS_RESTORE, log_event,
    SB_SOC, SC_DERATE, SC_OK, SC_RESTART_S, SH_CAP, SI_CH_TRIP, SH_TJ, SH_TTCS, SI_BLACKOUT, SI_DF, SI_LOSS, SI_OTHER, SI_RESTORE, SI_STAGE,
    SI_TIE_CUT, SI_TIE_SHED, SI_TIED, SP_P_COOL_MW, SP_Q_REJ_MW, SP_TFWS, ST_PREF, ST_STATUS,
)
from .storage import BA_NCOL, bess_lag_factors
from .thermal import (
    CHILLER_RAMP_FRAC_PER_S, CHILLER_TAU_S, chiller_heat_rejection_mw, fws_step, gpu_heat_split_mw,
    gpu_throttle_factor, hall_thermal_step, rc_decay,
)
from .turbines import STATUS_ONLINE
from .workload import hall_it_substeps

__all__ = ["F0_HZ", "step_segment"]


@njit(error_model="numpy", nogil=True)
def step_segment(n_steps, dt_s, n_sub, inp, par, st, out, sub):  # pragma: no cover - jitted
    """Advance the plant ``n_steps`` steps of ``dt_s`` seconds, ``n_sub`` sub-steps each.

    ``inp`` (:class:`twin.state.Inputs`), ``par`` (:class:`twin.state.Params`), ``st``
    (:class:`twin.state.State`, updated in place); fills ``out`` (:class:`twin.state.Outputs`, steps ×
    components) and, when its arrays are not empty, ``sub`` (:class:`twin.state.SubOutputs`). Returns the
    steps done: fewer than ``n_steps`` when a grid tie is to open for its import limit
    (:func:`twin.dispatch.tie_limit_step`), which the engine applies between segments.
    """
    n_t, n_b, n_h = par.turb.shape[0], par.bess.shape[0], par.hall.shape[0]
    n_p, n_i = par.plant.shape[0], st.isl.shape[0]
    h = dt_s / n_sub
    p_av, pm_mean, sched, pb_mean = np.zeros(n_t), np.zeros(n_t), np.zeros(n_b), np.zeros(n_b)
    work, sw, tmp3, th, qp = np.zeros((PMS_WORK_ROWS, n_i)), np.zeros(3), np.zeros(3), np.zeros(3), np.zeros((2, n_p))
    b_list, b_lo, b_a = _battery_lists(par, n_i, h, dt_s)
    it_sub, it_isl = np.zeros((n_h, n_sub)), np.zeros((n_i, n_sub))
    keep, isl_out, gfac, it_hall = np.ones((n_i, n_sub)), np.zeros((n_i, ISL_NOUT)), np.zeros(n_h), np.zeros((n_h, 3))
    fixed, load_est, it_mean_isl, shed_mw, shed0 = np.zeros(n_i), np.zeros(n_i), np.zeros(n_i), np.zeros(n_i), np.zeros(n_i)
    units, counts, lo, rep = np.zeros(n_t, np.int64), np.zeros(n_t), np.zeros(n_i + 1, np.int64), np.zeros(n_t, np.int64)
    hall_decay = _hall_decays(par, dt_s)  # the halls' RC nodes relax by the same factor every step
    chill = _chiller_aggregates(par, st)  # recomputed when a dip trips chillers or they restart (and at events)
    n_down = 0
    for c in range(par.chiller.shape[0]):
        if st.chiller[c, SC_RESTART_S] > 0.0:
            n_down += 1
    any_ups = False
    for hh in range(n_h):
        if par.hall[hh, HA_UPS_E_MWH] > 0.0:
            any_ups = True
    relief = par.ctrl[CT_UFLS_RELIEF:CT_UFLS_RELIEF + int(par.ctrl[CT_UFLS_N])]
    regroup = True
    for k in range(n_steps):
        ta = inp.t_amb[k]
        # 1. workload on the sub-step grid; 2. thermal and cooling (on the IT served at the step's start)
        _workload_stage(k, par, st, inp.demand, h, it_sub, it_isl, it_mean_isl, gfac, it_hall)
        if any_ups:
            ups_shares(par, st, it_hall)
        for i in range(n_i):
            shed0[i] = 1.0 - (1.0 - island_shed_fraction(int(st.isl[i, SI_STAGE]), st.isl[i, SI_BLACKOUT] > 0.5, relief)) * (
                1.0 - st.isl[i, SI_TIE_SHED])  # UFLS stages and blocks shed for the tie limit
        _thermal_cooling_stage(k, dt_s, ta, par, st, it_hall, shed0, chill, qp, th, hall_decay, out)
        # 3. dispatch on the island loads as they stand
        for i in range(n_i):
            dark = st.isl[i, SI_BLACKOUT] > 0.5
            fixed[i] = 0.0 if dark else st.isl[i, SI_OTHER]
            out.other[k, i] = fixed[i]
        for p in range(n_p):
            for i in range(n_i):
                if st.isl[i, SI_BLACKOUT] < 0.5:
                    fixed[i] += st.plant[p, SP_P_COOL_MW] * chill[p, 3 + i]
        for i in range(n_i):
            load_est[i] = it_mean_isl[i] * (1.0 - shed0[i]) + fixed[i]
            shed_mw[i] = it_mean_isl[i] * shed0[i]
        started, changed = pms_step(par, st, ta, load_est, shed_mw, dt_s, p_av, sched, work, tmp3, out.events, out.n_events,
                                    k * dt_s)
        out.starts[k] = started
        if changed or regroup:
            _group_units(par, st, units, counts, lo, rep)
            regroup = False
        # 4. island sub-steps
        pm_mean[:] = 0.0
        for i in range(n_i):
            island_step(i, n_sub, h, par, st, units[lo[i]:lo[i + 1]], counts[lo[i]:lo[i + 1]], st.turb[:, ST_PREF], p_av,
                        sched, b_list[b_lo[i]:b_lo[i + 1]], b_a, it_isl[i], fixed[i], st.isl[i, SI_LOSS], keep[i], pm_mean,
                        pb_mean, isl_out[i], sub, k, sw, out.events, out.n_events)
            if isl_out[i, ISL_TRIPPED] > 0.5:
                regroup = True
        # protection that acts on the step: chillers tripped by a dip (and their restarts), UPS energy
        recompute = False
        for i in range(n_i):
            if st.isl[i, SI_CH_TRIP] > 1.5:
                recompute = True
            st.isl[i, SI_CH_TRIP] = 0.0
        if recompute or n_down > 0:
            n_down, restarted = chiller_restarts(par, st, isl_out[:, ISL_F_MIN_HZ], dt_s, (k + 1) * dt_s, out.events,
                                                 out.n_events)
            if recompute or restarted:
                chill = _chiller_aggregates(par, st)
        if any_ups:
            ups_drain(par, st, it_hall, (k + 1) * dt_s, out.events, out.n_events)
        for u in range(n_t):  # identical units follow their group's stepped unit
            r = rep[u]
            if r != u:
                for c in range(st.turb.shape[1]):
                    st.turb[u, c] = st.turb[r, c]
                for c in range(st.gov.shape[1]):
                    st.gov[u, c] = st.gov[r, c]
                pm_mean[u] = pm_mean[r]
        # 5. grid-tie limits, slow controls
        tie_trip = tie_limit_step(par, st, work, isl_out, it_sub, it_hall, gfac, keep, it_mean_isl, dt_s, k * dt_s, out.events,
                                  out.n_events)
        _slow_controls(dt_s, par, st, work, it_mean_isl, isl_out, out, (k + 1) * dt_s, relief)
        _record(k, par, st, it_sub, it_hall, keep, gfac, pm_mean, pb_mean, isl_out, out)
        if tie_trip:  # the engine opens the tie before the next step
            return k + 1
    return n_steps


@njit
def _battery_lists(par, n_i, h, dt_s):  # pragma: no cover - jitted
    """Batteries by island (``b_list[b_lo[i]:b_lo[i+1]]``) and their lag factors (:func:`twin.storage.bess_lag_factors`)."""
    n_b = par.bess.shape[0]
    b_list, b_lo, b_a = np.zeros(n_b, np.int64), np.zeros(n_i + 1, np.int64), np.zeros((n_b, BA_NCOL))
    n = 0
    for i in range(n_i):
        b_lo[i] = n
        for b in range(n_b):
            if int(par.bess[b, BE_ISLAND]) == i:
                b_list[n] = b
                n += 1
    b_lo[n_i] = n
    for b in range(n_b):
        bess_lag_factors(par.bess[b], h, dt_s, b_a[b])
    return b_list, b_lo, b_a


@njit
def _hall_decays(par, dt_s):  # pragma: no cover - jitted
    """Each hall's GPU-node and coolant-loop decay factors over a step (:func:`twin.thermal.rc_decay`), once per
    segment instead of two exponentials per hall and step."""
    d = np.zeros((par.hall.shape[0], 2))
    for hh in range(par.hall.shape[0]):
        row = par.hall[hh]
        d[hh, 0] = rc_decay(row[HA_C_GPU_MJ_PER_K] / row[HA_G_JC_MW_PER_K], dt_s)
        d[hh, 1] = rc_decay(row[HA_C_TCS_MJ_PER_K] / row[HA_UA_CDU_MW_PER_K], dt_s)
    return d


@njit
def _chiller_aggregates(par, st):  # pragma: no cover - jitted
    """Per plant: [working rated capacity, curve, COP_ref, share of its power booked on each island…] (a chiller
    works when it has not failed and is not restarting after a dip)."""
    n_p, n_i = par.plant.shape[0], st.isl.shape[0]
    agg = np.zeros((n_p, 3 + n_i))
    for c in range(par.chiller.shape[0]):
        if st.chiller[c, SC_OK] > 0.5 and st.chiller[c, SC_RESTART_S] <= 0.0:
            p = int(par.chiller[c, CH_PLANT])
            agg[p, 0] += par.chiller[c, CH_Q_REF_MW] * st.chiller[c, SC_DERATE]
            agg[p, 1] = par.chiller[c, CH_CURVE]
            agg[p, 2] = par.chiller[c, CH_COP_REF]
    for c in range(par.chiller.shape[0]):
        p = int(par.chiller[c, CH_PLANT])
        if st.chiller[c, SC_OK] > 0.5 and st.chiller[c, SC_RESTART_S] <= 0.0 and agg[p, 0] > 0.0:
            agg[p, 3 + int(par.chiller[c, CH_ISLAND])] += par.chiller[c, CH_Q_REF_MW] * st.chiller[c, SC_DERATE] / agg[p, 0]
    for p in range(n_p):
        if agg[p, 0] <= 0.0:  # no working chiller: fans and pumps stay with the plant's first hall's island
            for hh in range(par.hall.shape[0]):
                if int(par.hall[hh, HA_PLANT]) == p:
                    agg[p, 3 + int(par.hall[hh, HA_ISLAND])] = 1.0
                    break
    return agg


@njit(inline="always")
def _workload_stage(k, par, st, demand, h, it_sub, it_isl, it_mean_isl, gfac, it_hall):  # pragma: no cover - jitted
    """Each hall's IT on the sub-step grid (:func:`twin.workload.hall_it_substeps`), summed per island;
    ``gfac`` receives each hall's clock factor (thermal throttle × power cap) for the step, ``it_hall``
    (n_hall, 3) each hall's mean, minimum and maximum over the sub-steps."""
    it_isl[:] = 0.0
    it_mean_isl[:] = 0.0
    n_sub = it_sub.shape[1]
    for hh in range(par.hall.shape[0]):
        row = par.hall[hh]
        i = int(row[HA_ISLAND])
        g = gpu_throttle_factor(st.hall[hh, SH_TJ], row[HA_T_SLOW_C] - 4.0, row[HA_T_SLOW_C], row[HA_T_SHUT_C]) * st.hall[hh, SH_CAP]
        g *= 1.0 - st.isl[i, SI_TIE_CUT]  # GPU power curtailed for the tie limit
        gfac[hh] = g
        hall_it_substeps(demand[k, :, hh], g, row[HA_P_IDLE_MW], row[HA_P_STATIC_MW], row[HA_N_GPU], row[HA_TDP_KW],
                         row[HA_P_PEAK_MW], st.hall[hh], par.ctrl, h, it_sub[hh])
        acc, lo_, hi_ = 0.0, np.inf, -np.inf
        for j in range(n_sub):
            p = it_sub[hh, j]
            it_isl[i, j] += p
            acc += p
            lo_ = min(lo_, p)
            hi_ = max(hi_, p)
        it_hall[hh, 0], it_hall[hh, 1], it_hall[hh, 2] = acc / n_sub, lo_, hi_
        it_mean_isl[i] += acc / n_sub


@njit(inline="always")
def _thermal_cooling_stage(k, dt_s, t_amb, par, st, it_hall, shed, chill, qp, th, hall_decay, out):  # pragma: no cover - jitted
    """Halls' GPU and coolant nodes, then each plant's heat rejection, facility water and electric power, on the IT
    each island serves at the step's start (``shed``: its unserved fraction; ``hall_decay`` (n_hall, 2): the GPU and
    coolant nodes' decay factors over the step, :func:`_hall_decays`; ``qp`` (2, n_plant) and ``th`` (3,) are scratch)."""
    n_p = par.plant.shape[0]
    q_in, it_plant = qp[0], qp[1]
    q_in[:] = 0.0
    it_plant[:] = 0.0
    for hh in range(par.hall.shape[0]):
        row = par.hall[hh]
        i, pl = int(row[HA_ISLAND]), int(row[HA_PLANT])
        p_it = it_hall[hh, 0] * (1.0 - shed[i])
        p_gpu, q_liq, q_air = gpu_heat_split_mw(p_it, row[HA_P_STATIC_MW], row[HA_LIQUID_FRAC])
        hall_thermal_step(st.hall[hh, SH_TJ], st.hall[hh, SH_TTCS], st.plant[pl, SP_TFWS], p_gpu, q_liq, row[HA_G_JC_MW_PER_K],
                          row[HA_C_GPU_MJ_PER_K], row[HA_UA_CDU_MW_PER_K], row[HA_C_TCS_MJ_PER_K], dt_s, th, hall_decay[hh, 0],
                          hall_decay[hh, 1])
        st.hall[hh, SH_TJ], st.hall[hh, SH_TTCS] = th[0], th[1]
        out.t_gpu[k, hh], out.t_tcs[k, hh] = th[0], th[1]
        q_in[pl] += th[2] + q_air
        it_plant[pl] += p_it
    for p in range(n_p):
        cv = int(chill[p, 1])
        t_rng, a_rng = (par.curve_ranges[cv, 0], par.curve_ranges[cv, 1]), (par.curve_ranges[cv, 2], par.curve_ranges[cv, 3])
        capft, eirft, eirfplr = par.curves[cv, 0:6], par.curves[cv, 6:12], par.curves[cv, 12:15]
        t_set = par.plant[p, PL_T_CHW_C]
        q_cap = chiller_capacity_mw(chill[p, 0], capft, t_set, t_amb, t_rng, a_rng)
        q_rej = chiller_heat_rejection_mw(q_in[p], st.plant[p, SP_TFWS], t_set, par.plant[p, PL_C_FWS_MJ_PER_K], CHILLER_TAU_S,
                                          q_cap, st.plant[p, SP_Q_REJ_MW], CHILLER_RAMP_FRAC_PER_S * chill[p, 0], dt_s)
        st.plant[p, SP_Q_REJ_MW] = q_rej
        st.plant[p, SP_TFWS] = fws_step(st.plant[p, SP_TFWS], q_in[p], q_rej, par.plant[p, PL_C_FWS_MJ_PER_K], dt_s)
        st.plant[p, SP_P_COOL_MW] = cooling_plant_power_mw(q_rej, chill[p, 0], chill[p, 2], capft, eirft, eirfplr, t_set, t_amb,
                                                           t_rng, a_rng, it_plant[p], par.plant[p, PL_FAN_FRAC],
                                                           par.plant[p, PL_PUMP_FRAC])
    for hh in range(par.hall.shape[0]):
        pl = int(par.hall[hh, HA_PLANT])
        i = int(par.hall[hh, HA_ISLAND])
        share = it_hall[hh, 0] * (1.0 - shed[i]) / it_plant[pl] if it_plant[pl] > 0.0 else 0.0
        out.p_cool[k, hh] = st.plant[pl, SP_P_COOL_MW] * share


@njit
def _group_units(par, st, units, counts, lo, rep):  # pragma: no cover - jitted
    """Pack each island's online units as groups of identical ones: ``units[lo[i]:lo[i+1]]`` are the stepped
    units, ``counts`` how many each stands for, ``rep[u]`` the stepped unit that ``u`` follows."""
    n_t, n_i = par.turb.shape[0], st.isl.shape[0]
    n = 0
    for u in range(n_t):
        rep[u] = u
    for i in range(n_i):
        lo[i] = n
        for u in range(n_t):
            if int(par.turb[u, TU_ISLAND]) != i or st.turb[u, ST_STATUS] != STATUS_ONLINE:
                continue
            found = -1
            for j in range(lo[i], n):
                if _same_unit(par, st, units[j], u):
                    found = j
                    break
            if found >= 0:
                counts[found] += 1.0
                rep[u] = units[found]
            else:
                units[n] = u
                counts[n] = 1.0
                n += 1
    lo[n_i] = n


@njit
def _same_unit(par, st, a, b):  # pragma: no cover - jitted
    """True when units ``a`` and ``b`` have the same parameters (but their initial status) and state."""
    for c in range(par.turb.shape[1]):
        if c != TU_ONLINE0 and par.turb[a, c] != par.turb[b, c]:
            return False
    for c in range(par.gov.shape[1]):
        if par.gov[a, c] != par.gov[b, c]:
            return False
    for c in range(st.turb.shape[1]):
        if st.turb[a, c] != st.turb[b, c]:
            return False
    for c in range(st.gov.shape[1]):
        if st.gov[a, c] != st.gov[b, c]:
            return False
    return True


@njit(inline="always")
def _slow_controls(dt_s, par, st, work, it_mean_isl, isl_out, out, t_s, relief):  # pragma: no cover - jitted
    """Once per step: isochronous trim and UFLS restoration (PMS), then GPU power capping on frequency."""
    secondary = par.ctrl[CT_SECONDARY] > 0.5
    for i in range(st.isl.shape[0]):
        if not secondary:
            continue
        trim_step(st, i, work[0, i], work[5, i], work[2, i], dt_s, F0_HZ)
        if st.isl[i, SI_TIED] < 0.5 and st.isl[i, SI_BLACKOUT] < 0.5:
            stage = int(st.isl[i, SI_STAGE])  # what the units can pick up before the stage's set point, what batteries hold
            reserve = island_reserve_mw(par, st, i, work[0, i], work[5, i], F0_HZ - par.ctrl[CT_UFLS_HZ + stage - 1]) if stage > 0 else 0.0
            stage, timer = ufls_restore_step(int(st.isl[i, SI_STAGE]), st.isl[i, SI_RESTORE], isl_out[i, ISL_F_MIN_HZ],
                                             reserve, it_mean_isl[i], relief, dt_s)
            if stage < int(st.isl[i, SI_STAGE]):
                log_event(out.events, out.n_events, t_s, EV_UFLS_RESTORE, int(st.isl[i, SI_STAGE]), i, isl_out[i, ISL_F_MIN_HZ])
            st.isl[i, SI_STAGE], st.isl[i, SI_RESTORE] = stage, timer
    if par.ctrl[CT_CAPPING] > 0.5:
        for hh in range(par.hall.shape[0]):
            i = int(par.hall[hh, HA_ISLAND])
            if st.isl[i, SI_BLACKOUT] < 0.5:
                st.hall[hh, SH_CAP] = gpu_cap_step(st.hall[hh, SH_CAP], F0_HZ + st.isl[i, SI_DF], dt_s=dt_s)


@njit(inline="always")
def _record(k, par, st, it_sub, it_hall, keep, gfac, pm_mean, pb_mean, isl_out, out):  # pragma: no cover - jitted
    """Write step ``k`` of the outputs."""
    n_i = st.isl.shape[0]
    n_sub = it_sub.shape[1]
    for i in range(n_i):
        out.f[k, i] = F0_HZ + st.isl[i, SI_DF]
        out.f_min[k, i] = isl_out[i, ISL_F_MIN_HZ]
        out.f_max[k, i] = isl_out[i, ISL_F_MAX_HZ]
        out.rocof[k, i] = isl_out[i, ISL_ROCOF_SHORT]
        out.rocof_long[k, i] = isl_out[i, ISL_ROCOF_LONG]
        out.p_kin[k, i] = isl_out[i, ISL_KIN_MW]
        out.load_isl[k, i] = isl_out[i, ISL_LOAD_MW]
        out.p_import[k, i] = isl_out[i, ISL_IMPORT_MW]
        out.unserved[k, i] = st.isl[i, SI_OTHER] - out.other[k, i]
    for hh in range(par.hall.shape[0]):
        i = int(par.hall[hh, HA_ISLAND])
        if keep[i, 0] == keep[i, n_sub - 1]:  # shedding only grows within a step: it held all step
            kp = keep[i, 0]
            acc, lo_, hi_ = it_hall[hh, 0] * kp, it_hall[hh, 1] * kp, it_hall[hh, 2] * kp
        else:
            acc, lo_, hi_ = 0.0, np.inf, -np.inf
            for j in range(n_sub):
                p = it_sub[hh, j] * keep[i, j]
                acc += p / n_sub
                lo_ = min(lo_, p)
                hi_ = max(hi_, p)
        out.p_it[k, hh], out.p_it_min[k, hh], out.p_it_max[k, hh] = acc, lo_, hi_
        out.shed[k, hh] = it_hall[hh, 0] - acc
        out.thr[k, hh] = gfac[hh]
        out.unserved[k, i] += out.shed[k, hh]
    for u in range(par.turb.shape[0]):
        out.pm[k, u] = pm_mean[u]
        out.status[k, u] = st.turb[u, ST_STATUS]
    for b in range(par.bess.shape[0]):
        out.p_bess[k, b] = pb_mean[b]
        out.soc[k, b] = st.bess[b, SB_SOC]
