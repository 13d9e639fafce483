"""Lumped thermal RC network of a data hall: GPU → coolant loop (TCS) → facility water (FWS) → chillers.

Model forms from ``shared/PHYSICS.md`` §6 (well-mixed nodes, all values [E] unless tagged):

.. math::

    C_j\\,\\dot T_j &= P_{gpu} - (T_j - T_{tcs})/R_{jc} \\\\
    C_{tcs}\\,\\dot T_{tcs} &= (T_j - T_{tcs})/R_{jc} + Q_{tcs} - UA_{cdu}(T_{tcs} - T_{fws}) \\\\
    C_{air}\\,\\dot T_{air} &= Q_{air} - UA_{crah}(T_{air} - T_{fws}) \\\\
    C_{fws}\\,\\dot T_{fws} &= UA_{cdu}(T_{tcs} - T_{fws}) + UA_{crah}(T_{air} - T_{fws}) - Q_{rej}

The GPU-to-coolant heat flow is written through ``R_jc`` (PHYSICS.md writes it as the input
``Q_liq`` of the TCS node; in steady state the two agree). ``UA_cdu = ε·ṁc_min`` of the CDU heat
exchanger. With the inputs held over a step the network is linear, so :func:`hall_thermal_step`
advances it *exactly* with the matrix exponential of the augmented system (no stability limit on
``dt_s``). Heat rejection ``Q_rej`` (chillers, dry coolers) is an input held over the step; it is the
only non-linear link (capacity against ambient, :mod:`twin.cooling`), evaluated once per step by
:func:`chiller_heat_rejection_mw`.

All kernels are ``@njit`` (numba ``cache=True``); their pure-Python twins are ``fn.py_func``. Units:
temperatures [°C], heat flows and powers [MW], heat capacities [MJ/K], conductances [MW/K], times [s].
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import njit

__all__ = [
    "N_NODES", "NODE_GPU", "NODE_TCS", "NODE_AIR", "NODE_FWS",
    "C_GPU_MJ_PER_K", "R_JC_K_PER_W", "C_TCS_MJ_PER_K_PER_MW", "C_FWS_MJ_PER_K_PER_MW",
    "CDU_EFFECTIVENESS", "TCS_DT_FLOW_K", "T_THROTTLE_C", "T_SLOWDOWN_C", "T_SHUTDOWN_C",
    "G_SLOWDOWN", "G_HW_SLOWDOWN",
    "gpu_throttle_factor", "gpu_conductance_mw_per_k", "cdu_conductance_mw_per_k",
    "rc_relax_step", "expm_small", "hall_thermal_step", "hall_thermal_steady_state",
    "chiller_heat_rejection_mw", "time_to_limit_linear_s", "time_to_limit_rc_s",
    "simulate_time_to_limit_s",
]

# ---- node order of the hall state vector (pandapower idx style)
NODE_GPU, NODE_TCS, NODE_AIR, NODE_FWS = 0, 1, 2, 3
N_NODES = 4

# ---- defaults, PHYSICS.md §6 (all [E] unless stated)
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
#: TCS temperature rise at design flow (1.5 L/min per kW, PG25) [K]; [S2] (47), ΔT check [E].
TCS_DT_FLOW_K = 10.0
#: GPU thermal thresholds [°C]: SW throttling starts (B200 assumption 85 °C [E]); HW slowdown 89 °C and
#: shutdown 92 °C from ``nvidia-smi -q`` on an H800 SXM [S] (14), assumed the same for H100/GB200 [E].
T_THROTTLE_C = 85.0
T_SLOWDOWN_C = 89.0
T_SHUTDOWN_C = 92.0
#: Clock factor at the HW-slowdown threshold (end of the linear SW ramp) and beyond it [E] (§6: 0.6;
#: 0.4–0.5, HW slowdown "reduces core clocks by a factor of 2 or more" [S] (52)).
G_SLOWDOWN = 0.6
G_HW_SLOWDOWN = 0.45


@njit
def gpu_throttle_factor(t_j_c, t_throttle_c=T_THROTTLE_C, t_slowdown_c=T_SLOWDOWN_C,
                        t_shutdown_c=T_SHUTDOWN_C, g_slowdown=G_SLOWDOWN, g_hw=G_HW_SLOWDOWN):  # pragma: no cover
    """GPU thermal throttle factor g_T(T_j) on the dynamic power (PHYSICS.md §6, [E]).

    ``g_T = 1`` below ``t_throttle_c``; linear from 1 to ``g_slowdown`` between ``t_throttle_c`` and
    ``t_slowdown_c`` (software thermal slowdown); ``g_hw`` from ``t_slowdown_c`` (hardware slowdown);
    ``0`` (trip to idle) at or above ``t_shutdown_c``. It multiplies ``u`` in
    ``P_IT = N·[P_idle + (P_peak − P_idle)·u·g_T] + P_static`` (:func:`twin.workload.it_power_mw`).

    Parameters
    ----------
    t_j_c : float
        GPU junction temperature [°C].
    t_throttle_c, t_slowdown_c, t_shutdown_c : float
        Start of SW throttling (85), HW slowdown (89, [S] (14)) and shutdown (92, [S] (14)) [°C].
    g_slowdown, g_hw : float
        Factor at the end of the SW ramp (0.6) and during HW slowdown (0.4–0.5, default 0.45) [-].

    Returns
    -------
    float
        Throttle factor [-] in [0, 1].

    Notes
    -----
    The DVFS boost loss below 85 °C (≈1–2 % per 5 K, PHYSICS.md §6, Llama-3 (5)) is not modelled. A
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

    ``G = n/R_jc`` with ``R_jc`` per GPU [K/W] (PHYSICS.md §6, 0.02–0.035 K/W [E]).
    """
    return n_gpu / r_jc_k_per_w * 1e-6


@njit
def cdu_conductance_mw_per_k(q_design_mw, effectiveness=CDU_EFFECTIVENESS, dt_flow_k=TCS_DT_FLOW_K):  # pragma: no cover
    """CDU heat-exchanger conductance ``UA = ε·ṁc_min`` [MW/K] (PHYSICS.md §6, [E]).

    The TCS flow is sized by the design rule 1.5 L/min per kW (OCP, [S2] (47)), which gives a loop
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
def rc_relax_step(t_c, t_inf_c, tau_s, dt_s):  # pragma: no cover - jitted
    """Exact update of one RC node relaxing to ``t_inf_c``: ``T + (T∞ − T)·(1 − e^(−dt/τ))`` [°C].

    ``tau_s ≤ 0`` means no lag (returns ``t_inf_c``).
    """
    if tau_s <= 0.0:
        return t_inf_c
    return t_inf_c + (t_c - t_inf_c) * math.exp(-dt_s / tau_s)


