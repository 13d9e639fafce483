"""Battery energy storage (Tesla Megapack yards): state of charge, limits and control modes.

Model forms from docs/physics.md §5 (all [E] unless tagged)::

    SoC(t+h)  = SoC + h·(η_c·P_ch − P_dis/η_d)/E_nom          η_c, η_d from the site (default √RTE)
    Δf_m      = lag(Δf, T_m)                      grid-following: frequency measurement (PLL + filter)
    P_cmd     = clip(P_sched − (Δf_e/f0)/R_b·P_rated, ±P_avail(SoC))      Δf_e: Δf_m beyond the deadband
    P         = lag(P_cmd, τ_response)            grid-following (T_m + τ ≈ 200 ms [S] [P44])
    P         = P_cmd + (H_v·P_rated/ΣH·S)·P_kin  grid-forming: lag-free, plus its share of the island's
                                                  inertial response (twin.frequency.island_step)
    P_smooth  = HPF(P_IT; τ ≈ 30–120 s)           the smoothing schedule (twin.dispatch)

``P_avail`` is derated linearly to 0 over the last 5 % of SoC at each end. Sign: ``p_mw`` is
positive when discharging (generation), negative when charging. The engine advances power and SoC on
every sub-step (:func:`freq_measurement_step`, :func:`bess_substep_mw`, :func:`soc_step`).

All kernels are ``@njit`` (numba ``cache=True``); their pure-Python twins are ``fn.py_func``.
Units: power [MW], energy [MWh], frequency [Hz], time [s]; SoC is a fraction [-].
"""

from __future__ import annotations

import math

from ._jit import njit
from .plant import BE_DEADBAND_HZ, BE_DROOP, BE_FREQ_FILTER_S, BE_GFM, BE_P_MW, BE_RESPONSE_S, BE_SOC_MAX, BE_SOC_MIN

__all__ = [
    "MEGAPACK2XL_E_MWH", "RTE_DEFAULT", "SOC_BAND", "DEADBAND_HZ", "R_BESS", "SMOOTH_TAU_S", "F0_HZ",
    "efficiency_from_rte", "soc_step", "soc_power_limit_mw", "droop_response_mw",
    "lowpass_step", "smoothing_step", "import_cap_schedule_mw", "bess_power_mw", "bess_substep_mw", "lag_decay",
    "FREQ_FILTER_S", "BA_NCOL", "lag_mean_factor", "bess_lag_factors", "freq_measurement_step",
]

#: Energy of one Megapack 2 XL [MWh] (LFP), docs/physics.md §5 [P42][P43] [S].
MEGAPACK2XL_E_MWH = 3.9
#: AC-AC round-trip efficiency incl. auxiliaries, 88–92 % for MP2XL (Megapack 3 ≈91 % [S2] [P43]) [E].
RTE_DEFAULT = 0.90
#: SoC band at each end over which available power is derated to 0 [-] (docs/physics.md §5, [E]).
SOC_BAND = 0.05
#: Frequency-response deadband [Hz]: ±0.036 Hz (FERC 842 / IEEE 1547 default, [S2] [P31][P41]);
#: docs/physics.md §5 allows 0.017–0.036 Hz.
DEADBAND_HZ = 0.036
#: BESS droop [pu], 1–2 % (stiffer than turbines), docs/physics.md §5 [E]; middle of the range.
R_BESS = 0.015
#: Load-smoothing high-pass time constant [s], 30–120 s (docs/physics.md §5 [E]).
SMOOTH_TAU_S = 60.0
#: Nominal frequency [Hz].
F0_HZ = 60.0
#: Time constant of the frequency measurement a grid-following yard's droop acts on [s]: a PLL and
#: its filter, about three cycles [E]. Together with the power response lag (0.15 s in the site files)
#: the yard answers a frequency change with a mean delay of 0.2 s, within the "<200 ms" of [P44].
FREQ_FILTER_S = 0.05
#: Columns of a yard's lag factors (:func:`bess_lag_factors`): response-lag decay over a sub-step and
#: over a step, measurement-filter decay over both, measurement-filter mean factor over both.
BA_NCOL = 6


@njit
def efficiency_from_rte(rte):  # pragma: no cover - jitted
    """One-way efficiency ``η_c = η_d = √RTE`` [-] (docs/physics.md §5 [E])."""
    return math.sqrt(rte)


@njit(inline="always")
def soc_step(soc, p_mw, e_nom_mwh, eta_c, eta_d, dt_s):  # pragma: no cover - jitted
    """State of charge after ``dt_s`` at constant battery power ``p_mw`` (positive = discharging).

    ``SoC + dt·(η_c·P_ch − P_dis/η_d)/E_nom`` with ``dt`` in hours (docs/physics.md §5 [E]).

    Parameters
    ----------
    soc : float
        State of charge [-].
    p_mw : float
        AC power at the terminals [MW], positive discharging.
    e_nom_mwh : float
        Nominal energy [MWh].
    eta_c, eta_d : float
        Charge and discharge efficiencies [-] (:func:`efficiency_from_rte`).
    dt_s : float
        Step [s].
    """
    if p_mw >= 0.0:
        return soc - dt_s / 3600.0 * p_mw / eta_d / e_nom_mwh
    return soc - dt_s / 3600.0 * p_mw * eta_c / e_nom_mwh


