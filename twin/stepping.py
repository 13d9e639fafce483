"""The coupled per-second stepping kernel: workload → thermal/cooling → dispatch → frequency → protection.

One call advances a whole segment (thousands of seconds) over packed arrays; Python runs only between
segments (events, load-flow pass, recording). The load flow runs as a second pass over the segment
(:mod:`twin.engine`), with the island losses of the previous segment in the power balance here.

What is resolved (PHYSICS.md, step-size warning): governors, batteries and the swing equation run on
``n_sub`` sub-steps per second (default 20, i.e. 50 ms); thermal nodes, chillers, dispatch and the
workload advance once per second, the workload as per-second means. Electromagnetic and rotor-angle
dynamics are not resolved.

Models (each cites PHYSICS.md; [E] = engineering estimate, a default to calibrate):

* **IT power** (§1): ``P = P_idle + (P_demand − P_idle)·g`` with ``g = g_T(T_j)·cap``; UFLS sheds a
  fraction of the island's IT load.
* **GPU throttle** g_T (§6): 1 below 85 °C, linear to 0.6 at the slowdown threshold, 0.45 above it,
  0 (idle) at the shutdown threshold.
* **Thermal RC** (§6): GPU node (C = 0.2 kJ/K per GPU, R_jc = 0.025 K/W per GPU [E]) → coolant loop
  (TCS: C from its volume of PG25, CDU UA sized for peak IT heat at 8 K mean difference [E]) → facility
  water (FWS: C from its volume) → chillers (``Chiller:Electric:EIR``) → ambient. The chillers are
  asked for the heat entering the FWS plus a proportional correction of its set-point error
  (τ = 600 s [E]), within their ambient-derated capacity. Fans and pumps are fractions of the heat
  (§7).
* **Turbines** (§3): a droop governor (R from the file) with a first-order lag ``T_gov = Tact + Tb =
  1 s`` and valve-rate limits ±0.10 pu/s (GGOV1 typical), within the ambient-derated capacity; the
  plant PMS sets references each second, ramp-limited at the file's ramp rate
  (:func:`twin.turbines.ramp_limit_mw`), shared by available
  capacity, with an integral (isochronous) trim that returns the frequency to 60 Hz [S2 (23)]. When
  the spinning reserve of an islanded island falls below its largest online unit the PMS starts a
  standby unit, online after the file's start time. A trip drops a unit's output at once.
* **BESS** (§5): droop (R_b from the file, deadband ±0.036 Hz, :func:`twin.storage.droop_response_mw`)
  plus a schedule by mode (``smoothing``:
  the high-pass part of the island load, τ = 60 s; ``import-cap``: what the grid tie cannot import;
  ``droop``: none), first-order lag at the file's response time, power derated to 0 over the last 5 %
  of SoC at each end (:func:`twin.storage.soc_power_limit_mw`), SoC advanced once per second with the
  step's mean power (:func:`twin.storage.soc_step`, η = √RTE).
* **Frequency** (§4): one aggregate swing equation per islanded island,
  ``dΔf/dt = f0/(2·H·S)·(ΣPm + P_bess − P_load − P_loss)`` with H·S summed over online turbines,
  advanced exactly over each sub-step (:func:`twin.frequency.swing_step`; ideal governors enter as
  its droop stiffness);
  load damping D = 0 for converter loads [E]. Islands with a closed grid tie are held at 60 Hz.
* **Protection**: GPU power capping below 59.7 Hz (5 %/s down to 60 % of demand, released at
  1 %/s above 59.9 Hz, on the frequency at the end of each second: :func:`twin.protection.gpu_cap_step`)
  [E]; UFLS at 59.3/59.1/58.9/58.7/58.5 Hz shedding 5/15/25/35/45 % of IT
  cumulatively (ERCOT set points and first three reliefs, PHYSICS.md §4 (39); the last two [E];
  :func:`twin.protection.ufls_step` on every sub-step, without relay delay [E]); a
  stage is restored after 300 s above 59.95 Hz when the spinning reserve allows [E].
"""

from __future__ import annotations

import numpy as np