@njit
def expm_small(a, out):  # pragma: no cover - jitted
    """Matrix exponential of a small dense matrix by scaling and squaring of a Taylor series.

    Parameters
    ----------
    a : ndarray(float, (n, n))
        Matrix (here ``A·dt`` of a thermal network, n ≤ 5).
    out : ndarray(float, (n, n))
        Receives ``exp(a)``.

    Notes
    -----
    ``a`` is scaled by ``2^-s`` so that its ∞-norm is ≤ 0.5, the Taylor series is summed to 18 terms
    (truncation < 1e-17 relative), then squared ``s`` times (Moler & Van Loan, *Nineteen dubious ways
    to compute the exponential of a matrix*, SIAM Rev. 45 (2003), method 3).
    """
    n = a.shape[0]
    norm = 0.0
    for i in range(n):
        row = 0.0
        for j in range(n):
            row += abs(a[i, j])
        if row > norm:
            norm = row
    s = 0
    if norm > 0.5:
        s = int(math.ceil(math.log2(norm / 0.5)))
    scale = 0.5 ** s
    term = np.eye(n)
    tmp = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            out[i, j] = 1.0 if i == j else 0.0
    for k in range(1, 19):
        # term = term @ (a·scale) / k
        for i in range(n):
            for j in range(n):
                acc = 0.0
                for m in range(n):
                    acc += term[i, m] * a[m, j]
                tmp[i, j] = acc * scale / k
        for i in range(n):
            for j in range(n):
                term[i, j] = tmp[i, j]
                out[i, j] += tmp[i, j]
    for _ in range(s):
        for i in range(n):
            for j in range(n):
                acc = 0.0
                for m in range(n):
                    acc += out[i, m] * out[m, j]
                tmp[i, j] = acc
        for i in range(n):
            for j in range(n):
                out[i, j] = tmp[i, j]


