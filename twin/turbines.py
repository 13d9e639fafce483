"""Gas turbines: ambient derating, part-load heat rate, fuel and emissions.

Model forms follow ``shared/PHYSICS.md`` §3. All functions are numba-compatible scalar kernels
(``@njit``); their pure-Python twins are ``fn.py_func``.
"""

from __future__ import annotations

from ._jit import njit

__all__ = ["T_ISO_C", "derate_factor", "part_load_heat_rate_btu_per_kwh"]

#: ISO ambient temperature [°C] (ISO 3977-2: 15 °C, sea level, 60 % RH). Rotating-machinery.com,
#: "Gas turbine ISO rating and site rating" (2021), PHYSICS.md source (30).
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
        0.008–0.010 aeroderivative, PHYSICS.md §3).

    Returns
    -------
    float
        Available output as a fraction of the ISO rating [-].

    References
    ----------
    Generic site-rating curve: power factor ≈1.25 at −19 °C, ≈0.83 at 40 °C (PHYSICS.md (30)).
    """
    k = 1.0 - derate_per_c * (t_amb_c - T_ISO_C)
    return k if k > 0.0 else 0.0


@njit
def part_load_heat_rate_btu_per_kwh(hr_full_btu_per_kwh, load_frac, wfnl):  # pragma: no cover
    """Part-load heat rate from the GGOV1 fuel line.

    ``HR(p) = HR_full·(Wfnl + (1 − Wfnl)·p)/p`` (PHYSICS.md §3, structure from GGOV1, IEEE PES TR1
    2013). With ``Wfnl = 0.2`` this gives ×1.07 at 75 %, ×1.20 at 50 % and ×1.6 at 25 % load.

    Parameters
    ----------
    hr_full_btu_per_kwh : float
        Full-load heat rate [Btu/kWh].
    load_frac : float
        Output as a fraction of the available rating [-]; values ≤ 0 return ``inf``.
    wfnl : float
        No-load fuel flow as a fraction of full-load fuel [-].
    """
    if load_frac <= 0.0:
        return float("inf")
    return hr_full_btu_per_kwh * (wfnl + (1.0 - wfnl) * load_frac) / load_frac