@njit(inline="always")
def soc_power_limit_mw(soc, soc_min, soc_max, p_rated_mw, discharging, band=SOC_BAND):  # pragma: no cover
    """Available power toward one end of the SoC window, derated to 0 over the last ``band`` [MW].

    docs/physics.md §5 [E]: usable window 5–95 % (20–80 % to keep FFR headroom); power falls linearly to
    0 between ``soc_min + band`` and ``soc_min`` when discharging (``soc_max − band`` and ``soc_max``
    when charging).

    Parameters
    ----------
    soc, soc_min, soc_max : float
        State of charge and window [-].
    p_rated_mw : float
        Rated (inverter) power [MW].
    discharging : bool
        True for the discharge limit, False for the charge limit.
    band : float
        Derate band [-].

    Returns
    -------
    float
        Magnitude of the available power [MW] (≥ 0).
    """
    x = (soc - soc_min) / band if discharging else (soc_max - soc) / band
    if x <= 0.0:
        return 0.0
    return p_rated_mw if x >= 1.0 else p_rated_mw * x


@njit(inline="always")
def droop_response_mw(df_hz, p_rated_mw, r_b=R_BESS, deadband_hz=DEADBAND_HZ, f0_hz=F0_HZ):  # pragma: no cover
    """Droop frequency response ``−(Δf_e/f0)/R_b·P_rated`` outside a deadband [MW].

    ``Δf_e`` is the deviation beyond the deadband (non-step deadband: the response starts from 0 at
    the band edge) [E]. Droop 1–2 %, deadband 0.017–0.036 Hz (docs/physics.md §5, [E]; 0.036 Hz FERC 842
    [S2]). Positive result = discharge (under-frequency).
    """
    if df_hz > deadband_hz:
        dfe = df_hz - deadband_hz
    elif df_hz < -deadband_hz:
        dfe = df_hz + deadband_hz
    else:
        return 0.0
    return -dfe / f0_hz / r_b * p_rated_mw


@njit
def lowpass_step(y, u, tau_s, dt_s):  # pragma: no cover - jitted
    """Exact first-order low-pass update with ``u`` held over the step: ``u + (y − u)·e^(−dt/τ)``."""
    return u + (y - u) * lag_decay(tau_s, dt_s)


@njit
def smoothing_step(lpf_mw, p_it_mw, tau_s, dt_s):  # pragma: no cover - jitted
    """Load smoothing: the BESS takes the high-pass part of the IT power (docs/physics.md §5 [E]).

    ``LPF ← lowpass(LPF, P_IT, τ)``, ``P_smooth = P_IT − LPF``; turbines follow ``LPF`` within their
    ramp limits.

    Parameters
    ----------
    lpf_mw : float
        Low-pass state [MW].
    p_it_mw : float
        IT (or island) load this step [MW].
    tau_s : float
        Time constant, 30–120 s [s].
    dt_s : float
        Step [s].

    Returns
    -------
    tuple(float, float)
        ``(lpf_new_mw, p_smooth_mw)``; ``p_smooth_mw`` is the BESS schedule share (positive =
        discharge when the load is above its low-pass).
    """
    y = lowpass_step(lpf_mw, p_it_mw, tau_s, dt_s)
    return y, p_it_mw - y


@njit
def import_cap_schedule_mw(p_load_mw, p_gen_mw, import_cap_mw, p_recharge_mw):  # pragma: no cover
    """Grid-import cap mode: discharge what would exceed the tie's import cap, recharge below it [MW].

    ``need = P_load − P_gen − cap``; ``P = need`` if positive, else ``−min(−need, P_recharge)``
    (recharge only from the headroom under the cap, at most ``p_recharge_mw``) [E].
    """
    need = p_load_mw - p_gen_mw - import_cap_mw
    if need >= 0.0:
        return need
    room = -need
    return -(room if room < p_recharge_mw else p_recharge_mw)


@njit(inline="always")
def bess_power_mw(p_sched_mw, df_hz, soc, p_rated_mw, soc_min, soc_max, r_b, deadband_hz, i_max_pu,
                  f0_hz):  # pragma: no cover - jitted
    """Commanded BESS power: schedule + droop, within SoC and current limits [MW].

    ``P = clip(P_sched + droop(Δf), −P_ch,avail(SoC), +P_dis,avail(SoC))`` with the inverter limit
    ``i_max_pu·P_rated`` (docs/physics.md §5). The virtual inertia of a grid-forming inverter is not part of
    the command: it is the inverter's share of the island's kinetic power
    (:func:`twin.frequency.inertial_power_mw`, in :func:`twin.frequency.island_step`).

    Parameters
    ----------
    p_sched_mw : float
        Schedule incl. the smoothing or import-cap part [MW], positive discharge.
    df_hz : float
        Frequency deviation [Hz].
    soc, soc_min, soc_max : float
        State of charge and window [-].
    p_rated_mw : float
        Rated power [MW].
    r_b, deadband_hz : float
        Droop [pu] and deadband [Hz]; ``r_b ≤ 0`` disables droop.
    i_max_pu : float
        Current (power) limit [pu of rated].
    f0_hz : float
        Nominal frequency [Hz].
    """
    p = p_sched_mw
    if r_b > 0.0:
        p += droop_response_mw(df_hz, p_rated_mw, r_b, deadband_hz, f0_hz)
    p_lim = i_max_pu * p_rated_mw
    lim_dis = soc_power_limit_mw(soc, soc_min, soc_max, p_lim, True, SOC_BAND)
    lim_ch = soc_power_limit_mw(soc, soc_min, soc_max, p_lim, False, SOC_BAND)
    if p > lim_dis:
        p = lim_dis
    if p < -lim_ch:
        p = -lim_ch
    return p


