"""Lumped thermal RC network of a data hall: GPU → coolant loop (TCS) → facility water (FWS) → chillers.

Model forms from docs/physics.md §6 (well-mixed nodes, all values [E] unless tagged); one model, three
nodes: per hall a GPU node and a coolant-loop node, per cooling plant one facility-water node shared by
its halls::

    C_j·dT_j/dt     = P_gpu − G_jc·(T_j − T_tcs)                        G_jc = n_gpu/R_jc
    C_tcs·dT_tcs/dt = Q_liq − UA_cdu·(T_tcs − T_fws)                     Q_liq = max(liquid share of IT, P_gpu)
    C_fws·dT_fws/dt = Σ_halls [UA_cdu·(T_tcs − T_fws) + Q_air] − Q_rej

The GPU node feeds the coolant loop through ``R_jc``; the loop's input is the liquid-captured heat
(docs/physics.md writes it as ``Q_liq``), which in steady state equals what the GPU node passes on. The
air-cooled share ``Q_air`` reaches the facility water through the CRAHs without an air node of its own:
the hall air's capacity (≈60 MJ/K for 50,000 m³) is small beside the facility water's (GJ/K), so at a
1 s step it only delays ``Q_air`` by about a minute (an assumption [E]; the 4-node form with an air node
was dropped for this reason). Each node is advanced exactly with its neighbours held over the step
(:func:`rc_relax_step`): the GPU node (τ ≈ 5 s) with the loop held, the loop (τ ≈ minutes) with the
facility water held (τ ≈ hours); the splitting error is of order ``dt/τ_fws``. Heat rejection ``Q_rej``
(chillers) is an input held over the step (:func:`chiller_heat_rejection_mw`).

All kernels are ``@njit`` (numba ``cache=True``); their pure-Python twins are ``fn.py_func``. Units:
temperatures [°C], heat flows and powers [MW], heat capacities [MJ/K], conductances [MW/K], times [s].
"""

from __future__ import annotations

import math

from ._jit import njit

__all__ = [
    "C_GPU_MJ_PER_K", "R_JC_K_PER_W", "C_TCS_MJ_PER_K_PER_MW", "C_FWS_MJ_PER_K_PER_MW",
    "CDU_EFFECTIVENESS", "TCS_DT_FLOW_K", "T_THROTTLE_C", "T_SLOWDOWN_C", "T_SHUTDOWN_C",
    "G_SLOWDOWN", "G_HW_SLOWDOWN",
    "gpu_throttle_factor", "gpu_conductance_mw_per_k", "cdu_conductance_mw_per_k",
    "rc_relax_step", "rc_decay", "hall_thermal_step", "fws_step", "hall_thermal_steady_state", "gpu_heat_split_mw",
    "chiller_heat_rejection_mw", "CHILLER_TAU_S", "CHILLER_RAMP_FRAC_PER_S",
]

