"""Protection and emergency controls: under-frequency load shedding (UFLS) and GPU power capping.

UFLS follows the ERCOT set points of ``shared/PHYSICS.md`` §4 (39) [S]: 59.3 / 59.1 / 58.9 / 58.7 /
58.5 Hz, with cumulative relief ≥5 / 15 / 25 % for the first three stages [S]; the reliefs of the last
two (35 / 45 %) are an assumption [E]. The optional anti-stall stages shed 1.5 / 3.0 / 4.5 % when the
frequency stays below 59.5 Hz for 90 / 120 / 150 s [S] (39). GPU power capping (the campus's own fast
load reduction) is an assumption throughout [E].

All kernels are ``@njit`` (numba ``cache=True``); their pure-Python twins are ``fn.py_func``.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit

__all__ = [
    "UFLS_HZ", "UFLS_RELIEF", "ANTI_STALL_HZ", "ANTI_STALL_DELAY_S", "ANTI_STALL_RELIEF",
    "CAP_ON_HZ", "CAP_OFF_HZ", "CAP_DOWN_PER_S", "CAP_UP_PER_S", "CAP_MIN",
    "ufls_step", "ufls_shed_fraction", "anti_stall_step", "gpu_cap_step", "budget_cap_factor",
]

#: ERCOT UFLS set points [Hz], PHYSICS.md §4 (39) [S].
UFLS_HZ = np.array([59.3, 59.1, 58.9, 58.7, 58.5])
#: Cumulative relief at each stage [fraction of load]: 5/15/25 % [S] (39); 35/45 % [E].
UFLS_RELIEF = np.array([0.05, 0.15, 0.25, 0.35, 0.45])
#: ERCOT anti-stall stage: frequency [Hz], delays [s] and cumulative relief [-] (39) [S].
ANTI_STALL_HZ = 59.5
ANTI_STALL_DELAY_S = np.array([90.0, 120.0, 150.0])
ANTI_STALL_RELIEF = np.array([0.015, 0.030, 0.045])
#: GPU power-capping thresholds and rates [E]: cap below 59.7 Hz at 5 %/s down to 60 % of the
#: dynamic power, release above 59.9 Hz at 1 %/s.
CAP_ON_HZ = 59.7
CAP_OFF_HZ = 59.9
CAP_DOWN_PER_S = 0.05
CAP_UP_PER_S = 0.01
CAP_MIN = 0.6


@njit
def ufls_step(f_hz, stage, timers_s, set_points_hz, delay_s, dt_s):  # pragma: no cover - jitted
    """Advance the UFLS relays of an island by ``dt_s``; return the new number of stages tripped.

    A stage picks up while ``f < set point`` and trips once its timer reaches ``delay_s`` (relay plus
    breaker time; 0 trips at once — the delay is an assumption [E]); a timer resets when the
    frequency recovers above its set point before tripping. Stages trip in order and stay tripped
    (restoration is an operator/PMS action). Call it on the frequency sub-steps for sub-second
    resolution.

    Parameters
    ----------
    f_hz : float
        Island frequency [Hz].
    stage : int
        Stages already tripped (0…n).
    timers_s : ndarray(float, n)
        Pick-up timers [s], updated in place.
    set_points_hz : ndarray(float, n)
        Descending set points [Hz] (``UFLS_HZ``).
    delay_s : float
        Trip delay after pick-up [s].
    dt_s : float
        Step [s].

    Returns
    -------
    int
        Stages tripped after the step; :func:`ufls_shed_fraction` gives the relief.
    """
    n = set_points_hz.shape[0]
    st = stage
    for s in range(n):
        if s < st:
            continue
        if f_hz < set_points_hz[s]:
            timers_s[s] += dt_s
            if timers_s[s] >= delay_s and s == st:
                st += 1
        else:
            timers_s[s] = 0.0
    return st


@njit
def ufls_shed_fraction(stage, relief):  # pragma: no cover - jitted
    """Cumulative fraction of load shed after ``stage`` stages have tripped [-]."""
    if stage <= 0:
        return 0.0
    return relief[stage - 1]


@njit
def anti_stall_step(f_hz, timer_s, f_set_hz, delays_s, relief, dt_s, out):  # pragma: no cover - jitted
    """ERCOT-style anti-stall stages: shed after the frequency stays below ``f_set_hz`` long enough.

    The timer runs while ``f < f_set_hz`` (59.5 Hz) and resets above it; the shed fraction is the
    cumulative relief of every stage whose delay (90/120/150 s) has elapsed (1.5/3.0/4.5 %)
    (PHYSICS.md §4 (39) [S]). Shed load stays shed: ``out[1]`` never falls while the timer is reset.

    Parameters
    ----------
    f_hz, timer_s : float
        Frequency [Hz] and time spent below the set point so far [s].
    f_set_hz : float
        Set point [Hz].
    delays_s, relief : ndarray(float, n)
        Delays [s] and cumulative relief [-] of the stages.
    dt_s : float
        Step [s].
    out : ndarray(float, 2)
        On entry ``out[1]`` holds the relief already shed; receives ``[timer_s, shed_fraction]``.
    """
    t = timer_s + dt_s if f_hz < f_set_hz else 0.0
    shed = out[1]
    for s in range(delays_s.shape[0]):
        if t >= delays_s[s] and relief[s] > shed:
            shed = relief[s]
    out[0] = t
    out[1] = shed


@njit
def gpu_cap_step(cap, f_hz, f_on_hz=CAP_ON_HZ, f_off_hz=CAP_OFF_HZ, down_per_s=CAP_DOWN_PER_S,
                 up_per_s=CAP_UP_PER_S, cap_min=CAP_MIN, dt_s=1.0):  # pragma: no cover - jitted
    """GPU power cap driven by frequency, with hysteresis and rate limits [E].

    Below ``f_on_hz`` the cap on the dynamic GPU power falls at ``down_per_s`` to ``cap_min``; above
    ``f_off_hz`` it is released at ``up_per_s`` to 1; in between it holds. The cap multiplies ``u``
    like the thermal factor in ``P_IT = N·[P_idle + (P_peak − P_idle)·u·g_T·cap] + P_static``. All
    thresholds and rates are assumptions [E] (PHYSICS.md lists GPU capping as a protection without
    values; the NVML power-smoothing ramps of §1 bound how fast GPUs can follow).

    Returns
    -------
    float
        New cap factor [-].
    """
    if f_hz < f_on_hz:
        c = cap - down_per_s * dt_s
        return c if c > cap_min else cap_min
    if f_hz > f_off_hz:
        c = cap + up_per_s * dt_s
        return c if c < 1.0 else 1.0
    return cap


@njit
def budget_cap_factor(p_budget_mw, p_idle_mw, p_demand_mw, p_static_mw):  # pragma: no cover - jitted
    """Cap factor that fits a hall's IT power into a power budget [-].

    Solves ``P_static + P_idle + (P_demand − P_idle)·c = P_budget`` for ``c`` in [0, 1], where the
    powers are hall totals [MW] and ``P_demand`` is the uncapped GPU power (PHYSICS.md §1 load
    model). Returns 1 when the demand fits, 0 when even idle does not.
    """
    dyn = p_demand_mw - p_idle_mw
    room = p_budget_mw - p_static_mw - p_idle_mw
    if dyn <= 0.0 or room >= dyn:
        return 1.0
    if room <= 0.0:
        return 0.0
    return room / dyn
