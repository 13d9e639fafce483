"""Gas turbines: ambient derating, part-load heat rate, fuel and emissions.

Model forms follow docs/physics.md §3. All functions are numba-compatible scalar kernels
(``@njit``); their pure-Python twins are ``fn.py_func``.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import njit

__all__ = ["T_ISO_C", "derate_factor"]

#: ISO ambient temperature [°C] (ISO 3977-2: 15 °C, sea level, 60 % RH). Rotating-machinery.com,
#: "Gas turbine ISO rating and site rating" (2021), [P30].
T_ISO_C = 15.0


@njit
def derate_factor(t_amb_c, derate_per_c):  # pragma: no cover - jitted
    """Ambient power correction of a gas turbine, linear about ISO conditions.

    ``k_T = 1 − a·(T_amb − 15 °C)``, floored at 0.

    Parameters
    ----------
    t_amb_c : float
        Compressor-inlet (ambient dry-bulb) temperature [°C].
    derate_per_c : float
        Fractional output loss per kelvin above ISO, ``a`` [1/K] (0.006–0.008 industrial,
        0.008–0.010 aeroderivative, docs/physics.md §3).

    Returns
    -------
    float
        Available output as a fraction of the ISO rating [-].

    References
    ----------
    Generic site-rating curve: power factor ≈1.25 at −19 °C, ≈0.83 at 40 °C ([P30]).
    """
    k = 1.0 - derate_per_c * (t_amb_c - T_ISO_C)
    return k if k > 0.0 else 0.0


# =====================================================================================================
# GGOV1-reduced governor (docs/physics.md §3), unit status, ramps, fuel and emissions
# =====================================================================================================

# ---- governor parameter vector, one row per unit whatever its governor kind (pandapower idx style).
# GGOV1 uses GG_R … GG_DB_PU; TGOV1 uses the TG_* slots (same vector). GG_A_* hold the exact lag decay
# factors e^(−h/T) for the sub-step GG_HSUB, filled once per compilation by :func:`governor_prepare`.
(GG_R, GG_TPELEC, GG_KPGOV, GG_KIGOV, GG_TACT, GG_KTURB, GG_WFNL, GG_TB, GG_ROPEN, GG_RCLOSE, GG_VMAX,
 GG_VMIN, GG_LDREF, GG_TFLOAD, GG_KPLOAD, GG_KILOAD, GG_MAXERR, GG_MINERR, GG_DB_PU,
 GG_A_PELEC, GG_A_TFLOAD, GG_A_TACT, GG_A_TB, GG_HSUB, GG_NPAR) = range(25)
# ---- governor state vector
(GX_PELEC, GX_INT, GX_LDINT, GX_TEX, GX_VALVE, GX_PMECH, GX_NSTATE) = range(7)
#: Governor kinds (site file ``governor``): GGOV1 (default), TGOV1, and an ideal lag-free droop.
GOV_GGOV1, GOV_TGOV1, GOV_IDEAL = 0, 1, 2
GOVERNOR_KINDS = {"ggov1": GOV_GGOV1, "tgov1": GOV_TGOV1, "ideal": GOV_IDEAL}

#: Unit status codes (state column ``ST_STATUS`` of :mod:`twin.stepping`).
STATUS_STANDBY, STATUS_ONLINE, STATUS_STARTING, STATUS_TRIPPED = 0.0, 1.0, 2.0, 3.0

#: CO2 emission factor of pipeline natural gas [kg/MMBtu HHV], EPA 40 CFR 98 Table C-1 [P33] [S].
CO2_KG_PER_MMBTU = 53.06
KG_PER_LB = 0.45359237
#: NOx emission factors of natural-gas turbines [lb/MMBtu HHV], EPA AP-42 Table 3.1-1 [P34] [S2]:
#: lean-premix (DLE) and uncontrolled (diffusion flame), and the same in kg/MMBtu HHV.
NOX_LB_PER_MMBTU_LEAN_PREMIX = 0.099
NOX_LB_PER_MMBTU_UNCONTROLLED = 0.32
NOX_KG_PER_MMBTU_LEAN_PREMIX = NOX_LB_PER_MMBTU_LEAN_PREMIX * KG_PER_LB
NOX_KG_PER_MMBTU_UNCONTROLLED = NOX_LB_PER_MMBTU_UNCONTROLLED * KG_PER_LB
#: Minimum emissions-compliant load of a DLE unit [-], 40–50 % (docs/physics.md §3, [E]); a site
#: file gives its own as ``p_min_frac``.
DLE_MIN_LOAD_FRAC = 0.45
#: Full-load heat-rate rise per kelvin above ISO [1/K], ≈0.2–0.3 %/K: a linear fit of the generic
#: site-rating heat-rate correction (≈0.92 at −29 °C to ≈1.10 at 45 °C, [P30]) gives 0.24 %/K [E].
#: A typical value for docs and tests; the product takes each model's ``heat_rate_rise_per_c``.
HR_RISE_PER_C = 0.0025
#: Ratio of the higher to the lower heating value of pipeline natural gas [-]: 1,089 / 983 Btu/scf
#: (Argonne GREET fuel specifications, as tabulated by the DOE Alternative Fuels Data Center,
#: [P58]; values recalled, not re-fetched: [S2]). Pure methane gives 1,010 / 909 = 1.11 [E].
HHV_PER_LHV_NATURAL_GAS = 1.108

__all__ += [
    "GG_R", "GG_TPELEC", "GG_KPGOV", "GG_KIGOV", "GG_TACT", "GG_KTURB", "GG_WFNL", "GG_TB", "GG_ROPEN",
    "GG_RCLOSE", "GG_VMAX", "GG_VMIN", "GG_LDREF", "GG_TFLOAD", "GG_KPLOAD", "GG_KILOAD", "GG_MAXERR",
    "GG_MINERR", "GG_DB_PU", "GG_HSUB", "GG_NPAR", "GX_PELEC", "GX_INT", "GX_LDINT", "GX_TEX", "GX_VALVE",
    "GX_PMECH", "GX_NSTATE", "GOV_GGOV1", "GOV_TGOV1", "GOV_IDEAL", "GOVERNOR_KINDS",
    "STATUS_STANDBY", "STATUS_ONLINE", "STATUS_STARTING", "STATUS_TRIPPED",
    "CO2_KG_PER_MMBTU", "KG_PER_LB", "NOX_LB_PER_MMBTU_LEAN_PREMIX", "NOX_LB_PER_MMBTU_UNCONTROLLED",
    "NOX_KG_PER_MMBTU_LEAN_PREMIX", "NOX_KG_PER_MMBTU_UNCONTROLLED", "DLE_MIN_LOAD_FRAC", "HR_RISE_PER_C",
    "HHV_PER_LHV_NATURAL_GAS", "HEAT_RATE_BASES", "hhv_heat_rate_btu_per_kwh",
    "ggov1_params", "ggov1_init", "ggov1_step", "governor_prepare", "governor_init", "governor_step",
    "unit_status_step", "ramp_limit_mw", "setpoint_limits_mw", "heat_rate_ambient_factor",
    "fuel_flow_mmbtu_per_s", "co2_kg", "nox_kg",
]


def ggov1_params(r=0.04, t_pelec_s=1.0, kp_gov=10.0, ki_gov=2.0, t_act_s=0.5, k_turb=1.5, wfnl=0.2,
                 t_b_s=0.5, r_open_pu_per_s=0.10, r_close_pu_per_s=0.10, v_max=1.0, v_min=0.15,
                 ldref=1.0, t_fload_s=3.0, kp_load=2.0, ki_load=0.67, max_err=0.05, min_err=-0.05,
                 deadband_hz=0.0, f0_hz=60.0):
    """Parameter vector of the reduced GGOV1 governor, typical values by default.

    Defaults are the IEC 61970-302 ``GovCT1``/GGOV1 typical values of docs/physics.md §3 table [P22] [S]
    (R 0.04, Tpelec 1 s, Kpgov 10, Kigov 2, Tact 0.5 s, Kturb 1.5, Wfnl 0.2, Tb 0.5 s, Ropen/Rclose
    ±0.10 pu/s, Vmax/Vmin 1/0.15, Ldref 1, Tfload 3 s, Kpload 2, Kiload 0.67). ``max_err``/``min_err``
    (±0.05) are not in that table: they are the usual GGOV1 sample data, an assumption [E]. Kdgov,
    Tc, Teng, Dm and the acceleration limiter are zero/omitted as in the reduced form.

    Parameters
    ----------
    r : float
        Permanent droop [pu], 0.04–0.05.
    t_pelec_s, t_act_s, t_b_s, t_fload_s : float
        Electric-power transducer, actuator, turbine and load-limiter lags [s].
    kp_gov, ki_gov, kp_load, ki_load : float
        Governor and load-limiter PI gains [pu/pu], [pu/(pu·s)].
    k_turb, wfnl : float
        Turbine gain and no-load fuel [pu].
    r_open_pu_per_s, r_close_pu_per_s : float
        Valve opening and closing rate limits [pu/s], both positive. A DLE unit's loading rate
        (≈0.5 %/s of rating [S2] [P23]) is ``Kturb·Ropen``.
    v_max, v_min : float
        Valve limits [pu].
    ldref : float
        Load-limiter reference [pu of MW base] (exhaust-temperature limit); the engine passes the
        ambient-derated availability ``k_T`` per step (:func:`ggov1_step` ``ldref_pu``).
    max_err, min_err : float
        Governor error limits [pu].
    deadband_hz, f0_hz : float
        Speed deadband of the governor [Hz] (±0.036 Hz, FERC 842 [S2] [P31]) and nominal frequency.

    Returns
    -------
    ndarray(float, GG_NPAR)
    """
    p = np.zeros(GG_NPAR)
    p[GG_R], p[GG_TPELEC], p[GG_KPGOV], p[GG_KIGOV] = r, t_pelec_s, kp_gov, ki_gov
    p[GG_TACT], p[GG_KTURB], p[GG_WFNL], p[GG_TB] = t_act_s, k_turb, wfnl, t_b_s
    p[GG_ROPEN], p[GG_RCLOSE], p[GG_VMAX], p[GG_VMIN] = r_open_pu_per_s, r_close_pu_per_s, v_max, v_min
    p[GG_LDREF], p[GG_TFLOAD], p[GG_KPLOAD], p[GG_KILOAD] = ldref, t_fload_s, kp_load, ki_load
    p[GG_MAXERR], p[GG_MINERR] = max_err, min_err
    p[GG_DB_PU] = deadband_hz / f0_hz
    p[GG_HSUB] = -1.0  # no decay factors cached
    return p


@njit
def _decay(par, slot, tau_s, h_s):  # pragma: no cover - jitted
    """``e^(−h/τ)`` (0 for τ ≤ 0), from the cache in ``par`` when it was prepared for this ``h``."""
    if par[GG_HSUB] == h_s:
        return par[slot]
    return math.exp(-h_s / tau_s) if tau_s > 0.0 else 0.0


@njit
def _lag_a(y, u, a):  # pragma: no cover - jitted
    """Exact first-order lag with ``u`` held, given its decay factor ``a = e^(−h/τ)``."""
    return u + (y - u) * a


@njit
def governor_prepare(kind, par, h_s):  # pragma: no cover - jitted
    """Cache the exact lag decay factors of a governor for the sub-step ``h_s`` in its parameter row.

    Only GGOV1 has cached factors (its four lags are the inner loop's cost); other kinds compute theirs.
    """
    if kind != GOV_GGOV1:
        return
    par[GG_A_PELEC] = math.exp(-h_s / par[GG_TPELEC]) if par[GG_TPELEC] > 0.0 else 0.0
    par[GG_A_TFLOAD] = math.exp(-h_s / par[GG_TFLOAD]) if par[GG_TFLOAD] > 0.0 else 0.0
    par[GG_A_TACT] = math.exp(-h_s / par[GG_TACT]) if par[GG_TACT] > 0.0 else 0.0
    par[GG_A_TB] = math.exp(-h_s / par[GG_TB]) if par[GG_TB] > 0.0 else 0.0
    par[GG_HSUB] = h_s


@njit
def ggov1_init(x, par, p_pu):  # pragma: no cover - jitted
    """Fill the GGOV1 state ``x`` (GX_NSTATE,) with the steady state at output ``p_pu`` and Δω = 0.

    Valve ``= Wfnl + p/Kturb``, both PI integrators at the valve position (the load limiter then sits
    above it by ``Kpload·(Ldref/Kturb + Wfnl − valve) ≥ 0``), filtered power and Pmech ``= p``.
    """
    v = par[GG_WFNL] + p_pu / par[GG_KTURB]
    x[GX_PELEC] = p_pu
    x[GX_INT] = v
    x[GX_LDINT] = v
    x[GX_TEX] = v
    x[GX_VALVE] = v
    x[GX_PMECH] = p_pu


@njit(inline="always")
def ggov1_step(x, par, p_set_pu, pe_pu, dw_pu, h_s, ldref_pu=-1.0):  # pragma: no cover - jitted
    """Advance the reduced GGOV1 governor-turbine by one internal sub-step ``h_s``; return Pmech [pu].

    Structure from GGOV1 (IEEE PES TR1 2013 §3.1.2.3; IEC 61970-302 GovCT1, [P22]),
    reduced as in docs/physics.md §3 [E]::

        Pe_f  = lag(Pe, Tpelec)
        Δω_d  = Δω outside the deadband ±db (non-step: 0 at the band edge)
        err   = clamp(R·P_set − R·Pe_f − Δω_d, minerr, maxerr)
        fsrn  = Kpgov·err + Kigov·∫err                          (governor PI)
        fsrt  = Kpload·e_l + Kiload·∫e_l,  e_l = Ldref/Kturb + Wfnl − lag(Wf, Tfload)   (load limiter)
        fsr   = clamp(min(fsrn, fsrt), Vmin, Vmax)
        valve = lag(fsr, Tact), rate within [−Rclose, +Ropen], within [Vmin, Vmax];  Wf = valve
        Pmech = lag(Kturb·(Wf − Wfnl), Tb)

    In steady state ``err = 0`` gives the droop line ``Pe = P_set − Δω_d/R``. Lags are updated exactly
    with their inputs held over the sub-step (decay factors cached by :func:`governor_prepare`),
    integrators by forward Euler; the PI that is not selected by the low-value gate (or is clamped)
    tracks the gate output (back-calculation anti-windup, the usual GGOV1 implementation choice [E]),
    and the governor's integrator holds while the valve is rate-limited in the direction of its error
    (conditional integration [E]: without it a slow loading rate, e.g. a DLE unit's 0.5 %/s, winds the
    integrator up into a growing oscillation).
    The speed factor on fuel flow and Kdgov, Tc, Teng, Dm and the acceleration limiter are omitted
    (reduced form). Use sub-steps of 20–50 ms or less (docs/physics.md §0).

    Parameters
    ----------
    x : ndarray(float, GX_NSTATE)
        Governor state, updated in place (:func:`ggov1_init`).
    par : ndarray(float, GG_NPAR)
        Parameters (:func:`ggov1_params`).
    p_set_pu : float
        Load reference (dispatch set point) [pu of MW base].
    pe_pu : float
        Electrical output of the unit [pu].
    dw_pu : float
        Speed deviation Δω = Δf/f0 [pu].
    h_s : float
        Sub-step [s].
    ldref_pu : float
        Load-limiter reference for this sub-step [pu] (ambient-derated availability); < 0 takes
        ``par[GG_LDREF]``.

    Returns
    -------
    float
        Mechanical power at the end of the sub-step [pu].
    """
    r = par[GG_R]
    ldref = par[GG_LDREF] if ldref_pu < 0.0 else ldref_pu
    x[GX_PELEC] = _lag_a(x[GX_PELEC], pe_pu, _decay(par, GG_A_PELEC, par[GG_TPELEC], h_s))
    db = par[GG_DB_PU]
    if dw_pu > db:
        dw = dw_pu - db
    elif dw_pu < -db:
        dw = dw_pu + db
    else:
        dw = 0.0
    err = r * p_set_pu - r * x[GX_PELEC] - dw
    if err > par[GG_MAXERR]:
        err = par[GG_MAXERR]
    elif err < par[GG_MINERR]:
        err = par[GG_MINERR]
    x[GX_INT] += par[GG_KIGOV] * err * h_s
    fsrn = par[GG_KPGOV] * err + x[GX_INT]
    x[GX_TEX] = _lag_a(x[GX_TEX], x[GX_VALVE], _decay(par, GG_A_TFLOAD, par[GG_TFLOAD], h_s))
    e_l = ldref / par[GG_KTURB] + par[GG_WFNL] - x[GX_TEX]
    x[GX_LDINT] += par[GG_KILOAD] * e_l * h_s
    fsrt = par[GG_KPLOAD] * e_l + x[GX_LDINT]
    fsr = fsrn if fsrn < fsrt else fsrt
    if fsr > par[GG_VMAX]:
        fsr = par[GG_VMAX]
    elif fsr < par[GG_VMIN]:
        fsr = par[GG_VMIN]
    if fsrn != fsr:
        x[GX_INT] = fsr - par[GG_KPGOV] * err
    if fsrt != fsr:
        x[GX_LDINT] = fsr - par[GG_KPLOAD] * e_l
    v0 = x[GX_VALVE]
    v = _lag_a(v0, fsr, _decay(par, GG_A_TACT, par[GG_TACT], h_s))
    if v - v0 > par[GG_ROPEN] * h_s:
        v = v0 + par[GG_ROPEN] * h_s
        if err > 0.0 and fsr == fsrn:  # the valve cannot follow: hold the integrator (conditional integration)
            x[GX_INT] -= par[GG_KIGOV] * err * h_s
    elif v0 - v > par[GG_RCLOSE] * h_s:
        v = v0 - par[GG_RCLOSE] * h_s
        if err < 0.0 and fsr == fsrn:
            x[GX_INT] -= par[GG_KIGOV] * err * h_s
    if v > par[GG_VMAX]:
        v = par[GG_VMAX]
    elif v < par[GG_VMIN]:
        v = par[GG_VMIN]
    x[GX_VALVE] = v
    x[GX_PMECH] = _lag_a(x[GX_PMECH], par[GG_KTURB] * (v - par[GG_WFNL]), _decay(par, GG_A_TB, par[GG_TB], h_s))
    return x[GX_PMECH]


@njit
def governor_init(kind, x, par, p_pu):  # pragma: no cover - jitted
    """Steady state of a unit's governor at output ``p_pu`` and Δω = 0, whatever its kind."""
    if kind == GOV_GGOV1:
        ggov1_init(x, par, p_pu)
    elif kind == GOV_TGOV1:
        tgov1_init(x, par, p_pu)
    else:
        x[GX_PMECH] = p_pu


@njit(inline="always")
def governor_step(kind, x, par, p_set_pu, pe_pu, dw_pu, h_s, ldref_pu):  # pragma: no cover - jitted
    """Advance a lagged governor (GGOV1 or TGOV1) by one sub-step; return Pmech [pu of its MW base].

    The ideal (lag-free) droop is not stepped: the swing equation solves it as a stiffness
    (:func:`twin.frequency.island_step`). TGOV1 has no load limiter: its mechanical power is
    capped at ``ldref_pu`` (the ambient-derated availability) on the way out.
    """
    if kind == GOV_GGOV1:
        return ggov1_step(x, par, p_set_pu, pe_pu, dw_pu, h_s, ldref_pu)
    pm = tgov1_step(x, par, p_set_pu, dw_pu, h_s)
    return pm if pm < ldref_pu else ldref_pu


@njit
def unit_status_step(status, timer_s, start_cmd, trip_cmd, start_time_s, dt_s, out):  # pragma: no cover
    """Advance a turbine's status machine by ``dt_s``: standby → starting → online; trip.

    A standby unit told to start counts down ``start_time_s`` (aeroderivative ≈5–10 min, LMS100
    10 min [S] [P26]; industrial ≈10–15 min [E], docs/physics.md §3) and comes online at 0 output when the
    timer runs out inside the step. A trip command sends a starting or online unit to ``TRIPPED``
    at once; a tripped unit stays there until the caller resets it to standby.

    Parameters
    ----------
    status : float
        ``STATUS_STANDBY`` 0, ``STATUS_ONLINE`` 1, ``STATUS_STARTING`` 2, ``STATUS_TRIPPED`` 3.
    timer_s : float
        Remaining start-up time [s].
    start_cmd, trip_cmd : bool
        Commands this step.
    start_time_s : float
        Start-to-synchronisation time of the unit [s].
    dt_s : float
        Step [s].
    out : ndarray(float, 3)
        Receives ``[status, timer_s, online_fraction]``: the fraction of the step the unit was online.
    """
    st = status
    tm = timer_s
    frac = 1.0 if st == STATUS_ONLINE else 0.0
    if trip_cmd and (st == STATUS_ONLINE or st == STATUS_STARTING):
        st = STATUS_TRIPPED
        tm = 0.0
        frac = 0.0
    elif st == STATUS_STANDBY and start_cmd:
        st = STATUS_STARTING
        tm = start_time_s
    if st == STATUS_STARTING:
        if tm <= dt_s:
            frac = (dt_s - tm) / dt_s if dt_s > 0.0 else 1.0
            st = STATUS_ONLINE
            tm = 0.0
        else:
            tm -= dt_s
    out[0] = st
    out[1] = tm
    out[2] = frac


@njit
def ramp_limit_mw(p_prev_mw, p_target_mw, ramp_up_mw_per_s, ramp_down_mw_per_s, dt_s):  # pragma: no cover
    """Move a set point toward its target within ramp limits [MW].

    Sustained ramps: aeroderivative ≈50 %/min (LMS100 50 MW/min), industrial ≈20–40 %/min
    (docs/physics.md §3, [P26][P28] [S]; Titan [E]); DLE loading ≈0.5 %/s [S2] [P23]. Rates are positive.
    """
    d = p_target_mw - p_prev_mw
    up = ramp_up_mw_per_s * dt_s
    dn = ramp_down_mw_per_s * dt_s
    if d > up:
        d = up
    elif d < -dn:
        d = -dn
    return p_prev_mw + d


@njit
def setpoint_limits_mw(p_target_mw, p_min_mw, p_max_avail_mw):  # pragma: no cover - jitted
    """Clamp an online unit's set point to ``[P_min, P_max_avail]`` [MW].

    ``P_min`` is the minimum (DLE emissions-compliant, ≈40–50 %, [E]) load, ``P_max_avail =
    P_ISO·k_T(T_amb)`` (:func:`derate_factor`). If the ambient derate pushes ``P_max`` below
    ``P_min`` the unit runs at ``P_max``.
    """
    p = p_target_mw if p_target_mw > p_min_mw else p_min_mw
    return p if p < p_max_avail_mw else p_max_avail_mw


#: Heating-value bases a site file may state a heat rate on.
HEAT_RATE_BASES = ("lhv", "hhv")


def hhv_heat_rate_btu_per_kwh(heat_rate_btu_per_kwh, basis):
    """A natural-gas heat rate on the higher-heating-value basis [Btu/kWh HHV].

    The one place a heat rate changes basis. Gas-turbine makers quote ISO heat rates and
    efficiencies on the lower heating value (LHV); the emission factors (:data:`CO2_KG_PER_MMBTU`
    [P33], AP-42 NOx [P34]) and fuel bills are per MMBtu of higher heating value (HHV). Fuel burnt
    is the same gas either way, so ``HR_HHV = HR_LHV·HHV/LHV`` with :data:`HHV_PER_LHV_NATURAL_GAS`
    (1.108 [P58]).

    Parameters
    ----------
    heat_rate_btu_per_kwh : float
        Heat rate on ``basis`` [Btu/kWh].
    basis : {"lhv", "hhv"}
        Heating value the heat rate is stated on.

    Returns
    -------
    float
        Heat rate on the HHV basis [Btu/kWh].
    """
    if basis == "hhv":
        return float(heat_rate_btu_per_kwh)
    if basis == "lhv":
        return float(heat_rate_btu_per_kwh) * HHV_PER_LHV_NATURAL_GAS
    raise ValueError(f"heat-rate basis must be one of {HEAT_RATE_BASES}, got {basis!r}")


@njit
def heat_rate_ambient_factor(t_amb_c, hr_rise_per_c):  # pragma: no cover - jitted
    """Full-load heat-rate correction for ambient, ``1 + b·(T_amb − 15 °C)`` [-].

    A hot compressor inlet lowers the pressure ratio and mass flow, so a unit burns more fuel per
    kWh at its (derated) full load; a cold one less. ``b`` ≈ 0.2–0.3 %/K (docs/physics.md §3 [E],
    from the generic site-rating curve [P30]: ≈0.92 at −29 °C to ≈1.10 at 45 °C).

    Parameters
    ----------
    t_amb_c : float
        Compressor-inlet (ambient dry-bulb) temperature [°C].
    hr_rise_per_c : float
        Fractional heat-rate rise per kelvin above ISO, ``b`` [1/K] (the model's
        ``heat_rate_rise_per_c``; typical :data:`HR_RISE_PER_C`).
    """
    return 1.0 + hr_rise_per_c * (t_amb_c - T_ISO_C)


@njit
def fuel_flow_mmbtu_per_s(p_mw, p_avail_mw, p_iso_mw, hr_iso_btu_per_kwh, hr_ambient_factor,
                          wfnl):  # pragma: no cover - jitted
    """Fuel flow of an online gas turbine from the GGOV1 fuel line [MMBtu/s].

    Fuel is linear in output (GGOV1: ``Pmech = Kturb·(Wf − Wfnl)`` [P22]) between two anchors:

    * no load: ``F0 = Wfnl·HR_ISO·P_ISO``, GGOV1's no-load fuel in per unit of the ISO MW base,
      independent of ambient;
    * full (ambient-derated) load ``P_avail``: ``F1 = HR_ISO·c_T·P_avail``, with the full-load heat
      rate raised by the ambient correction ``c_T`` (:func:`heat_rate_ambient_factor`, [P30]).

    ``F = F0 + (F1 − F0)·P/P_avail``. At ISO (``P_avail = P_ISO``, ``c_T = 1``) this is
    ``F = HR(p)·P`` with the part-load heat rate ``HR(p) = HR_full·(Wfnl + (1 − Wfnl)·p)/p``
    (docs/physics.md §3 [E]). On a hot day the no-load fuel stays while the full-load point moves
    down in output and up in heat rate, so a given output costs more fuel, as on real units; a
    no-load fuel scaled with the derated rating would make a hot day look more efficient.
    Negative output (motoring) is taken as zero output; the fuel is on the basis of
    ``hr_iso_btu_per_kwh``.

    Parameters
    ----------
    p_mw : float
        Electrical output [MW].
    p_avail_mw : float
        Available (ambient-derated) rating ``P_ISO·k_T(T_amb)`` [MW] (:func:`derate_factor`).
    p_iso_mw : float
        ISO rating [MW].
    hr_iso_btu_per_kwh : float
        Full-load ISO heat rate on the HHV basis [Btu/kWh] (:func:`hhv_heat_rate_btu_per_kwh`), so
        that the fuel is in MMBtu HHV as the emission factors expect.
    hr_ambient_factor : float
        Full-load heat-rate correction for ambient ``c_T`` [-] (:func:`heat_rate_ambient_factor`).
    wfnl : float
        No-load fuel as a fraction of ISO full-load fuel [-] (GGOV1 0.2 [P22]).
    """
    p = p_mw / p_avail_mw if p_avail_mw > 0.0 else 0.0
    if p < 0.0:
        p = 0.0
    f0 = wfnl * hr_iso_btu_per_kwh * p_iso_mw
    f1 = hr_iso_btu_per_kwh * hr_ambient_factor * p_avail_mw
    if f1 < f0:  # derated below its no-load fuel (far outside the ambient range): no marginal fuel
        f1 = f0
    btu_per_h = (f0 + (f1 - f0) * p) * 1e3
    return btu_per_h * 1e-6 / 3600.0


@njit
def co2_kg(fuel_mmbtu_hhv, kg_per_mmbtu_hhv=CO2_KG_PER_MMBTU):  # pragma: no cover - jitted
    """CO2 from burnt natural gas [kg]: fuel [MMBtu HHV] times the factor [kg/MMBtu HHV].

    Pipeline natural gas: 53.06 kg/MMBtu HHV (EPA 40 CFR 98 Table C-1 [P33] [S]). The factor is
    per MMBtu of *higher* heating value: the fuel must be on that basis too
    (:func:`hhv_heat_rate_btu_per_kwh`), or CO2 comes out ≈10 % low.
    """
    return kg_per_mmbtu_hhv * fuel_mmbtu_hhv


@njit
def nox_kg(fuel_mmbtu_hhv, load_frac, min_load_frac, kg_per_mmbtu_hhv,
           below_min_kg_per_mmbtu_hhv):  # pragma: no cover - jitted
    """NOx from a dry-low-emissions (DLE, lean-premix) gas turbine [kg].

    At or above the DLE minimum emissions-compliant load ``min_load_frac`` (40–50 %, [E]) the
    combustor runs lean-premixed and emits ``kg_per_mmbtu_hhv`` (AP-42 Table 3.1-1 lean-premix
    ≈0.099 lb/MMBtu [P34] [S2], ≈25 ppm). Below it the unit leaves premix mode (pilot/diffusion
    flame) and "NOx/CO rise sharply" (docs/physics.md §3 [E]): ``below_min_kg_per_mmbtu_hhv``,
    e.g. the AP-42 uncontrolled factor ≈0.32 lb/MMBtu [P34]. The switch is taken as a step at the
    turndown, an assumption [E]. A unit with SCR states both factors after the catalyst (lower).

    Parameters
    ----------
    fuel_mmbtu_hhv : float
        Fuel burnt [MMBtu HHV].
    load_frac : float
        Output as a fraction of the available (ambient-derated) rating [-].
    min_load_frac : float
        DLE turndown limit [-] (the model's ``p_min_frac``).
    kg_per_mmbtu_hhv, below_min_kg_per_mmbtu_hhv : float
        NOx factors at/above and below the turndown [kg/MMBtu HHV].
    """
    ef = kg_per_mmbtu_hhv if load_frac >= min_load_frac else below_min_kg_per_mmbtu_hhv
    return ef * fuel_mmbtu_hhv


# =====================================================================================================
# TGOV1 steam/gas turbine-governor (PSS/E TGOV1, as implemented by ANDES)
# =====================================================================================================

# ---- TGOV1 parameter vector: the first slots of a GG_NPAR row (one row fits any governor kind)
(TG_R, TG_T1, TG_T2, TG_T3, TG_DT, TG_VMAX, TG_VMIN) = range(7)
# ---- TGOV1 state (in a GX_NSTATE vector): valve (lag output), lead-lag state; Pmech in GX_PMECH
TGX_VALVE, TGX_LL = GX_VALVE, GX_INT

__all__ += [
    "TG_R", "TG_T1", "TG_T2", "TG_T3", "TG_DT", "TG_VMAX", "TG_VMIN", "TGX_VALVE", "TGX_LL",
    "tgov1_params", "tgov1_init", "tgov1_step", "speed_deadband",
]


def tgov1_params(r=0.05, t1_s=0.1, t2_s=0.2, t3_s=10.0, dt=0.0, vmax_pu=1.2, vmin_pu=0.0, deadband_hz=0.0,
                 f0_hz=60.0):
    """Parameter vector of TGOV1 (length ``GG_NPAR``; unused slots are 0), ANDES defaults by default.

    All per-unit values are on the unit's MW base (``p_iso_mw``): with ANDES, give the TGOV1 device
    ``Tn`` = that base so that its ``R``, ``VMAX``, ``VMIN`` and ``Dt`` mean the same.

    Parameters
    ----------
    r : float
        Permanent droop [pu], > 0.
    t1_s : float
        Valve (lag) time constant [s]; ≤ 0 makes the valve follow its input at once.
    t2_s, t3_s : float
        Lead and lag time constants of the turbine lead-lag ``(1 + s·T2)/(1 + s·T3)`` [s]; ``T3 ≤ 0``
        bypasses the block (gain 1), as ANDES's ``LeadLag`` does.
    dt : float
        Turbine damping ``Dt`` [pu power per pu speed].
    vmax_pu, vmin_pu : float
        Valve limits [pu of MW base].
    deadband_hz : float
        Speed deadband ±db [Hz] (non-step, as ANDES's ``TGOV1DB`` with ``dbL = −dbU``); 0 = TGOV1.
    f0_hz : float
        Nominal frequency [Hz].

    Returns
    -------
    ndarray(float, GG_NPAR)
    """
    p = np.zeros(GG_NPAR)
    p[TG_R], p[TG_T1], p[TG_T2], p[TG_T3] = r, t1_s, t2_s, t3_s
    p[TG_DT], p[TG_VMAX], p[TG_VMIN] = dt, vmax_pu, vmin_pu
    p[GG_DB_PU] = deadband_hz / f0_hz
    p[GG_HSUB] = -1.0  # no cached decay factors (governor_prepare caches GGOV1's only)
    return p


@njit
def speed_deadband(dw_pu, db_pu):  # pragma: no cover - jitted
    """Speed deviation beyond a non-step deadband ±``db_pu``: 0 inside, ``Δω ∓ db`` outside [pu]
    (ANDES ``DeadBand1``; the GGOV1 error uses the same band)."""
    if dw_pu > db_pu:
        return dw_pu - db_pu
    if dw_pu < -db_pu:
        return dw_pu + db_pu
    return 0.0


@njit
def tgov1_init(x, par, p_pu):  # pragma: no cover - jitted
    """Fill the TGOV1 state ``x`` (GX_NSTATE,) with the steady state at output ``p_pu`` and Δω = 0.

    Valve, lead-lag state and Pmech all equal ``p_pu`` (the load reference is then ``p_pu`` too), as
    ANDES initialises ``LAG_y = LL_x = LL_y = tm0``. ``p_pu`` should lie within [Vmin, Vmax].
    """
    for k in range(x.shape[0]):
        x[k] = 0.0
    x[TGX_VALVE] = p_pu
    x[TGX_LL] = p_pu
    x[GX_PMECH] = p_pu


@njit
def _lag2_response(t, t1, t3):  # pragma: no cover - jitted
    """``T1·(e^(−t/T1) − e^(−t/T3))/(T1 − T3)``: the part of a lag-``T3`` state driven by a decaying
    exponential ``e^(−t/T1)`` from zero; ``(t/T3)·e^(−t/T3)`` at ``T1 = T3`` (no cancellation)."""
    d = 1.0 / t3 - 1.0 / t1
    td = t * d
    g = t if abs(td) < 1e-9 else math.expm1(td) / d  # (e^(t·d) − 1)/d
    return math.exp(-t / t3) * g / t3


@njit
def tgov1_step(x, par, p_set_pu, dw_pu, h_s):  # pragma: no cover - jitted
    """Advance TGOV1 by one sub-step ``h_s`` with its inputs held; return Pmech [pu of MW base].

    The model of ANDES's ``TGOV1`` (``andes/models/governor/tgov1.py``, PSS/E TGOV1)::

        P_d   = P_ref − Δω/R                               (ANDES: pd = (pref − wd)·(1/R), pref = R·tm0)
        valve = lag(P_d, T1) within [Vmin, Vmax]           (LagAntiWindup: T1·ẏ = P_d − y, ẏ := 0 and
                                                             y held at a limit while P_d pushes past it)
        z     = lag(valve, T3)                             (LeadLag, series form: T3·ż = valve − z,
        y_LL  = (T2/T3)·(valve − z) + z                     y_LL = (1 + s·T2)/(1 + s·T3)·valve)
        Pmech = y_LL − Dt·Δω

    Steady state: ``Pmech = clamp(P_ref − Δω/R, Vmin, Vmax) − Dt·Δω`` .

    Discretisation. ANDES integrates the whole differential-algebraic system with the implicit
    trapezoidal rule at its time step, so Δω (and hence ``P_d``) varies within a step and the limiter
    acts on the trapezoidal iterate. Here ``P_d`` is held over the sub-step (zero-order hold) and the
    linear cascade lag → lead-lag is solved exactly for it: the valve is the exact exponential toward
    ``P_d``, clamped; if it reaches a limit inside the sub-step, the lead-lag is solved exactly up to
    that instant and with the valve at the limit afterwards. The step response to a held input is
    therefore exact for any ``h_s``; the only discretisation error is the hold of Δω over the
    sub-step (O(h) in the speed signal), which the swing equation's sub-step sets. The anti-windup
    matches ANDES's: the valve leaves a limit as soon as ``P_d`` turns back inside it.

    Parameters
    ----------
    x : ndarray(float, GX_NSTATE)
        State, updated in place (:func:`tgov1_init`): ``TGX_VALVE``, ``TGX_LL``, ``GX_PMECH``.
    par : ndarray(float, GG_NPAR)
        Parameters (:func:`tgov1_params`).
    p_set_pu : float
        Load reference ``P_ref`` [pu of MW base] (the dispatch set point).
    dw_pu : float
        Speed deviation Δω = Δf/f0 [pu]. With a deadband in ``par`` (``GG_DB_PU`` > 0) the model is
        ANDES's ``TGOV1DB``: droop and ``Dt`` both act on the deviation beyond the band.
    h_s : float
        Sub-step [s], > 0.

    Returns
    -------
    float
        Mechanical power at the end of the sub-step [pu of MW base].

    References
    ----------
    ANDES 2.0 ``TGOV1`` with the ``LagAntiWindup`` and ``LeadLag`` blocks (``andes/core/block.py``),
    the dynamic reference of this project (``tests/validation``).
    """
    t1, t2, t3 = par[TG_T1], par[TG_T2], par[TG_T3]
    vmax, vmin = par[TG_VMAX], par[TG_VMIN]
    dw_pu = speed_deadband(dw_pu, par[GG_DB_PU])
    u = p_set_pu - dw_pu / par[TG_R]
    y0 = x[TGX_VALVE]
    z0 = x[TGX_LL]
    lim = u if u < vmax else vmax  # where the valve ends if it runs into a limit (or P_d itself)
    if lim < vmin:
        lim = vmin
    if t1 <= 0.0:  # algebraic valve: at the clamped input over the whole sub-step
        y1 = lim
        t_free = 0.0
    else:
        y1 = u + (y0 - u) * math.exp(-h_s / t1)  # unlimited exact lag
        t_free = h_s
        if (u > vmax and y1 > vmax) or (u < vmin and y1 < vmin):
            # y(t) = u + (y0 − u)·e^(−t/T1) reaches the limit at t* (0 when it starts there)
            r = (lim - u) / (y0 - u) if y0 != u else 1.0
            t_free = -t1 * math.log(r) if 0.0 < r < 1.0 else 0.0
            if t_free > h_s:
                t_free = h_s
            y1 = lim
    if t3 <= 0.0:  # lead-lag bypassed (ANDES zero_out): gain 1
        z1 = y1
        y_ll = y1
    else:
        z = z0
        if t_free > 0.0:  # valve free: z driven by u + (y0 − u)·e^(−t/T1), exactly
            z = u + (z0 - u) * math.exp(-t_free / t3)
            if t1 > 0.0:
                z += (y0 - u) * _lag2_response(t_free, t1, t3)
        rest = h_s - t_free
        if rest > 0.0:  # valve at y1 (a limit, or algebraic) for the rest of the sub-step
            z = y1 + (z - y1) * math.exp(-rest / t3)
        z1 = z
        y_ll = t2 / t3 * (y1 - z1) + z1
    x[TGX_VALVE] = y1
    x[TGX_LL] = z1
    pm = y_ll - par[TG_DT] * dw_pu
    x[GX_PMECH] = pm
    return pm


