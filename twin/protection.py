"""Protection and emergency controls: UFLS, RoCoF relays, frequency ride-through, UPS transfer, chiller
trips and restarts, and GPU power capping.

Settings come from the site file's ``[protection]`` table (:class:`sites.schema.Protection`, compiled by
:func:`twin.plant.protection_ctrl`); docs/physics.md §4 *Protection* lists them with their sources. UFLS
defaults follow the ERCOT set points [P39] [S]: 59.3 / 59.1 / 58.9 / 58.7 / 58.5 Hz, with cumulative
relief ≥5 / 15 / 25 % for the first three stages [S]; the reliefs of the last two (35 / 45 %) are an
assumption [E]. The module constants below are those defaults (the kernel reads the site's settings).
Relays act on the sub-step frequency in :func:`twin.frequency.island_step`; UPS energy and chiller
restarts are settled once per step in :mod:`twin.stepping`. Under-voltage ride-through is not modelled
(no voltage inside a segment: docs/physics.md §4). GPU power capping (the campus's own fast load
reduction) is an assumption throughout [E].

All kernels are ``@njit`` (numba ``cache=True``); their pure-Python twins are ``fn.py_func``.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit
from .plant import CH_ISLAND, CT_CH_TRIP_HZ, HA_ISLAND, HA_UPS_E_MWH
from .state import (
    EV_CHILLER_RESTART, EV_UPS_EMPTY, SC_RESTART_S, SH_UPS_USED_MWH, SI_BLACKOUT, SI_UPS_DEAD, SI_UPS_FRAC, SI_UPS_S,
    log_event,
)

__all__ = [
    "UFLS_HZ", "UFLS_RELIEF", "UFLS_DELAY_S", "BLACKOUT_HZ", "RT_LOG_PICKUP_MAX_S", "RESTORE_HZ", "RESTORE_S", "ROCOF_SHORT_S", "ROCOF_LONG_S",
    "CAP_ON_HZ", "CAP_OFF_HZ", "CAP_DOWN_PER_S", "CAP_UP_PER_S", "CAP_MIN",
    "ufls_step", "ufls_shed_fraction", "island_shed_fraction", "ufls_restore_step", "rocof_window_hz_per_s", "gpu_cap_step",
    "rocof_relay_step", "ride_through_step", "ups_step", "ups_served_fraction", "ups_shares", "ups_drain",
    "chiller_restart_step", "chiller_restarts",
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
#: A ride-through band's pick-up is logged only if the band can trip within this time [s]; slower bands (e.g.
#: 30 min below 59.5 Hz) log their trip only, or an island hovering at a threshold would flood the log [E].
RT_LOG_PICKUP_MAX_S = 60.0
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
    the newest); the caller makes sure ``pos ≥ n_window`` and ``n_window < len(ring_hz)``.
    """
    n = ring_hz.shape[0]
    return (ring_hz[pos % n] - ring_hz[(pos - n_window) % n]) / (n_window * h_s)


@njit(inline="always")
def rocof_relay_step(rocof_hz_per_s, timer_s, setting_hz_per_s, delay_s, dt_s):  # pragma: no cover - jitted
    """Advance a RoCoF relay by ``dt_s``; return ``(tripped, timer_s)``.

    The relay picks up while ``|RoCoF| > setting`` (``rocof_hz_per_s`` as measured over its window,
    :func:`rocof_window_hz_per_s`), counts the sub-steps it stays picked up (the sub-step in which it sees
    the excess counts, as in :func:`ufls_step`) and trips once that time reaches ``delay_s`` (0 trips at
    once); it resets when the RoCoF falls back below the setting. Settings: loss-of-mains practice of
    1 Hz/s after 0.5 s [P65], 0.5–1 Hz/s in medium systems [P38]; inverters' RoCoF ride-through
    of 5 Hz/s (IEEE 2800) [P63] or 0.5/2/3 Hz/s by IEEE 1547 category [P36].
    """
    if abs(rocof_hz_per_s) > setting_hz_per_s:
        t = timer_s + dt_s
        return t >= delay_s - 1e-9, t
    return False, 0.0


@njit
def ride_through_step(f_hz, timers_s, ctrl, base, n_band, over, dt_s):  # pragma: no cover - jitted
    """Advance the time-beyond-threshold integrators of one frequency ride-through curve by ``dt_s``.

    The curve is ``n_band`` bands ``(f_b, t_b)`` at ``ctrl[base + 2·b]``, ``ctrl[base + 2·b + 1]``
    (``t_b < 0``: no band; twin.plant ``CT_RT``): the unit must ride through as long as the frequency has
    not stayed below ``f_b`` (``over`` False: an under-frequency curve) or above it (``over`` True) for
    ``t_b`` without a break; band ``b``'s timer ``timers_s[b]`` counts the time beyond ``f_b`` (the sub-step
    in which it is seen counts) and resets when the frequency comes back. A stepped no-trip curve, as
    relays implement one: PRC-024 for synchronous units [P62], IEEE 2800 / PRC-029 for inverters [P63]
    [P64]; ``t_b = 0`` trips on the first sub-step beyond ``f_b``.

    Returns
    -------
    (int, int)
        The band that trips (−1: none) and the last band (bands go from the mildest to the most severe)
        that picked up on this sub-step (−1: none).
    """
    trip = -1
    pick = -1
    for b in range(n_band):
        t_max = ctrl[base + 2 * b + 1]
        if t_max < 0.0:
            continue
        f_b = ctrl[base + 2 * b]
        if (f_hz > f_b) if over else (f_hz < f_b):
            if timers_s[b] == 0.0:
                pick = b
            timers_s[b] += dt_s
            if timers_s[b] >= t_max - 1e-9 and trip < 0:
                trip = b
        else:
            timers_s[b] = 0.0
    return trip, pick