from ._jit import njit
from .cooling import biquadratic, chiller_power_mw
from .plant import (
    B_DROOP, B_E_MWH, B_ETA, B_ISLAND, B_MODE, B_P_MW, B_RESPONSE_S, B_SOC_MAX, B_SOC_MIN,
    C_COP_REF, C_CURVE, C_ISLAND, C_PLANT, C_Q_REF_MW,
    G_IMPORT_MW, G_ISLAND,
    H_GPUS_PER_RACK, H_ISLAND, H_LIQUID_FRAC, H_N_GPU, H_PLANT, H_RACK_IDLE_KW, H_RACK_PEAK_KW, H_RACKS,
    H_T_SHUT_C, H_T_SLOW_C, H_TDP_KW,
    P_C_FWS_MJ_PER_K, P_C_TCS_MJ_PER_K, P_FAN_FRAC, P_PUMP_FRAC, P_T_CHW_C,
    T_DERATE_PER_C, T_DROOP, T_GOV_S, T_H_S, T_ISLAND, T_P_ISO_MW, T_RAMP_MW_PER_S, T_S_MVA, T_START_S,
)
from .protection import UFLS_HZ, UFLS_RELIEF, gpu_cap_step, ufls_shed_fraction, ufls_step
from .storage import DEADBAND_HZ as BESS_DEADBAND_HZ
from .storage import droop_response_mw, soc_power_limit_mw, soc_step
from .frequency import swing_step
from .thermal import gpu_throttle_factor
from .turbines import derate_factor, ramp_limit_mw

__all__ = ["F0_HZ", "step_segment", "STATE_COLUMNS"]

F0_HZ = 60.0
# ---- engine constants [E] (PHYSICS.md §3-§6)
C_GPU_MJ_PER_K = 0.2e-3  # heat capacity of one GPU package + cold plate [MJ/K]
R_JC_K_PER_MW = 0.025e6  # junction-to-coolant resistance of one GPU [K/MW]
CDU_DT_DESIGN_K = 8.0  # mean TCS-FWS difference at peak IT heat [K]
CHILLER_TAU_S = 600.0  # set-point correction time constant of the chiller plant [s]
VALVE_RATE_PU_S = 0.10  # valve opening/closing rate [pu/s] (GGOV1 Ropen/Rclose)
SMOOTH_TAU_S = 60.0  # BESS smoothing high-pass time constant [s]
TRIM_KI = 0.05  # PMS isochronous trim gain [MW per MW·(Δf/f0)·s], slow compared with droop
RESTORE_HZ, RESTORE_S = 59.95, 300.0
#: UFLS relay delay [s]: stages trip on the sub-step their set point is crossed [E]
UFLS_DELAY_S = 0.0
#: Below this frequency an islanded island blacks out (generator under-frequency protection) [E].
BLACKOUT_HZ = 57.0

# ---- state columns
(ST_STATUS, ST_TIMER, ST_PM, ST_PREF, ST_DERATE, ST_NCOL) = range(6)  # turbines; status: 0 standby, 1 online, 2 starting, 3 tripped
(SB_SOC, SB_P, SB_OK, SB_DERATE, SB_NCOL) = range(5)
(SH_TJ, SH_TTCS, SH_CAP, SH_NCOL) = range(4)
(SP_TFWS, SP_NCOL) = range(2)
(SC_OK, SC_DERATE, SC_NCOL) = range(3)
(SI_DF, SI_STAGE, SI_TRIM, SI_LOSS, SI_TIED, SI_RESTORE, SI_LPF, SI_BLACKOUT, SI_NCOL) = range(9)
(SG_CLOSED, SG_NCOL) = range(2)
STATUS_STANDBY, STATUS_ONLINE, STATUS_STARTING, STATUS_TRIPPED = 0.0, 1.0, 2.0, 3.0

STATE_COLUMNS = {"turb": ST_NCOL, "bess": SB_NCOL, "hall": SH_NCOL, "plant": SP_NCOL, "chiller": SC_NCOL,
                 "island": SI_NCOL, "grid": SG_NCOL}