# ---- defaults, docs/physics.md §6 (all [E] unless stated)
#: Heat capacity of one GPU package + cold plate [MJ/K]; 0.1–0.3 kJ/K [E].
C_GPU_MJ_PER_K = 0.2e-3
#: Junction-to-coolant resistance of one 1–1.2 kW GPU [K/W]; 0.02–0.035 K/W [E] (τ_j = 5 s with C above).
R_JC_K_PER_W = 0.025
#: TCS loop heat capacity per MW of CDU: 4–8 MJ/K per 1.5 MW CDU ⇒ ≈4 MJ/K per MW [E].
C_TCS_MJ_PER_K_PER_MW = 4.0
#: Facility water heat capacity per MW of heat: 8–20 GJ/K per 100 MW ⇒ ≈140 MJ/K per MW [E].
C_FWS_MJ_PER_K_PER_MW = 140.0
#: CDU heat-exchanger effectiveness ε; 0.7–0.85 [E].
CDU_EFFECTIVENESS = 0.8
#: TCS temperature rise at design flow (1.5 L/min per kW, PG25) [K]; [S2] [P47], ΔT check [E].
TCS_DT_FLOW_K = 10.0
#: GPU thermal thresholds [°C]: SW throttling starts (B200 assumption 85 °C [E]); HW slowdown 89 °C and
#: shutdown 92 °C from ``nvidia-smi -q`` on an H800 SXM [S] [P14], assumed the same for H100/GB200 [E].
T_THROTTLE_C = 85.0
T_SLOWDOWN_C = 89.0
T_SHUTDOWN_C = 92.0
#: Clock factor at the HW-slowdown threshold (end of the linear SW ramp) and beyond it [E] (§6: 0.6;
#: 0.4–0.5, HW slowdown "reduces core clocks by a factor of 2 or more" [S] [P52]).
G_SLOWDOWN = 0.6
G_HW_SLOWDOWN = 0.45
#: Set-point correction time constant of the chiller plant's heat-rejection controller [s] [E].
CHILLER_TAU_S = 600.0
#: Loading rate of a chiller plant [fraction of its rated capacity per s]: 1 %/s, i.e. no load to full in
#: under two minutes, the order of a screw chiller's capacity control (an assumption [E]; restart after a
#: trip takes minutes, docs/physics.md §6, and is a separate matter).
CHILLER_RAMP_FRAC_PER_S = 0.01


@njit
def gpu_throttle_factor(t_j_c, t_throttle_c=T_THROTTLE_C, t_slowdown_c=T_SLOWDOWN_C,
                        t_shutdown_c=T_SHUTDOWN_C, g_slowdown=G_SLOWDOWN, g_hw=G_HW_SLOWDOWN):  # pragma: no cover
    """GPU thermal throttle factor g_T(T_j) on the dynamic power (docs/physics.md §6, [E]).

    ``g_T = 1`` below ``t_throttle_c``; linear from 1 to ``g_slowdown`` between ``t_throttle_c`` and
    ``t_slowdown_c`` (software thermal slowdown); ``g_hw`` from ``t_slowdown_c`` (hardware slowdown);
    ``0`` (trip to idle) at or above ``t_shutdown_c``. It multiplies ``u`` in
    ``P_IT = N·[P_idle + (P_peak − P_idle)·u·g_T] + P_static`` (:func:`twin.workload.hall_it_substeps`).

    Parameters
    ----------
    t_j_c : float
        GPU junction temperature [°C].
    t_throttle_c, t_slowdown_c, t_shutdown_c : float
        Start of SW throttling (85), HW slowdown (89, [S] [P14]) and shutdown (92, [S] [P14]) [°C].
    g_slowdown, g_hw : float
        Factor at the end of the SW ramp (0.6) and during HW slowdown (0.4–0.5, default 0.45) [-].

    Returns
    -------
    float
        Throttle factor [-] in [0, 1].

    Notes
    -----
    The DVFS boost loss below 85 °C (≈1–2 % per 5 K, docs/physics.md §6, Llama-3 [P5]) is not modelled. A
    tripped GPU stays at idle in reality until reset; latching is left to the caller.
    """
    if t_j_c >= t_shutdown_c:
        return 0.0
    if t_j_c >= t_slowdown_c:
        return g_hw
    if t_j_c > t_throttle_c:
        return 1.0 - (1.0 - g_slowdown) * (t_j_c - t_throttle_c) / (t_slowdown_c - t_throttle_c)
    return 1.0


@njit
def gpu_conductance_mw_per_k(n_gpu, r_jc_k_per_w=R_JC_K_PER_W):  # pragma: no cover - jitted
    """Junction-to-coolant conductance of ``n_gpu`` identical GPUs in parallel [MW/K].

    ``G = n/R_jc`` with ``R_jc`` per GPU [K/W] (docs/physics.md §6, 0.02–0.035 K/W [E]).
    """
    return n_gpu / r_jc_k_per_w * 1e-6