@njit(inline="always")
def ups_step(on, timer_s, bad, retransfer_s, dt_s):  # pragma: no cover - jitted
    """The UPS transfer state machine of an island's halls over ``dt_s``; returns ``(on, timer_s, changed)``.

    ``bad``: the UPS input is dark or its frequency is outside the input window. Normal → on battery at once
    when the input goes bad (a static transfer: within the sub-step); on battery → back to normal once the
    input has been healthy for ``retransfer_s`` (the timer restarts on every bad sub-step) — the state
    machine of docs/physics.md §2 without the dip counter (no voltage inside a segment) [E].
    """
    if not on:
        if bad:
            return True, 0.0, True
        return False, 0.0, False
    if bad:
        return True, 0.0, False
    t = timer_s + dt_s
    if t >= retransfer_s - 1e-9:
        return False, 0.0, True
    return True, t, False


@njit(inline="always")
def ups_served_fraction(on, shed, u_frac, dead_frac):  # pragma: no cover - jitted
    """``(served, drawn)``: fractions of an island's IT load served and drawn from the island.

    ``u_frac``: the share of the island's IT behind a UPS with energy left, ``dead_frac`` behind an empty
    one; ``shed``: the island's unserved fraction (:func:`island_shed_fraction`). Normal: the island serves
    and carries ``1 − shed``. On battery: UPS-backed IT is served from the UPS (not drawn), IT behind an
    empty UPS is lost, the rest is served by the island less its shedding.
    """
    if not on:
        return 1.0 - shed, 1.0 - shed
    rest = (1.0 - u_frac - dead_frac) * (1.0 - shed)
    return u_frac + rest, rest


@njit(inline="always")
def chiller_restart_step(left_s, live, dt_s):  # pragma: no cover - jitted
    """Time left before a chiller tripped by a dip restarts, after ``dt_s``: it counts down only while its
    island is live and healthy (``live``); restart times 2–10 min, rapid restart 1–3 min [P54]."""
    return left_s - dt_s if live else left_s


@njit
def ups_shares(par, st, it_hall):  # pragma: no cover - jitted
    """Per island, the share of its IT (this step's mean, ``it_hall[:, 0]``) behind a UPS with energy left
    (``SI_UPS_FRAC``) and behind an empty one (``SI_UPS_DEAD``), for :func:`ups_served_fraction`."""
    n_i = st.isl.shape[0]
    for i in range(n_i):
        st.isl[i, SI_UPS_FRAC] = 0.0
        st.isl[i, SI_UPS_DEAD] = 0.0
    tot = np.zeros(n_i)
    for hh in range(par.hall.shape[0]):
        i = int(par.hall[hh, HA_ISLAND])
        p = it_hall[hh, 0]
        tot[i] += p
        if par.hall[hh, HA_UPS_E_MWH] > 0.0:
            if st.hall[hh, SH_UPS_USED_MWH] < par.hall[hh, HA_UPS_E_MWH]:
                st.isl[i, SI_UPS_FRAC] += p
            else:
                st.isl[i, SI_UPS_DEAD] += p
    for i in range(n_i):
        if tot[i] > 0.0:
            st.isl[i, SI_UPS_FRAC] /= tot[i]
            st.isl[i, SI_UPS_DEAD] /= tot[i]


@njit
def ups_drain(par, st, it_hall, t_s, events, n_events):  # pragma: no cover - jitted
    """Each UPS pays for the IT it carried in the step: its hall's step-mean IT times the seconds its island
    was on battery (``SI_UPS_S``, counted on the sub-steps). A UPS that runs empty is logged
    (``ups-empty``, at the step's end ``t_s``); its hall is unserved from the next step until the island is
    healthy and the UPS has transferred back (an empty UPS is not recharged within a run [E])."""
    for hh in range(par.hall.shape[0]):
        e = par.hall[hh, HA_UPS_E_MWH]
        if e <= 0.0:
            continue
        i = int(par.hall[hh, HA_ISLAND])
        t_on = st.isl[i, SI_UPS_S]
        if t_on <= 0.0 or st.hall[hh, SH_UPS_USED_MWH] >= e:
            continue
        st.hall[hh, SH_UPS_USED_MWH] += it_hall[hh, 0] * t_on / 3600.0
        if st.hall[hh, SH_UPS_USED_MWH] >= e:
            log_event(events, n_events, t_s, EV_UPS_EMPTY, hh, i, 0.0)


@njit
def chiller_restarts(par, st, f_min_hz, dt_s, t_s, events, n_events):  # pragma: no cover - jitted
    """Count down the restart of every chiller a dip tripped (:func:`chiller_restart_step`: only while its
    island is live and its lowest frequency in the step stayed above the trip setting ``f_min_hz[i]``);
    restart those whose time is up (logged ``chiller-restart`` with the island's frequency). Returns how many
    are still down and whether any restarted."""
    down = 0
    restarted = False
    for c in range(par.chiller.shape[0]):
        left = st.chiller[c, SC_RESTART_S]
        if left <= 0.0:
            continue
        i = int(par.chiller[c, CH_ISLAND])
        live = st.isl[i, SI_BLACKOUT] < 0.5 and f_min_hz[i] >= par.ctrl[CT_CH_TRIP_HZ]
        left = chiller_restart_step(left, live, dt_s)
        if left <= 0.0:
            st.chiller[c, SC_RESTART_S] = 0.0
            restarted = True
            log_event(events, n_events, t_s, EV_CHILLER_RESTART, c, i, f_min_hz[i])
        else:
            st.chiller[c, SC_RESTART_S] = left
            down += 1
    return down, restarted
