"""Protection and emergency controls: under-frequency load shedding (UFLS) and GPU power capping.

UFLS follows the ERCOT set points of docs/physics.md §4 [P39] [S]: 59.3 / 59.1 / 58.9 / 58.7 /
58.5 Hz, with cumulative relief ≥5 / 15 / 25 % for the first three stages [S]; the reliefs of the last
two (35 / 45 %) are an assumption [E]. Relays act on the sub-step frequency after a pick-up
delay (:data:`UFLS_DELAY_S`). GPU power capping (the campus's own fast
load reduction) is an assumption throughout [E].

All kernels are ``@njit`` (numba ``cache=True``); their pure-Python twins are ``fn.py_func``.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit

__all__ = [
    "UFLS_HZ", "UFLS_RELIEF", "UFLS_DELAY_S", "BLACKOUT_HZ", "RESTORE_HZ", "RESTORE_S", "ROCOF_SHORT_S", "ROCOF_LONG_S",
    "CAP_ON_HZ", "CAP_OFF_HZ", "CAP_DOWN_PER_S", "CAP_UP_PER_S", "CAP_MIN",
    "ufls_step", "ufls_shed_fraction", "island_shed_fraction", "ufls_restore_step", "rocof_window_hz_per_s", "gpu_cap_step",
]

#: ERCOT UFLS set points [Hz], docs/physics.md §4 [P39] [S].
UFLS_HZ = np.array([59.3, 59.1, 58.9, 58.7, 58.5])
#: Cumulative relief at each stage [fraction of load]: 5/15/25 % [S] [P39]; 35/45 % [E].
UFLS_RELIEF = np.array([0.05, 0.15, 0.25, 0.35, 0.45])
#: UFLS relay pick-up delay [s]: the 6-cycle minimum (0.1 s at 60 Hz) of ERCOT NOGRR 247 (docs/physics.md §4 [P39]).
UFLS_DELAY_S = 0.1
#: Below this frequency an islanded island blacks out: generator under-frequency protection trips every unit
#: at once (57 Hz, the bottom of the PRC-024 no-trip zone, taken as instantaneous [E]).
BLACKOUT_HZ = 57.0
#: A shed UFLS stage is restored once the island's frequency has not fallen below RESTORE_HZ for RESTORE_S
#: (its lowest sub-step value in each step; training swings of ±0.2 Hz would keep a 59.95 Hz rule on the
#: end-of-step value from ever restoring) and the spinning reserve covers it [E].
RESTORE_HZ = 59.5
RESTORE_S = 300.0
#: RoCoF measuring windows [s]: 100 ms and 500 ms, as relays measure it (IEEE 1547-2018 / ENTSO-E practice
#: of averaging over several cycles [P36] [P37]; the two windows are an assumption [E]).
ROCOF_SHORT_S = 0.1
ROCOF_LONG_S = 0.5
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
def island_shed_fraction(stage, dark, relief=UFLS_RELIEF):  # pragma: no cover - jitted
    """Fraction of an island's IT load not served: all of it while the island is dark (blacked out), else
    what its tripped UFLS stages shed (:func:`ufls_shed_fraction`) [-]."""
    return 1.0 if dark else ufls_shed_fraction(stage, relief)


@njit
def gpu_cap_step(cap, f_hz, f_on_hz=CAP_ON_HZ, f_off_hz=CAP_OFF_HZ, down_per_s=CAP_DOWN_PER_S,
                 up_per_s=CAP_UP_PER_S, cap_min=CAP_MIN, dt_s=1.0):  # pragma: no cover - jitted
    """GPU power cap driven by frequency, with hysteresis and rate limits [E].

    Below ``f_on_hz`` the cap on the dynamic GPU power falls at ``down_per_s`` to ``cap_min``; above
    ``f_off_hz`` it is released at ``up_per_s`` to 1; in between it holds. The cap multiplies ``u``
    like the thermal factor in ``P_IT = N·[P_idle + (P_peak − P_idle)·u·g_T·cap] + P_static``. All
    thresholds and rates are assumptions [E] (the sources name GPU capping as a protection but give no
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
def ufls_restore_step(stage, timer_s, f_hz, reserve_mw, it_mw, relief, dt_s, f_restore_hz=RESTORE_HZ,
                      delay_s=RESTORE_S):  # pragma: no cover - jitted
    """Restore the last shed UFLS stage after ``delay_s`` above ``f_restore_hz`` when the reserve covers it [E].

    The PMS brings back the last stage when the frequency (``f_hz``: the step's lowest) has stayed above
    :data:`RESTORE_HZ` for :data:`RESTORE_S` and the reserve (``reserve_mw``: the units' spinning reserve
    and what the island's batteries can still give) covers it: the
    island's spinning reserve exceeds the load that stage brings back, ``(relief[s] − relief[s−1])·IT``
    (assumptions [E]). Returns ``(stage, timer_s)``.
    """
    if stage <= 0 or f_hz <= f_restore_hz:
        return stage, 0.0
    t = timer_s + dt_s
    back = (relief[stage - 1] - (relief[stage - 2] if stage >= 2 else 0.0)) * it_mw
    if t >= delay_s and reserve_mw > back:
        return stage - 1, 0.0
    return stage, t


@njit
def rocof_window_hz_per_s(ring_hz, pos, n_window, h_s):  # pragma: no cover - jitted
    """Rate of change of frequency over the last ``n_window`` sub-steps, as a relay measures it [Hz/s].

    ``(f[pos] − f[pos − n])/(n·h)`` over a ring of sub-step frequencies (``ring_hz[pos % len]`` is
    the newest); the caller makes sure ``pos ≥ n_window`` and ``n_window < len(ring_hz)``. The ring's
    length is a power of two (:data:`twin.state.RING_N`), so the positions wrap by a bit mask (an integer
    division per look-up would cost more than the rest of a sub-step's relays).
    """
    m = ring_hz.shape[0] - 1
    return (ring_hz[pos & m] - ring_hz[(pos - n_window) & m]) / (n_window * h_s)