@njit(error_model="numpy", nogil=True)
def step_segment(
    n_steps, dt_s, n_sub,
    p_demand, t_amb,
    turb, bess, hall, plant, chiller, grid, isl_other_mw, curves, curve_ranges,
    s_turb, s_bess, s_hall, s_plant, s_ch, s_isl, s_grid,
    o_p_it, o_p_cool, o_t_gpu, o_t_tcs, o_thr, o_shed,
    o_pm, o_p_bess, o_soc, o_f, o_rocof, o_unserved, o_other, o_load_isl, o_starts, o_status,
    controls,
):  # pragma: no cover - jitted
    """Advance the plant ``n_steps`` steps of ``dt_s`` seconds; fill the ``o_*`` arrays (steps × components).

    ``p_demand`` (steps × halls) is the demanded IT power [MW] before throttling, capping and shedding;
    ``t_amb`` (steps,) the ambient dry-bulb [°C]. The ``s_*`` state arrays are updated in place.
    ``o_load_isl`` receives each island's served load (IT + cooling + other) [MW]; ``o_starts`` the
    number of turbines that came online in each step. ``controls`` switches the plant controls:
    [secondary (PMS redispatch and trim), GPU capping, UFLS, auto-start] as 1.0/0.0.
    """
    secondary = controls[0] > 0.5
    capping = controls[1] > 0.5
    ufls = controls[2] > 0.5
    auto_start = controls[3] > 0.5
    n_t = turb.shape[0]
    n_b = bess.shape[0]
    n_h = hall.shape[0]
    n_p = plant.shape[0]
    n_c = chiller.shape[0]
    n_g = grid.shape[0]
    n_i = s_isl.shape[0]
    h_sub = dt_s / n_sub

    q_plant_in = np.zeros(n_p)
    q_plant_air = np.zeros(n_p)
    it_plant = np.zeros(n_p)
    cap_plant = np.zeros(n_p)
    n_ok = np.zeros(n_p)
    ch_curve = np.zeros(n_p, dtype=np.int64)
    q_ref_ok = np.zeros(n_p)
    cop_plant = np.zeros(n_p)
    p_cool_plant = np.zeros(n_p)
    load = np.zeros(n_i)
    it_isl = np.zeros(n_i)
    shed_isl = np.zeros(n_i)
    imp_lim = np.zeros(n_i)
    cap_on = np.zeros(n_i)
    big_unit = np.zeros(n_i)
    hs = np.zeros(n_i)
    pref_tot = np.zeros(n_i)
    bess_sched = np.zeros(n_b)
    p_av = np.zeros(n_t)
    any_starting = np.zeros(n_i)
    rocof = np.zeros(n_i)
    pm_isl = np.zeros(n_i)
    pm_now = np.zeros(n_i)
    pb_isl = np.zeros(n_i)
    # chiller availability changes only at events (between segments): aggregate per plant once
    for p in range(n_p):
        n_ok[p] = 0.0
        q_ref_ok[p] = 0.0
    for c in range(n_c):
        if s_ch[c, SC_OK] > 0.5:
            pl = int(chiller[c, C_PLANT])
            n_ok[pl] += 1.0
            q_ref_ok[pl] += chiller[c, C_Q_REF_MW] * s_ch[c, SC_DERATE]
            ch_curve[pl] = int(chiller[c, C_CURVE])
            cop_plant[pl] = chiller[c, C_COP_REF]
    # peak IT of each plant's halls: shares the plant's coolant-loop capacity between its halls
    peak_plant = np.zeros(n_p)
    for h in range(n_h):
        peak_plant[int(hall[h, H_PLANT])] += hall[h, H_RACKS] * hall[h, H_RACK_PEAK_KW] * 1e-3
    # per-hall thermal constants: GPU node τ = R·C, coolant loop UA and C, and their step decay factors
    r_gpu = np.empty(n_h)  # junction-to-coolant resistance of the hall's GPUs in parallel [K/MW]
    e_gpu = np.empty(n_h)
    e_tcs = np.empty(n_h)
    ua_hall = np.empty(n_h)
    c_tcs_hall = np.empty(n_h)
    for h in range(n_h):
        n_gpu = hall[h, H_N_GPU]
        r_gpu[h] = R_JC_K_PER_MW / n_gpu
        e_gpu[h] = np.exp(-dt_s / (r_gpu[h] * (C_GPU_MJ_PER_K * n_gpu)))
        p_peak = hall[h, H_RACKS] * hall[h, H_RACK_PEAK_KW] * 1e-3
        ua_hall[h] = p_peak / CDU_DT_DESIGN_K
        c_tcs_hall[h] = plant[int(hall[h, H_PLANT]), P_C_TCS_MJ_PER_K] * p_peak / max(1e-9, peak_plant[int(hall[h, H_PLANT])])
        e_tcs[h] = np.exp(-dt_s * ua_hall[h] / c_tcs_hall[h])
    # cooling power of a plant is booked on its chillers' islands, in proportion to working capacity
    plant_isl_share = np.zeros((n_p, n_i))
    for c in range(n_c):
        if s_ch[c, SC_OK] > 0.5:
            pl = int(chiller[c, C_PLANT])
            plant_isl_share[pl, int(chiller[c, C_ISLAND])] += chiller[c, C_Q_REF_MW] * s_ch[c, SC_DERATE] / q_ref_ok[pl]
    for p in range(n_p):
        if q_ref_ok[p] <= 0.0:  # no working chiller: fans and pumps stay with the first hall's island
            for h in range(n_h):
                if int(hall[h, H_PLANT]) == p:
                    plant_isl_share[p, int(hall[h, H_ISLAND])] = 1.0
                    break
    # islanded islands step on sub-steps; units of grid-tied islands follow their references at 1 s
    isl_sub = np.zeros(n_i, dtype=np.bool_)
    for i in range(n_i):
        isl_sub[i] = s_isl[i, SI_TIED] < 0.5
    t_isl = np.empty(n_t, dtype=np.int64)
    for u in range(n_t):
        t_isl[u] = int(turb[u, T_ISLAND])
    b_isl = np.empty(n_b, dtype=np.int64)
    a_b_sub = np.empty(n_b)
    a_b_step = np.empty(n_b)
    for b in range(n_b):
        b_isl[b] = int(bess[b, B_ISLAND])
        tau = bess[b, B_RESPONSE_S]
        a_b_sub[b] = 1.0 if tau <= 0.0 else 1.0 - np.exp(-h_sub / tau)
        a_b_step[b] = 1.0 if tau <= 0.0 else 1.0 - np.exp(-dt_s / tau)
    a_gov_sub = np.ones(n_t)
    a_gov_step = np.ones(n_t)
    k_droop = np.empty(n_t)  # droop gain [MW/Hz]
    lim_sub = np.empty(n_t)  # valve-rate limit per sub-step [MW]
    ideal = np.empty(n_t, dtype=np.bool_)
    for u in range(n_t):
        if turb[u, T_GOV_S] > 0.0:
            a_gov_sub[u] = 1.0 - np.exp(-h_sub / turb[u, T_GOV_S])
            a_gov_step[u] = 1.0 - np.exp(-dt_s / turb[u, T_GOV_S])
        k_droop[u] = turb[u, T_P_ISO_MW] / (turb[u, T_DROOP] * F0_HZ)
        lim_sub[u] = VALVE_RATE_PU_S * turb[u, T_P_ISO_MW] * h_sub
        ideal[u] = turb[u, T_GOV_S] <= 0.0
    b_lim_dis = np.zeros(n_b)
    b_lim_ch = np.zeros(n_b)
    pm_sum = np.zeros(n_t)
    pb_sum = np.zeros(n_b)
    a_ideal = np.zeros(n_i)
    b_ideal = np.zeros(n_i)
    sub_units = np.empty(n_t, dtype=np.int64)  # online units of islanded islands (rebuilt every step)
    swing = np.zeros(3)  # swing_step's [Δf at the end, mean Δf, dΔf/dt at the start]
    ufls_timers = np.zeros((n_i, UFLS_HZ.shape[0]))  # relay pick-up timers (per segment: exact for UFLS_DELAY_S = 0)
    su_pm = np.empty(n_t)
    su_pref = np.empty(n_t)
    su_pav = np.empty(n_t)
    su_sum = np.empty(n_t)
    su_k = np.empty(n_t)
    su_a = np.empty(n_t)
    su_lim = np.empty(n_t)
    su_lo = np.zeros(n_i + 1, dtype=np.int64)  # island i's lagged units are su_*[su_lo[i]:su_lo[i + 1]]
    su_ideal = np.zeros(n_i + 1, dtype=np.int64)  # then its ideal units, up to su_ideal[i]
    pm_fixed = np.zeros(n_i)  # mechanical power of units that are not sub-stepped, per island

    for k in range(n_steps):
        ta = t_amb[k]
        # -------- IT power per hall: throttle, power cap, UFLS shedding
        for i in range(n_i):
            shed_isl[i] = ufls_shed_fraction(int(s_isl[i, SI_STAGE]), UFLS_RELIEF)
            if s_isl[i, SI_BLACKOUT] > 0.5:
                shed_isl[i] = 1.0
            it_isl[i] = 0.0
        for p in range(n_p):
            q_plant_in[p] = 0.0
            q_plant_air[p] = 0.0
            it_plant[p] = 0.0
        for h in range(n_h):
            isl = int(hall[h, H_ISLAND])
            p_idle = hall[h, H_RACKS] * hall[h, H_RACK_IDLE_KW] * 1e-3
            g = gpu_throttle_factor(s_hall[h, SH_TJ], hall[h, H_T_SLOW_C] - 4.0, hall[h, H_T_SLOW_C], hall[h, H_T_SHUT_C]) * s_hall[h, SH_CAP]
            p_served = p_idle + (p_demand[k, h] - p_idle) * g
            if p_served < 0.0:
                p_served = 0.0
            shed = shed_isl[isl] * p_served
            p_it = p_served - shed
            o_p_it[k, h] = p_it
            o_shed[k, h] = shed
            o_thr[k, h] = g
            it_isl[isl] += p_it
            # thermal: GPU node → TCS → FWS (exact exponential for the GPU node, semi-implicit loops)
            pl = int(hall[h, H_PLANT])
            p_gpu = p_it - hall[h, H_RACKS] * (hall[h, H_RACK_PEAK_KW] - hall[h, H_GPUS_PER_RACK] * hall[h, H_TDP_KW]) * 1e-3
            if p_gpu < 0.0:
                p_gpu = 0.0
            q_liq = hall[h, H_LIQUID_FRAC] * p_it
            q_air = p_it - max(q_liq, p_gpu)
            if q_air < 0.0:
                q_air = 0.0
            t_tcs = s_hall[h, SH_TTCS]
            tj_ss = t_tcs + p_gpu * r_gpu[h]
            s_hall[h, SH_TJ] = tj_ss + (s_hall[h, SH_TJ] - tj_ss) * e_gpu[h]
            ua = ua_hall[h]
            c_tcs = c_tcs_hall[h]
            t_fws = s_plant[pl, SP_TFWS]
            q_tcs_in = max(q_liq, p_gpu)
            # exact update of C·dT/dt = Q_in − UA·(T − T_fws) with T_fws held over the step; the heat passed
            # on to the facility water is what the loop did not store
            t_ss = t_fws + q_tcs_in / ua
            t_new = t_ss + (t_tcs - t_ss) * e_tcs[h]
            s_hall[h, SH_TTCS] = t_new
            q_plant_in[pl] += q_tcs_in - c_tcs * (t_new - t_tcs) / dt_s
            q_plant_air[pl] += q_air
            it_plant[pl] += p_it
            o_t_gpu[k, h] = s_hall[h, SH_TJ]
            o_t_tcs[k, h] = t_new
        # -------- cooling plants: chillers against ambient, facility water node
        for p in range(n_p):
            cv = ch_curve[p]
            x = min(max(plant[p, P_T_CHW_C], curve_ranges[cv, 0]), curve_ranges[cv, 1])
            y = min(max(ta, curve_ranges[cv, 2]), curve_ranges[cv, 3])
            cap_plant[p] = q_ref_ok[p] * max(biquadratic(curves[cv, 0:6], x, y), 0.0)
        for p in range(n_p):
            c_fws = plant[p, P_C_FWS_MJ_PER_K]
            q_in = q_plant_in[p] + q_plant_air[p]
            req = q_in + c_fws * (s_plant[p, SP_TFWS] - plant[p, P_T_CHW_C]) / CHILLER_TAU_S
            q_ch = min(max(req, 0.0), cap_plant[p])
            s_plant[p, SP_TFWS] += dt_s * (q_in - q_ch) / c_fws
            p_comp = 0.0
            if n_ok[p] > 0.0 and q_ch > 0.0:
                cv = ch_curve[p]
                p_comp = chiller_power_mw(q_ch, q_ref_ok[p], cop_plant[p], curves[cv, 0:6], curves[cv, 6:12],
                                          curves[cv, 12:15], plant[p, P_T_CHW_C], ta,
                                          (curve_ranges[cv, 0], curve_ranges[cv, 1]), (curve_ranges[cv, 2], curve_ranges[cv, 3]))
            p_cool_plant[p] = p_comp + plant[p, P_FAN_FRAC] * q_ch + plant[p, P_PUMP_FRAC] * it_plant[p]
        for h in range(n_h):
            pl = int(hall[h, H_PLANT])
            share = o_p_it[k, h] / it_plant[pl] if it_plant[pl] > 0.0 else 0.0
            o_p_cool[k, h] = p_cool_plant[pl] * share
        # -------- island loads and grid ties
        for i in range(n_i):
            load[i] = isl_other_mw[i] if s_isl[i, SI_BLACKOUT] < 0.5 else 0.0
            o_other[k, i] = load[i]
            imp_lim[i] = 0.0
            cap_on[i] = 0.0
            big_unit[i] = 0.0
            hs[i] = 0.0
            any_starting[i] = 0.0
        for h in range(n_h):
            load[int(hall[h, H_ISLAND])] += o_p_it[k, h]
        for p in range(n_p):
            for i in range(n_i):
                load[i] += p_cool_plant[p] * plant_isl_share[p, i]
        for g in range(n_g):
            if s_grid[g, SG_CLOSED] > 0.5:
                imp_lim[int(grid[g, G_ISLAND])] += grid[g, G_IMPORT_MW]
        for i in range(n_i):
            o_load_isl[k, i] = load[i]
        # -------- turbines: availability, start-up timers
        o_starts[k] = 0.0
        for u in range(n_t):
            i = int(turb[u, T_ISLAND])
            p_av[u] = turb[u, T_P_ISO_MW] * derate_factor(ta, turb[u, T_DERATE_PER_C]) * s_turb[u, ST_DERATE]
            st = s_turb[u, ST_STATUS]
            if st == STATUS_STARTING:
                any_starting[i] = 1.0
                s_turb[u, ST_TIMER] -= dt_s
                if s_turb[u, ST_TIMER] <= 0.0:
                    s_turb[u, ST_STATUS] = STATUS_ONLINE
                    s_turb[u, ST_PM] = 0.0
                    s_turb[u, ST_PREF] = 0.0
                    o_starts[k] += 1.0
                    st = STATUS_ONLINE
            if st == STATUS_ONLINE:
                cap_on[i] += p_av[u]
                hs[i] += turb[u, T_H_S] * turb[u, T_S_MVA]
                if p_av[u] > big_unit[i]:
                    big_unit[i] = p_av[u]
        # -------- PMS dispatch (once per second): BESS schedule, turbine references
        for i in range(n_i):
            tied = s_isl[i, SI_TIED] > 0.5
            s_isl[i, SI_LPF] += dt_s / SMOOTH_TAU_S * (load[i] - s_isl[i, SI_LPF])
            need = load[i] + s_isl[i, SI_LOSS]
            if not secondary:  # references stay where they are
                pref_tot[i] = -1.0
                continue
            if tied:
                pref_tot[i] = max(need - imp_lim[i], 0.0)
            else:
                pref_tot[i] = s_isl[i, SI_LPF] + s_isl[i, SI_LOSS] + s_isl[i, SI_TRIM]
            if pref_tot[i] > cap_on[i]:
                pref_tot[i] = cap_on[i]
            if pref_tot[i] < 0.0:
                pref_tot[i] = 0.0
        for i in range(n_i):
            pm_now[i] = 0.0
        for u in range(n_t):
            if s_turb[u, ST_STATUS] == STATUS_ONLINE:
                pm_now[t_isl[u]] += s_turb[u, ST_PM]
        for b in range(n_b):
            i = int(bess[b, B_ISLAND])
            mode = int(bess[b, B_MODE])
            if mode == 0 and s_isl[i, SI_TIED] < 0.5:  # smoothing: the fast part of the load
                bess_sched[b] = load[i] - s_isl[i, SI_LPF]
            elif mode == 2 and s_isl[i, SI_TIED] > 0.5:  # import cap: what neither the tie nor the turbines cover
                # the turbines' actual output, not their (ramp-limited) target
                bess_sched[b] = load[i] + s_isl[i, SI_LOSS] - imp_lim[i] - pm_now[i]
                if bess_sched[b] < 0.0:  # room under the cap: recharge, gently
                    bess_sched[b] = max(bess_sched[b], -0.1 * bess[b, B_P_MW])
            else:
                bess_sched[b] = 0.0
        # auto-start (PMS): keep spinning reserve ≥ the largest online unit in islanded islands
        for i in range(n_i):
            if not auto_start or s_isl[i, SI_TIED] > 0.5 or any_starting[i] > 0.5:
                continue
            if cap_on[i] - pref_tot[i] < big_unit[i]:
                for u in range(n_t):
                    if int(turb[u, T_ISLAND]) == i and s_turb[u, ST_STATUS] == STATUS_STANDBY:
                        s_turb[u, ST_STATUS] = STATUS_STARTING
                        s_turb[u, ST_TIMER] = turb[u, T_START_S]
                        break
        for u in range(n_t):
            if s_turb[u, ST_STATUS] != STATUS_ONLINE:
                s_turb[u, ST_PREF] = 0.0
                continue
            i = int(turb[u, T_ISLAND])
            if pref_tot[i] < 0.0:
                continue
            target = pref_tot[i] * p_av[u] / cap_on[i] if cap_on[i] > 0.0 else 0.0
            s_turb[u, ST_PREF] = ramp_limit_mw(s_turb[u, ST_PREF], target, turb[u, T_RAMP_MW_PER_S], turb[u, T_RAMP_MW_PER_S], dt_s)
        # -------- sub-steps: governors, batteries, swing equation, capping, UFLS
        for i in range(n_i):
            rocof[i] = 0.0
        for u in range(n_t):
            pm_sum[u] = 0.0
            if s_turb[u, ST_STATUS] != STATUS_ONLINE:
                s_turb[u, ST_PM] = 0.0
            elif not isl_sub[t_isl[u]]:  # grid-tied island: exact 1-s update of the governor lag
                tgt = min(max(s_turb[u, ST_PREF], 0.0), p_av[u])
                dp = (tgt - s_turb[u, ST_PM]) * a_gov_step[u]
                lim = VALVE_RATE_PU_S * turb[u, T_P_ISO_MW] * dt_s
                s_turb[u, ST_PM] += dp if turb[u, T_GOV_S] <= 0.0 else min(max(dp, -lim), lim)
        for b in range(n_b):
            pb_sum[b] = 0.0
            # SoC moves once per step: the power limits hold over the sub-steps
            pmax = bess[b, B_P_MW] * s_bess[b, SB_DERATE]
            b_lim_dis[b] = soc_power_limit_mw(s_bess[b, SB_SOC], bess[b, B_SOC_MIN], bess[b, B_SOC_MAX], pmax, True)
            b_lim_ch[b] = soc_power_limit_mw(s_bess[b, SB_SOC], bess[b, B_SOC_MIN], bess[b, B_SOC_MAX], pmax, False)
        # online units of islanded islands, packed by island (lagged governors first, then ideal ones) so
        # that the sub-step loop runs over contiguous arrays
        for i in range(n_i):
            pm_fixed[i] = 0.0
        for u in range(n_t):
            if not (s_turb[u, ST_STATUS] == STATUS_ONLINE and isl_sub[t_isl[u]]):
                pm_fixed[t_isl[u]] += s_turb[u, ST_PM]
                pm_sum[u] = s_turb[u, ST_PM] * n_sub
        n_sub_units = 0
        for i in range(n_i):
            su_lo[i] = n_sub_units
            for pass_ideal in (False, True):
                for u in range(n_t):
                    if t_isl[u] == i and ideal[u] == pass_ideal and s_turb[u, ST_STATUS] == STATUS_ONLINE and isl_sub[i]:
                        jj = n_sub_units
                        su_pm[jj] = s_turb[u, ST_PM]
                        su_pref[jj] = s_turb[u, ST_PREF]
                        su_pav[jj] = p_av[u]
                        su_sum[jj] = 0.0
                        su_k[jj] = k_droop[u]
                        su_a[jj] = a_gov_sub[u]
                        su_lim[jj] = lim_sub[u]
                        sub_units[jj] = u
                        n_sub_units += 1
                if not pass_ideal:
                    su_ideal[i] = n_sub_units
        su_lo[n_i] = n_sub_units
        for j in range(n_sub):
            for i in range(n_i):
                pm_isl[i] = pm_fixed[i]
                pb_isl[i] = 0.0
                a_ideal[i] = 0.0
                b_ideal[i] = 0.0
            # mechanical power: lagged governors explicitly; ideal ones (t_gov = 0) join the swing equation
            for i in range(n_i):
                df = s_isl[i, SI_DF]
                for jj in range(su_lo[i], su_ideal[i]):
                    tgt = min(max(su_pref[jj] - su_k[jj] * df, 0.0), su_pav[jj])
                    pm = su_pm[jj]
                    dp = min(max((tgt - pm) * su_a[jj], -su_lim[jj]), su_lim[jj])
                    su_pm[jj] = pm + dp
                    su_sum[jj] += pm + dp
                acc = 0.0
                for jj in range(su_lo[i], su_ideal[i]):
                    acc += su_pm[jj]
                pm_isl[i] += acc
                for jj in range(su_ideal[i], su_lo[i + 1]):
                    tgt = su_pref[jj] - su_k[jj] * df
                    if tgt >= su_pav[jj]:
                        a_ideal[i] += su_pav[jj]
                    elif tgt > 0.0:
                        a_ideal[i] += su_pref[jj]
                        b_ideal[i] += su_k[jj]
            # batteries
            for b in range(n_b):
                i = b_isl[b]
                if s_bess[b, SB_OK] < 0.5:
                    s_bess[b, SB_P] = 0.0
                    continue
                if j > 0 and not isl_sub[i]:  # grid-tied: one battery update per second is enough
                    pb_isl[i] += s_bess[b, SB_P]
                    pb_sum[b] += s_bess[b, SB_P]
                    continue
                tgt = bess_sched[b] + droop_response_mw(s_isl[i, SI_DF], bess[b, B_P_MW], bess[b, B_DROOP], BESS_DEADBAND_HZ, F0_HZ)
                if tgt > b_lim_dis[b]:
                    tgt = b_lim_dis[b]
                if tgt < -b_lim_ch[b]:
                    tgt = -b_lim_ch[b]
                a = a_b_sub[b] if isl_sub[i] else a_b_step[b]
                pb = s_bess[b, SB_P] + (tgt - s_bess[b, SB_P]) * a
                s_bess[b, SB_P] = pb
                pb_isl[i] += pb
                pb_sum[b] += pb
            # swing equation per islanded island: M·dΔf/dt = A − B·Δf, integrated exactly over the sub-step
            for i in range(n_i):
                if not isl_sub[i]:
                    s_isl[i, SI_DF] = 0.0
                    continue
                df0 = s_isl[i, SI_DF]
                # exact update with the inputs held over the sub-step; ideal governors are the stiffness
                swing_step(df0, pm_isl[i] + a_ideal[i] + pb_isl[i], load[i] + s_isl[i, SI_LOSS], hs[i], b_ideal[i], 0.0,
                           F0_HZ, h_sub, swing)
                df1, df_mean, dfdt = swing[0], swing[1], swing[2]
                if hs[i] <= 0.0:  # no spinning mass: the island collapses unless batteries alone balance it
                    a_tot = pm_isl[i] + a_ideal[i] + pb_isl[i] - load[i] - s_isl[i, SI_LOSS]
                    dfdt = 0.0 if abs(a_tot) < 1e-6 else -F0_HZ
                    df1 = df0 + h_sub * dfdt
                    df_mean = df1
                s_isl[i, SI_DF] = df1
                for jj in range(su_ideal[i], su_lo[i + 1]):  # ideal governors follow the frequency exactly
                    su_pm[jj] = min(max(su_pref[jj] - su_k[jj] * df1, 0.0), su_pav[jj])
                    su_sum[jj] += min(max(su_pref[jj] - su_k[jj] * df_mean, 0.0), su_pav[jj])
                if F0_HZ + s_isl[i, SI_DF] < BLACKOUT_HZ or s_isl[i, SI_BLACKOUT] > 0.5:
                    # blackout: units trip on under-frequency, every load is lost; held until restored by an event
                    s_isl[i, SI_BLACKOUT] = 1.0
                    s_isl[i, SI_DF] = -F0_HZ
                    for u in range(n_t):
                        if t_isl[u] == i and s_turb[u, ST_STATUS] != STATUS_STANDBY:
                            s_turb[u, ST_STATUS] = STATUS_TRIPPED
                            s_turb[u, ST_PM] = 0.0
                    for jj in range(su_lo[i], su_lo[i + 1]):
                        su_pm[jj] = 0.0
                    for b in range(n_b):
                        if b_isl[b] == i:
                            s_bess[b, SB_P] = 0.0
                    load[i] = 0.0
                    continue
                if abs(dfdt) > rocof[i]:
                    rocof[i] = abs(dfdt)
                f = F0_HZ + s_isl[i, SI_DF]
                # UFLS stages (relays without delay)
                st = int(s_isl[i, SI_STAGE])
                # (relays only act below the next set point; without delay there is no timer to reset)
                if ufls and st < UFLS_HZ.shape[0] and (f < UFLS_HZ[st] or UFLS_DELAY_S > 0.0):
                    st_new = ufls_step(f, st, ufls_timers[i], UFLS_HZ, UFLS_DELAY_S, h_sub)
                    if st_new > st:
                        # shedding takes effect at once on the island load (per-second loads are refreshed next step)
                        load[i] -= (ufls_shed_fraction(st_new, UFLS_RELIEF) - ufls_shed_fraction(st, UFLS_RELIEF)) * it_isl[i]
                        s_isl[i, SI_RESTORE] = 0.0
                        st = st_new
                s_isl[i, SI_STAGE] = st
        for jj in range(n_sub_units):
            u = sub_units[jj]
            s_turb[u, ST_PM] = su_pm[jj]
            pm_sum[u] += su_sum[jj]
        # -------- slow controls (once per second): isochronous trim, capping, UFLS restoration
        for i in range(n_i):
            if s_isl[i, SI_TIED] > 0.5 or s_isl[i, SI_BLACKOUT] > 0.5 or not secondary:
                s_isl[i, SI_TRIM] = 0.0
                continue
            s_isl[i, SI_TRIM] -= TRIM_KI * s_isl[i, SI_DF] / F0_HZ * cap_on[i] * dt_s * F0_HZ
            f = F0_HZ + s_isl[i, SI_DF]
            if f > RESTORE_HZ and s_isl[i, SI_STAGE] > 0:
                s_isl[i, SI_RESTORE] += dt_s
                if s_isl[i, SI_RESTORE] >= RESTORE_S and cap_on[i] - pref_tot[i] > 0.1 * it_isl[i]:
                    s_isl[i, SI_STAGE] -= 1
                    s_isl[i, SI_RESTORE] = 0.0
            else:
                s_isl[i, SI_RESTORE] = 0.0
        if capping:  # GPU power capping on the island's frequency at the end of the step
            for h in range(n_h):
                i = int(hall[h, H_ISLAND])
                if s_isl[i, SI_BLACKOUT] < 0.5:
                    s_hall[h, SH_CAP] = gpu_cap_step(s_hall[h, SH_CAP], F0_HZ + s_isl[i, SI_DF], dt_s=dt_s)
        # -------- outputs
        for u in range(n_t):  # step means over the sub-steps: the energy delivered in the step
            o_pm[k, u] = pm_sum[u] / n_sub if s_turb[u, ST_STATUS] == STATUS_ONLINE else 0.0
            o_status[k, u] = s_turb[u, ST_STATUS]
        for b in range(n_b):
            o_p_bess[k, b] = pb_sum[b] / n_sub if s_bess[b, SB_OK] > 0.5 else 0.0
            # PHYSICS.md §5: SoC advances once per step with the step's mean power
            s_bess[b, SB_SOC] = soc_step(s_bess[b, SB_SOC], o_p_bess[k, b], bess[b, B_E_MWH], bess[b, B_ETA], bess[b, B_ETA], dt_s)
            o_soc[k, b] = s_bess[b, SB_SOC]
        for i in range(n_i):
            o_f[k, i] = F0_HZ + s_isl[i, SI_DF]
            o_rocof[k, i] = rocof[i]
            o_unserved[k, i] = isl_other_mw[i] - o_other[k, i]
        for h in range(n_h):
            o_unserved[k, int(hall[h, H_ISLAND])] += o_shed[k, h]