@njit(inline="always")
def bess_substep_mw(p_mw, p_sched_mw, df_hz, soc, row, derate, decay, f0_hz=F0_HZ):  # pragma: no cover - jitted
    """Battery power at the end of one sub-step [MW] (a yard's parameter ``row``, twin.plant ``BE_*``).

    ``df_hz`` is the frequency deviation the yard acts on (grid-following: its measurement,
    :func:`freq_measurement_step`). The command (:func:`bess_power_mw`: schedule + droop with deadband, within the SoC-derated power
    limits of the yard's rating × ``derate``) is followed through a first-order lag of the yard's
    response time (<200 ms [P44]), updated exactly with its decay factor over the sub-step,
    ``decay = e^(−h/τ)`` (:func:`lag_decay`); a grid-forming yard follows it at once (its inertial
    response is added by the island, :func:`twin.frequency.island_step`).
    """
    cmd = bess_power_mw(p_sched_mw, df_hz, soc, row[BE_P_MW] * derate, row[BE_SOC_MIN], row[BE_SOC_MAX], row[BE_DROOP],
                        row[BE_DEADBAND_HZ], 1.0, f0_hz)
    if row[BE_GFM] > 0.5:
        return cmd
    return cmd + (p_mw - cmd) * decay


@njit(inline="always")
def freq_measurement_step(m_hz, df_hz, decay, mean_factor):  # pragma: no cover - jitted
    """Frequency measurement of a grid-following yard over one sub-step: ``(Δf_m over it, Δf_m at its end)`` [Hz].

    A first-order filter of time constant ``T_m`` (the inverter's PLL and frequency filter,
    :data:`FREQ_FILTER_S`) on the island frequency deviation ``df_hz``, held over the sub-step as
    the engine holds every source's input: ``Δf_m(t) = Δf + (m − Δf)·e^(−t/T_m)``, exact. The droop
    acts on the filter's mean over the sub-step, ``Δf + (m − Δf)·mean_factor``
    (:func:`lag_mean_factor`): with Δf sampled at the sub-step's start, the mean carries the
    measurement delay ``T_m`` exactly on a frequency ramp, where the end value would carry
    ``T_m + h/2``. ``decay = e^(−h/T_m)`` (:func:`lag_decay`); ``T_m = 0`` (both factors 0, a
    grid-forming yard): ``Δf_m = Δf``.
    """
    d = m_hz - df_hz
    return df_hz + d * mean_factor, df_hz + d * decay


@njit
def lag_mean_factor(tau_s, dt_s):  # pragma: no cover - jitted
    """Mean over ``dt_s`` of an exact first-order lag's distance to its held input, relative to the
    start: ``(τ/dt)·(1 − e^(−dt/τ))`` (0 for τ ≤ 0: no lag)."""
    return tau_s / dt_s * (1.0 - math.exp(-dt_s / tau_s)) if tau_s > 0.0 else 0.0


@njit
def bess_lag_factors(row, h_s, dt_s, out):  # pragma: no cover - jitted
    """A yard's lag factors (``out``, :data:`BA_NCOL`) for sub-steps of ``h_s`` and steps of ``dt_s``.

    ``out[0:2]``: decay of the power response lag τ (:func:`lag_decay`); ``out[2:4]``: decay of the
    frequency measurement filter ``T_m``; ``out[4:6]``: its mean factor (:func:`lag_mean_factor`).
    A grid-forming yard has no measurement filter (its droop acts on its own voltage frequency).
    """
    t_m = 0.0 if row[BE_GFM] > 0.5 else row[BE_FREQ_FILTER_S]
    out[0] = lag_decay(row[BE_RESPONSE_S], h_s)
    out[1] = lag_decay(row[BE_RESPONSE_S], dt_s)
    out[2] = lag_decay(t_m, h_s)
    out[3] = lag_decay(t_m, dt_s)
    out[4] = lag_mean_factor(t_m, h_s)
    out[5] = lag_mean_factor(t_m, dt_s)


@njit
def lag_decay(tau_s, dt_s):  # pragma: no cover - jitted
    """Decay factor of an exact first-order lag over ``dt_s``, ``e^(−dt/τ)`` (0 for τ ≤ 0: no lag)."""
    return math.exp(-dt_s / tau_s) if tau_s > 0.0 else 0.0