@njit
def hall_thermal_step(t_c, p_gpu_mw, q_tcs_mw, q_air_mw, q_rej_mw,
                      c_gpu_mj_per_k, c_tcs_mj_per_k, c_air_mj_per_k, c_fws_mj_per_k,
                      g_jc_mw_per_k, ua_cdu_mw_per_k, ua_crah_mw_per_k, dt_s, out):  # pragma: no cover
    """Advance the hall RC network GPU → TCS → FWS (and hall air → FWS) by ``dt_s``, exactly.

    Inputs are held constant over the step; the linear system ``dT/dt = A·T + b`` is advanced with
    ``exp([[A, b], [0, 0]]·dt)`` (:func:`expm_small`), which is exact for any ``dt_s``
    (PHYSICS.md §6 RC network; all parameters [E]).

    Parameters
    ----------
    t_c : ndarray(float, 4)
        Node temperatures at the start of the step [°C], order ``NODE_GPU, NODE_TCS, NODE_AIR,
        NODE_FWS``.
    p_gpu_mw : float
        Heat dissipated in the GPU packages (through ``R_jc``) [MW].
    q_tcs_mw : float
        Other liquid-captured heat entering the TCS directly (CPU/NIC/switch cold plates) [MW].
    q_air_mw : float
        Heat to the hall air (air-cooled share of IT plus fan power) [MW].
    q_rej_mw : float
        Heat removed from the facility water by chillers/dry coolers over the step [MW]
        (:func:`chiller_heat_rejection_mw`).
    c_gpu_mj_per_k, c_tcs_mj_per_k, c_air_mj_per_k, c_fws_mj_per_k : float
        Heat capacities of the nodes [MJ/K]. A capacity ``≤ 0`` makes that node a fixed-temperature
        boundary (held at ``t_c[node]``); e.g. ``c_fws ≤ 0`` for an FWS held by its plant.
    g_jc_mw_per_k : float
        Junction-to-coolant conductance of all GPUs [MW/K] (:func:`gpu_conductance_mw_per_k`).
    ua_cdu_mw_per_k, ua_crah_mw_per_k : float
        CDU (TCS–FWS) and CRAH/fan-wall (air–FWS) conductances [MW/K]; 0 cuts the link (pump or
        fan failure).
    dt_s : float
        Step [s].
    out : ndarray(float, 4)
        Receives the node temperatures at the end of the step [°C] (may be ``t_c`` itself).
    """
    n = N_NODES
    m = np.zeros((n + 1, n + 1))
    g = np.zeros((n, n))
    g[NODE_GPU, NODE_TCS] = g_jc_mw_per_k
    g[NODE_TCS, NODE_FWS] = ua_cdu_mw_per_k
    g[NODE_AIR, NODE_FWS] = ua_crah_mw_per_k
    q = np.empty(n)
    q[NODE_GPU] = p_gpu_mw
    q[NODE_TCS] = q_tcs_mw
    q[NODE_AIR] = q_air_mw
    q[NODE_FWS] = -q_rej_mw
    cap = np.empty(n)
    cap[NODE_GPU] = c_gpu_mj_per_k
    cap[NODE_TCS] = c_tcs_mj_per_k
    cap[NODE_AIR] = c_air_mj_per_k
    cap[NODE_FWS] = c_fws_mj_per_k
    for i in range(n):
        for j in range(i + 1, n):
            gij = g[i, j]
            if gij != 0.0:
                if cap[i] > 0.0:
                    m[i, j] += gij / cap[i] * dt_s
                    m[i, i] -= gij / cap[i] * dt_s
                if cap[j] > 0.0:
                    m[j, i] += gij / cap[j] * dt_s
                    m[j, j] -= gij / cap[j] * dt_s
    for i in range(n):
        if cap[i] > 0.0:
            m[i, n] = q[i] / cap[i] * dt_s
    e = np.empty((n + 1, n + 1))
    expm_small(m, e)
    t0 = np.empty(n)
    for i in range(n):
        t0[i] = t_c[i]
    for i in range(n):
        acc = e[i, n]
        for j in range(n):
            acc += e[i, j] * t0[j]
        out[i] = acc


@njit
def hall_thermal_steady_state(t_fws_c, p_gpu_mw, q_tcs_mw, q_air_mw, g_jc_mw_per_k, ua_cdu_mw_per_k,
                              ua_crah_mw_per_k, out):  # pragma: no cover - jitted
    """Steady node temperatures for a facility-water temperature held at ``t_fws_c`` [°C].

    ``T_tcs = T_fws + (P_gpu + Q_tcs)/UA_cdu``, ``T_j = T_tcs + P_gpu/G_jc``,
    ``T_air = T_fws + Q_air/UA_crah`` (``T_air = T_fws`` if ``UA_crah = 0``). Fills ``out`` (4,).
    """
    out[NODE_FWS] = t_fws_c
    out[NODE_TCS] = t_fws_c + (p_gpu_mw + q_tcs_mw) / ua_cdu_mw_per_k
    out[NODE_GPU] = out[NODE_TCS] + p_gpu_mw / g_jc_mw_per_k
    out[NODE_AIR] = t_fws_c + (q_air_mw / ua_crah_mw_per_k if ua_crah_mw_per_k > 0.0 else 0.0)


