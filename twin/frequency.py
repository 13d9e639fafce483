"""System frequency of an electrical island: the aggregate (centre-of-inertia) swing equation.

Model form from ``shared/PHYSICS.md`` §4 (Kundur, *Power System Stability and Control*, (35))::

    d(Δf)/dt = f0/(2·H_sys·S_sys) · [ΣPm_i + P_bess + P_grid − P_load·(1 + D·Δf/f0)]     (P in MW)
    H_sys·S_sys = Σ H_i·S_i   over online synchronous units (+ BESS virtual inertia if grid-forming)
    RoCoF = f0·ΔP/(2·H_sys·S_sys)

Grid-tied islands: Δf is an exogenous trace and ``P_grid`` balances the island. Islanded: turbines
(+ BESS) only. Governors and batteries run on internal sub-steps of 20–50 ms (PHYSICS.md step-size
warning); rotor-angle and electromagnetic dynamics are not resolved: every unit sees the island's
centre-of-inertia frequency.

All kernels are ``@njit`` (numba ``cache=True``); their pure-Python twins are ``fn.py_func``.
Units: power [MW], frequency deviation [Hz], inertia ``H·S`` [MW·s] (MVA·s), time [s].
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import njit
from .storage import bess_power_mw
from .turbines import GX_PMECH, ggov1_step

__all__ = [
    "F0_HZ", "D_LOAD_CONVENTIONAL", "D_LOAD_DATACENTRE",
    "system_inertia_mw_s", "rocof_hz_per_s", "droop_stiffness_mw_per_hz", "swing_step",
    "grid_tied_balance_mw", "island_step", "ISL_DF_HZ", "ISL_DF_MIN_HZ", "ISL_ROCOF_MAX", "ISL_P_GRID_MW",
    "ISL_NOUT",
]

#: Nominal frequency [Hz].
F0_HZ = 60.0
#: Load damping of conventional load [%ΔP per %Δf], 1–2 (NEM ≈1.5) [S2] (35).
D_LOAD_CONVENTIONAL = 1.5
#: Load damping of data-centre (constant-power converter/UPS, VFD chiller) load ≈0 [E].
D_LOAD_DATACENTRE = 0.0

# ---- island_step output vector
ISL_DF_HZ, ISL_DF_MIN_HZ, ISL_ROCOF_MAX, ISL_P_GRID_MW, ISL_NOUT = 0, 1, 2, 3, 4


@njit
def system_inertia_mw_s(h_s, s_mva, online, h_v_s=0.0, p_v_mw=0.0):  # pragma: no cover - jitted
    """Stored kinetic energy ``Σ H_i·S_i`` of the online units (+ virtual inertia) [MW·s].

    Parameters
    ----------
    h_s : ndarray(float, n)
        Inertia constants on machine base [s] (aeroderivative/two-shaft 1.5–3 s, single-shaft
        3–5 s [E], PHYSICS.md §3).
    s_mva : ndarray(float, n)
        Machine ratings [MVA].
    online : ndarray(n)
        Non-zero where the unit is online and synchronised.
    h_v_s, p_v_mw : float
        Virtual inertia of grid-forming BESS [s] on its rating [MW] (PHYSICS.md §4/§5).
    """
    acc = h_v_s * p_v_mw
    for i in range(h_s.shape[0]):
        if online[i]:
            acc += h_s[i] * s_mva[i]
    return acc


@njit
def rocof_hz_per_s(dp_mw, hs_mw_s, f0_hz=F0_HZ):  # pragma: no cover - jitted
    """Initial rate of change of frequency after a power imbalance, ``f0·ΔP/(2·H·S)`` [Hz/s].

    PHYSICS.md §4: 1.2 GVA of turbines at H = 3 s and a 100 MW step give 0.83 Hz/s. Positive ``dp_mw``
    (surplus generation) gives a rising frequency.
    """
    return f0_hz * dp_mw / (2.0 * hs_mw_s)


@njit
def droop_stiffness_mw_per_hz(p_rated_mw, r, f0_hz=F0_HZ):  # pragma: no cover - jitted
    """Steady-state frequency response of an ideal droop governor, ``P_rated/(R·f0)`` [MW/Hz]."""
    return p_rated_mw / (r * f0_hz)


@njit
def swing_step(df_hz, p_gen_mw, p_load_mw, hs_mw_s, k_mw_per_hz, d_load, f0_hz, dt_s, out):  # pragma: no cover
    """Advance the aggregate swing equation by ``dt_s`` exactly, with inputs held and linear feedback.

    Solves ``M·dΔf/dt = A − B·Δf`` with ``M = 2·H·S/f0`` [MW·s/Hz], ``A = P_gen − P_load`` and
    ``B = K + P_load·D/f0`` (PHYSICS.md §4): ``K`` is the stiffness of lag-free (ideal) droop
    governors and BESS [MW/Hz] (:func:`droop_stiffness_mw_per_hz`; ``p_gen_mw`` then holds their
    output at Δf = 0) and ``P_load·D/f0`` the load damping. ``B > 0``:
    ``Δf(t) = A/B + (Δf0 − A/B)·e^(−B·t/M)``; ``B = 0``: a ramp.

    Parameters
    ----------
    df_hz : float
        Frequency deviation at the start [Hz].
    p_gen_mw : float
        Mechanical + BESS + grid power into the island at Δf = 0 [MW].
    p_load_mw : float
        Load at nominal frequency [MW].
    hs_mw_s : float
        ``Σ H·S`` of online units [MW·s] (:func:`system_inertia_mw_s`).
    k_mw_per_hz : float
        Lag-free droop stiffness [MW/Hz] (0 when governors are stepped separately).
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

    Positive = import from the grid (the grid is a source for the island, PHYSICS.md §4).
    """
    return p_load_mw * (1.0 + d_load * df_hz / f0_hz) - p_gen_mw


@njit
def island_step(df_hz, tied, df_grid_hz, gov_x, gov_par, p_set_pu, p_base_mw, hs_unit_mw_s, online,
                bess_sched_mw, bess_soc, bess_p_rated_mw, bess_soc_min, bess_soc_max, bess_r, bess_db_hz,
                bess_h_v_s, bess_i_max_pu, p_load_mw, d_load, f0_hz, dt_s, n_sub,
                out_pm_mw, out_p_bess_mw, out):  # pragma: no cover - jitted
    """Advance one island by ``dt_s``: GGOV1 governors, BESS response and the swing equation on sub-steps.

    Per sub-step ``h = dt_s/n_sub`` (20–50 ms recommended, PHYSICS.md step-size warning):

    1. BESS power from its schedule, droop (deadband) and virtual inertia at the present Δf and
       RoCoF, within its SoC/current limits (:func:`twin.storage.bess_power_mw`; lag-free);
    2. imbalance ``ΔP = ΣPm + ΣP_bess − P_load·(1 + D·Δf/f0)``; swing update of Δf over ``h``
       (:func:`swing_step`, ``K = 0``, so the load damping is integrated exactly);
    3. each online unit's electrical output is its mechanical power less its inertial share of the
       imbalance, ``Pe_i = Pm_i − (H_i·S_i/ΣH·S)·ΔP`` (coherent machines) [E], and its governor
       advances with ``Pe_i`` and ``Δω = Δf/f0`` (:func:`twin.turbines.ggov1_step`).

    A grid-tied island (``tied``) holds ``Δf = df_grid_hz`` (an exogenous trace); the units' output
    follows their governors (``Pe = Pm``) and the grid takes the balance (:func:`grid_tied_balance_mw`).
    The load is held over the step; SoC is not updated here (pass ``out_p_bess_mw`` to
    :func:`twin.storage.bess_step`, lag-free, or :func:`twin.storage.soc_step`).

    Parameters
    ----------
    df_hz : float
        Island frequency deviation at the start [Hz].
    tied : bool
        True if a closed grid tie holds the frequency.
    df_grid_hz : float
        Grid frequency deviation for a tied island [Hz].
    gov_x : ndarray(float, (n_u, GX_NSTATE))
        Governor states (:func:`twin.turbines.ggov1_init`), updated in place.
    gov_par : ndarray(float, (n_u, GG_NPAR))
        Governor parameters (:func:`twin.turbines.ggov1_params`).
    p_set_pu : ndarray(float, n_u)
        Load references [pu of ``p_base_mw``].
    p_base_mw : ndarray(float, n_u)
        MW base of each governor (the unit's ISO rating) [MW].
    hs_unit_mw_s : ndarray(float, n_u)
        ``H_i·S_i`` of each unit [MW·s].
    online : ndarray(n_u)
        Non-zero for online units; offline units deliver 0 and keep their state.
    bess_sched_mw, bess_soc, bess_p_rated_mw, bess_soc_min, bess_soc_max, bess_r, bess_db_hz,
    bess_h_v_s, bess_i_max_pu : ndarray(float, n_b)
        Per battery: schedule [MW], SoC [-], rating [MW], SoC window [-], droop [pu] (≤ 0: none),
        deadband [Hz], virtual inertia [s] (counted in the island's inertia), current limit [pu].
    p_load_mw : float
        Island load at nominal frequency (IT + cooling + other + losses) [MW].
    d_load : float
        Load damping [-].
    f0_hz, dt_s : float
        Nominal frequency [Hz] and step [s].
    n_sub : int
        Number of sub-steps.
    out_pm_mw : ndarray(float, n_u)
        Receives each unit's step-mean mechanical (= electrical, on average) power [MW].
    out_p_bess_mw : ndarray(float, n_b)
        Receives each battery's step-mean power [MW].
    out : ndarray(float, ISL_NOUT)
        Receives ``[Δf_end, Δf_min, max |RoCoF|, step-mean P_grid]`` [Hz, Hz, Hz/s, MW].
    """
    n_u = gov_x.shape[0]
    n_b = bess_sched_mw.shape[0]
    h = dt_s / n_sub
    hs = 0.0
    for u in range(n_u):
        out_pm_mw[u] = 0.0
        if online[u]:
            hs += hs_unit_mw_s[u]
    for b in range(n_b):
        out_p_bess_mw[b] = 0.0
        hs += bess_h_v_s[b] * bess_p_rated_mw[b]
    sw = np.empty(3)
    df = df_grid_hz if tied else df_hz
    df_min = df
    rocof_max = 0.0
    rocof = 0.0
    p_grid_acc = 0.0
    for _ in range(n_sub):
        pm_tot = 0.0
        for u in range(n_u):
            if online[u]:
                pm_tot += gov_x[u, GX_PMECH] * p_base_mw[u]
        pb_tot = 0.0
        for b in range(n_b):
            pb = bess_power_mw(bess_sched_mw[b], df, rocof, bess_soc[b], bess_p_rated_mw[b], bess_soc_min[b],
                               bess_soc_max[b], bess_r[b], bess_db_hz[b], bess_h_v_s[b], bess_i_max_pu[b], f0_hz)
            out_p_bess_mw[b] += pb
            pb_tot += pb
        if tied:
            imb = 0.0
            p_grid_acc += grid_tied_balance_mw(pm_tot + pb_tot, p_load_mw, df, d_load, f0_hz)
            df = df_grid_hz
        else:
            imb = pm_tot + pb_tot - p_load_mw * (1.0 + d_load * df / f0_hz)
            swing_step(df, pm_tot + pb_tot, p_load_mw, hs, 0.0, d_load, f0_hz, h, sw)
            rocof = sw[2]
            if abs(rocof) > rocof_max:
                rocof_max = abs(rocof)
            df = sw[0]
            if df < df_min:
                df_min = df
        for u in range(n_u):
            if not online[u]:
                continue
            pm_u = gov_x[u, GX_PMECH] * p_base_mw[u]
            pe_u = pm_u - (hs_unit_mw_s[u] / hs) * imb if hs > 0.0 else pm_u
            out_pm_mw[u] += pm_u  # the power the swing equation saw over this sub-step
            ggov1_step(gov_x[u], gov_par[u], p_set_pu[u], pe_u / p_base_mw[u], df / f0_hz, h)
    for u in range(n_u):
        out_pm_mw[u] /= n_sub
    for b in range(n_b):
        out_p_bess_mw[b] /= n_sub
    out[ISL_DF_HZ] = df
    out[ISL_DF_MIN_HZ] = df_min
    out[ISL_ROCOF_MAX] = rocof_max
    out[ISL_P_GRID_MW] = p_grid_acc / n_sub