@njit
def cdu_conductance_mw_per_k(q_design_mw, effectiveness=CDU_EFFECTIVENESS, dt_flow_k=TCS_DT_FLOW_K):  # pragma: no cover
    """CDU heat-exchanger conductance ``UA = ε·ṁc_min`` [MW/K] (docs/physics.md §6, [E]).

    The TCS flow is sized by the design rule 1.5 L/min per kW (OCP, [S2] [P47]), which gives a loop
    temperature rise ``dt_flow_k`` ≈ 10 K at design heat (PG25), so ``ṁc = Q_design/ΔT_flow``.

    Parameters
    ----------
    q_design_mw : float
        Design heat of the CDUs (≈ liquid-captured IT power at peak) [MW].
    effectiveness : float
        Heat-exchanger effectiveness ε, 0.7–0.85 [-] [E].
    dt_flow_k : float
        Loop temperature rise at design flow and heat [K].
    """
    return effectiveness * q_design_mw / dt_flow_k


@njit
def rc_relax_step(t_c, t_inf_c, tau_s, dt_s, decay=-1.0):  # pragma: no cover - jitted
    """Exact update of one RC node relaxing to ``t_inf_c``: ``T + (T∞ − T)·(1 − e^(−dt/τ))`` [°C].

    ``tau_s ≤ 0`` means no lag (returns ``t_inf_c``). ``decay ≥ 0`` is ``e^(−dt/τ)`` computed by the caller
    once for many steps of the same ``dt`` (:func:`rc_decay`); ``tau_s`` and ``dt_s`` are then not used.
    """
    if decay >= 0.0:
        return t_inf_c + (t_c - t_inf_c) * decay
    if tau_s <= 0.0:
        return t_inf_c
    return t_inf_c + (t_c - t_inf_c) * math.exp(-dt_s / tau_s)


@njit
def rc_decay(tau_s, dt_s):  # pragma: no cover - jitted
    """``e^(−dt/τ)`` of an RC node over ``dt_s`` (0 for ``tau_s ≤ 0``: no lag), for :func:`rc_relax_step`."""
    return math.exp(-dt_s / tau_s) if tau_s > 0.0 else 0.0


@njit
def chiller_heat_rejection_mw(q_in_mw, t_fws_c, t_set_c, c_fws_mj_per_k, tau_s, q_cap_mw, q_prev_mw=-1.0,
                              ramp_mw_per_s=0.0, dt_s=1.0):  # pragma: no cover
    """Heat the chiller plant removes from the facility water over a step [MW] [E].

    The plant follows the heat entering the FWS plus a proportional correction of the set-point
    error, ``Q = Q_in + C_fws·(T_fws − T_set)/τ``, limited to ``[0, Q_cap]`` where ``Q_cap`` is the
    ambient-derated capacity of the working chillers (:func:`twin.cooling.chiller_capacity_mw`,
    docs/physics.md §6). The controller form and τ (≈600 s) are assumptions [E].

    Parameters
    ----------
    q_in_mw : float
        Heat entering the facility water (CDUs + CRAHs) [MW].
    t_fws_c, t_set_c : float
        Facility-water temperature and its set point [°C].
    c_fws_mj_per_k : float
        Facility-water heat capacity [MJ/K].
    tau_s : float
        Set-point correction time constant [s].
    q_cap_mw : float
        Available capacity [MW]; 0 when the chillers are lost.
    q_prev_mw, ramp_mw_per_s, dt_s : float
        Heat rejected in the previous step [MW] (< 0: no rate limit), the plant's loading rate [MW/s]
        and the step [s]: a chiller plant changes its duty at a finite rate (:data:`CHILLER_RAMP_FRAC_PER_S`).
    """
    q = q_in_mw + c_fws_mj_per_k * (t_fws_c - t_set_c) / tau_s
    if q_prev_mw >= 0.0 and ramp_mw_per_s > 0.0:  # chillers load and unload at a finite rate
        dq = ramp_mw_per_s * dt_s
        if q > q_prev_mw + dq:
            q = q_prev_mw + dq
        elif q < q_prev_mw - dq:
            q = q_prev_mw - dq
    if q < 0.0:
        q = 0.0
    if q > q_cap_mw:
        q = q_cap_mw
    return q