@njit
def chiller_heat_rejection_mw(q_in_mw, t_fws_c, t_set_c, c_fws_mj_per_k, tau_s, q_cap_mw):  # pragma: no cover
    """Heat the chiller plant removes from the facility water over a step [MW] [E].

    The plant follows the heat entering the FWS plus a proportional correction of the set-point
    error, ``Q = Q_in + C_fws·(T_fws − T_set)/τ``, limited to ``[0, Q_cap]`` where ``Q_cap`` is the
    ambient-derated capacity of the working chillers (:func:`twin.cooling.chiller_capacity_mw`,
    PHYSICS.md §6). The controller form and τ (≈600 s) are assumptions [E].

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
    """
    q = q_in_mw + c_fws_mj_per_k * (t_fws_c - t_set_c) / tau_s
    if q < 0.0:
        q = 0.0
    if q > q_cap_mw:
        q = q_cap_mw
    return q


@njit
def time_to_limit_linear_s(t_c, t_limit_c, c_mj_per_k, q_net_mw):  # pragma: no cover - jitted
    """Adiabatic time to a temperature limit, ``C·(T_lim − T)/Q_net`` [s].

    The rate-of-heating estimate of Khankari (ASHRAE Trans. 2011) and Schneider WP179 (PHYSICS.md
    (53)(54)). Returns 0 if already at/above the limit and ``inf`` if ``q_net_mw ≤ 0``.

    Parameters
    ----------
    t_c, t_limit_c : float
        Present temperature and limit [°C].
    c_mj_per_k : float
        Heat capacity of everything that warms together [MJ/K].
    q_net_mw : float
        Net heat into it (generation − rejection) [MW].
    """
    if t_c >= t_limit_c:
        return 0.0
    if q_net_mw <= 0.0:
        return math.inf
    return c_mj_per_k * (t_limit_c - t_c) / q_net_mw


@njit
def time_to_limit_rc_s(t_c, t_limit_c, t_inf_c, tau_s):  # pragma: no cover - jitted
    """Time for a first-order node relaxing to ``t_inf_c`` with ``tau_s`` to reach ``t_limit_c`` [s].

    ``t = −τ·ln((T∞ − T_lim)/(T∞ − T))``; ``inf`` if the limit is never reached, 0 if already there.
    """
    if t_c >= t_limit_c:
        return 0.0
    if t_inf_c <= t_limit_c:
        return math.inf
    return -tau_s * math.log((t_inf_c - t_limit_c) / (t_inf_c - t_c))


@njit
def simulate_time_to_limit_s(t_c, t_limit_c, p_gpu_mw, q_tcs_mw, q_air_mw, q_rej_mw,
                             c_gpu_mj_per_k, c_tcs_mj_per_k, c_air_mj_per_k, c_fws_mj_per_k,
                             g_jc_mw_per_k, ua_cdu_mw_per_k, ua_crah_mw_per_k, dt_s, horizon_s):  # pragma: no cover
    """Time until the GPU node reaches ``t_limit_c`` with inputs held, by stepping the RC network [s].

    Steps :func:`hall_thermal_step` by ``dt_s`` and interpolates linearly inside the crossing step.
    Returns ``inf`` if the limit is not reached within ``horizon_s``. Arguments as in
    :func:`hall_thermal_step`; ``t_c`` (4,) is not modified.
    """
    t = t_c.copy()
    t_new = np.empty(N_NODES)
    if t[NODE_GPU] >= t_limit_c:
        return 0.0
    elapsed = 0.0
    while elapsed < horizon_s:
        hall_thermal_step(t, p_gpu_mw, q_tcs_mw, q_air_mw, q_rej_mw, c_gpu_mj_per_k, c_tcs_mj_per_k,
                          c_air_mj_per_k, c_fws_mj_per_k, g_jc_mw_per_k, ua_cdu_mw_per_k, ua_crah_mw_per_k,
                          dt_s, t_new)
        if t_new[NODE_GPU] >= t_limit_c:
            frac = (t_limit_c - t[NODE_GPU]) / (t_new[NODE_GPU] - t[NODE_GPU])
            return elapsed + frac * dt_s
        for i in range(N_NODES):
            t[i] = t_new[i]
        elapsed += dt_s
    return math.inf
