"""Air-cooled chillers: the DOE-2 / EnergyPlus ``Chiller:Electric:EIR`` model.

Forms from docs/physics.md §6 (EnergyPlus Engineering Reference, Chiller:Electric:EIR [P46]); the
curve sets a site names are data, in ``sites/data/chiller_curves.toml`` (:func:`sites.curves.chiller_curves`).
Scalar kernels are ``@njit``; pure-Python twins are ``fn.py_func``.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit

__all__ = [
    "biquadratic",
    "chiller_capacity_mw",
    "chiller_power_mw",
    "cop_warm_water",
    "compressor_power_mw",
    "FAN_FRAC",
    "PUMP_FRAC",
    "auxiliary_power_mw",
    "cooling_plant_power_mw",
]

#: Condenser-fan power as a fraction of the heat rejected, 3–6 % of cooling load unless COP_ref already
#: includes fans (docs/physics.md §6, [E]); 0.04 is the middle of the range.
FAN_FRAC = 0.04
#: CDU + facility-water pump power as a fraction of IT heat: CDU 0.6–1.2 % + facility 0.5–1 %
#: (docs/physics.md §6/§7 "CDU + facility pumps 1–2 %", [E, derived]); 0.015 is the middle.
PUMP_FRAC = 0.015

@njit
def biquadratic(c, x, y):  # pragma: no cover - jitted
    """``c0 + c1·x + c2·x² + c3·y + c4·y² + c5·x·y`` (EnergyPlus biquadratic curve)."""
    return c[0] + c[1] * x + c[2] * x * x + c[3] * y + c[4] * y * y + c[5] * x * y


@njit
def _clamp(x, lo, hi):  # pragma: no cover - jitted
    return lo if x < lo else (hi if x > hi else x)


@njit
def chiller_capacity_mw(q_ref_mw, capft, t_chw_c, t_amb_c, t_chw_range, t_amb_range):  # pragma: no cover
    """Available cooling capacity of an air-cooled chiller [MW thermal].

    ``Q_avail = Q_ref·CAPFT(Tchw, Tc)``, inputs clamped to the curve's valid range.

    Parameters
    ----------
    q_ref_mw : float
        Reference (rated) cooling capacity [MW].
    capft : ndarray(float, 6)
        Biquadratic CAPFT coefficients.
    t_chw_c, t_amb_c : float
        Leaving chilled-water and entering condenser-air (ambient dry-bulb) temperatures [°C].
    t_chw_range, t_amb_range : tuple(float, float)
        Valid ranges of the curve [°C].
    """
    x = _clamp(t_chw_c, t_chw_range[0], t_chw_range[1])
    y = _clamp(t_amb_c, t_amb_range[0], t_amb_range[1])
    f = biquadratic(capft, x, y)
    return q_ref_mw * (f if f > 0.0 else 0.0)


@njit
def chiller_power_mw(
    q_load_mw, q_ref_mw, cop_ref, capft, eirft, eirfplr, t_chw_c, t_amb_c, t_chw_range, t_amb_range
):  # pragma: no cover - jitted
    """Compressor electric power of an air-cooled chiller [MW].

    ``PLR = Q_load/(Q_ref·CAPFT)``, ``P = (Q_ref·CAPFT/COP_ref)·EIRFT·EIRFPLR(PLR)``. The load is
    capped at the available capacity (PLR ≤ 1); the caller sees unmet load as
    ``q_load − chiller_capacity_mw``.

    Parameters
    ----------
    q_load_mw : float
        Heat the chiller is asked to remove [MW thermal].
    q_ref_mw, cop_ref : float
        Rated capacity [MW] and COP at the reference point [-].
    capft, eirft : ndarray(float, 6)
        Biquadratic coefficients.
    eirfplr : ndarray(float, 3)
        Quadratic part-load coefficients.
    t_chw_c, t_amb_c : float
        Leaving chilled-water and ambient dry-bulb temperatures [°C], clamped to the valid range.
    t_chw_range, t_amb_range : tuple(float, float)
        Valid ranges [°C].

    Returns
    -------
    float
        Compressor electric power [MW] (condenser fans and pumps are separate).
    """
    x = _clamp(t_chw_c, t_chw_range[0], t_chw_range[1])
    y = _clamp(t_amb_c, t_amb_range[0], t_amb_range[1])
    cap = q_ref_mw * max(biquadratic(capft, x, y), 0.0)
    if cap <= 0.0 or q_load_mw <= 0.0:
        return 0.0
    plr = min(q_load_mw / cap, 1.0)
    eir_plr = eirfplr[0] + eirfplr[1] * plr + eirfplr[2] * plr * plr
    return cap / cop_ref * biquadratic(eirft, x, y) * eir_plr


@njit
def cop_warm_water(t_chw_c, t_amb_c, eta_ii=0.5, dt_evap_k=3.0, dt_cond_k=12.5):  # pragma: no cover - jitted
    """Second-law COP of a chiller on warm (12–25 °C) chilled water, where the EIR curves extrapolate.

    ``COP = η_II·T_ev/(T_cd − T_ev)`` with ``T_ev = Tchw − dt_evap`` and ``T_cd = Tamb + dt_cond`` in
    kelvin (docs/physics.md §6, [E]: η_II ≈ 0.45–0.55, T_cd = Tamb + 10…15 K, T_ev = Tchw − 3 K).

    Parameters
    ----------
    t_chw_c, t_amb_c : float
        Chilled-water supply and ambient dry-bulb temperatures [°C].
    eta_ii : float
        Second-law efficiency [-].
    dt_evap_k, dt_cond_k : float
        Evaporator and condenser approach temperatures [K].

    Returns
    -------
    float
        COP [-]; ``inf`` when no lift is needed (free cooling: the caller uses dry coolers).
    """
    t_ev = t_chw_c - dt_evap_k + 273.15
    t_cd = t_amb_c + dt_cond_k + 273.15
    if t_cd <= t_ev:
        return np.inf
    return eta_ii * t_ev / (t_cd - t_ev)


@njit
def auxiliary_power_mw(q_cool_mw, p_it_mw, fan_frac=FAN_FRAC, pump_frac=PUMP_FRAC):  # pragma: no cover
    """Condenser-fan plus CDU/facility-pump electric power [MW] (docs/physics.md §6/§7, fractions [E]).

    ``P_aux = fan_frac·Q_cool + pump_frac·P_IT``.

    Parameters
    ----------
    q_cool_mw : float
        Heat rejected by the chillers [MW].
    p_it_mw : float
        IT power (≈ IT heat) the pumps circulate [MW].
    fan_frac, pump_frac : float
        Fan fraction of rejected heat (3–6 %) and pump fraction of IT heat (1–2 %) [-].
    """
    return fan_frac * q_cool_mw + pump_frac * p_it_mw


@njit
def compressor_power_mw(q_mw, q_ref_mw, cop_ref, capft, eirft, eirfplr, t_water_c, t_amb_c, t_chw_range,
                        t_amb_range):  # pragma: no cover - jitted
    """Compressor power of a chiller plant serving ``q_mw`` with water at ``t_water_c`` [MW].

    Where the plant produces chilled water within the curve's range, the ``Chiller:Electric:EIR`` curves
    (:func:`chiller_power_mw`); where it produces warm facility water above that range (liquid-cooled
    halls, 12–25 °C and more), the second-law form :func:`cop_warm_water` at that water temperature,
    because the EIR curves would only extrapolate there (docs/physics.md §6). Free cooling (no lift) costs
    no compressor power.
    """
    if q_mw <= 0.0:
        return 0.0
    if t_water_c > t_chw_range[1]:
        cop = cop_warm_water(t_water_c, t_amb_c)
        return q_mw / cop if cop < np.inf else 0.0
    return chiller_power_mw(q_mw, q_ref_mw, cop_ref, capft, eirft, eirfplr, t_water_c, t_amb_c, t_chw_range, t_amb_range)


@njit
def cooling_plant_power_mw(q_load_mw, q_ref_mw, cop_ref, capft, eirft, eirfplr, t_chw_c, t_amb_c,
                           t_chw_range, t_amb_range, p_it_mw, fan_frac=FAN_FRAC,
                           pump_frac=PUMP_FRAC):  # pragma: no cover - jitted
    """Electric power of a chiller plant: compressors + condenser fans + pumps [MW].

    The compressor power is :func:`compressor_power_mw` for the served load (capped at capacity,
    :func:`chiller_capacity_mw`); fans and pumps are fractions (:func:`auxiliary_power_mw`).
    Arguments as in :func:`chiller_power_mw` and :func:`auxiliary_power_mw`; ``q_ref_mw`` is the
    summed rating of the working chillers and ``t_chw_c`` the water the plant produces.
    """
    cap = chiller_capacity_mw(q_ref_mw, capft, t_chw_c, t_amb_c, t_chw_range, t_amb_range)
    q = q_load_mw if q_load_mw < cap else cap
    if q < 0.0:
        q = 0.0
    p = compressor_power_mw(q, q_ref_mw, cop_ref, capft, eirft, eirfplr, t_chw_c, t_amb_c, t_chw_range, t_amb_range)
    return p + auxiliary_power_mw(q, p_it_mw, fan_frac, pump_frac)