@njit
def hall_thermal_step(t_j_c, t_tcs_c, t_fws_c, p_gpu_mw, q_liq_mw, g_jc_mw_per_k, c_gpu_mj_per_k, ua_cdu_mw_per_k,
                      c_tcs_mj_per_k, dt_s, out, decay_j=-1.0, decay_tcs=-1.0):  # pragma: no cover - jitted
    """Advance a hall's GPU and coolant-loop nodes by ``dt_s`` with the facility water held [°C].

    GPU node: relaxes exactly to ``T_tcs + P_gpu/G_jc`` with ``τ_j = C_j/G_jc`` (the loop held over the
    step); coolant loop: relaxes exactly to ``T_fws + Q_liq/UA_cdu`` with ``τ = C_tcs/UA_cdu`` (the
    facility water held). The heat passed on to the facility water over the step is what the loop
    received and did not store, ``Q_liq − C_tcs·ΔT_tcs/dt``, so the loop conserves energy exactly.

    Fills ``out`` (3,) with ``[T_j, T_tcs, Q_to_fws_mw]``. ``decay_j``/``decay_tcs``: the two nodes' decay
    factors over ``dt_s`` when the caller has them (:func:`rc_decay`; the kernel computes them once per segment).
    """
    t_ss = t_tcs_c + p_gpu_mw / g_jc_mw_per_k
    out[0] = rc_relax_step(t_j_c, t_ss, c_gpu_mj_per_k / g_jc_mw_per_k, dt_s, decay_j)
    t_new = rc_relax_step(t_tcs_c, t_fws_c + q_liq_mw / ua_cdu_mw_per_k, c_tcs_mj_per_k / ua_cdu_mw_per_k, dt_s, decay_tcs)
    out[1] = t_new
    out[2] = q_liq_mw - c_tcs_mj_per_k * (t_new - t_tcs_c) / dt_s


@njit
def fws_step(t_fws_c, q_in_mw, q_rej_mw, c_fws_mj_per_k, dt_s):  # pragma: no cover - jitted
    """Facility-water temperature after ``dt_s``: ``T + dt·(Q_in − Q_rej)/C_fws`` [°C].

    Forward Euler is exact here for the inputs held over the step (the node has no feedback of its own
    within the step: the halls' loop heat and the chillers' rejection are computed from it once per step).
    """
    return t_fws_c + dt_s * (q_in_mw - q_rej_mw) / c_fws_mj_per_k


@njit
def hall_thermal_steady_state(t_fws_c, p_gpu_mw, q_liq_mw, g_jc_mw_per_k, ua_cdu_mw_per_k, out):  # pragma: no cover
    """Steady GPU and coolant-loop temperatures for a facility water held at ``t_fws_c`` [°C].

    ``T_tcs = T_fws + Q_liq/UA_cdu``, ``T_j = T_tcs + P_gpu/G_jc``. Fills ``out`` (2,) with ``[T_j, T_tcs]``.
    """
    out[1] = t_fws_c + q_liq_mw / ua_cdu_mw_per_k
    out[0] = out[1] + p_gpu_mw / g_jc_mw_per_k


@njit
def gpu_heat_split_mw(p_it_mw, p_static_mw, liquid_frac):  # pragma: no cover - jitted
    """Split a hall's IT heat into GPU heat, liquid-captured heat and air heat [MW].

    GPU heat is IT less the flat non-GPU rack power; the liquid loop captures ``liquid_frac`` of IT,
    and at least the GPU heat (cold plates); the rest goes to air (docs/physics.md §6: 80–90 % to liquid).
    Returns ``(p_gpu, q_liq, q_air)``.
    """
    p_gpu = p_it_mw - p_static_mw
    if p_gpu < 0.0:
        p_gpu = 0.0
    q_liq = liquid_frac * p_it_mw
    if q_liq < p_gpu:
        q_liq = p_gpu
    q_air = p_it_mw - q_liq
    return p_gpu, q_liq, (q_air if q_air > 0.0 else 0.0)
