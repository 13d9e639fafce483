"""Protection (twin.protection): UFLS stages and restoration, relay RoCoF windows, GPU power capping.

The engine runs :func:`ufls_step` and :func:`rocof_window_hz_per_s` on the frequency sub-steps
(twin.frequency.island_step) and :func:`ufls_restore_step` and :func:`gpu_cap_step` once per step
(twin.stepping ``_slow_controls``).
"""

from __future__ import annotations

import numpy as np
import pytest

from twin import protection as pr
from twin.state import RING_N

IMPLS = ["numba", "python"]


def impl(fn, which):
    return fn if which == "numba" else fn.py_func


def test_ercot_set_points_relief_and_relay_constants():
    assert list(pr.UFLS_HZ) == [59.3, 59.1, 58.9, 58.7, 58.5]
    assert list(pr.UFLS_RELIEF[:3]) == [0.05, 0.15, 0.25]
    assert np.all(np.diff(pr.UFLS_RELIEF) > 0)
    assert pr.UFLS_DELAY_S == pytest.approx(6 / 60.0)  # six cycles at 60 Hz (NOGRR 247)
    assert pr.BLACKOUT_HZ < pr.UFLS_HZ[-1] and pr.RESTORE_HZ > pr.UFLS_HZ[0]
    assert pr.ROCOF_SHORT_S < pr.ROCOF_LONG_S
    # the engine's 50 ms sub-steps: the long window fits in the frequency ring
    assert round(pr.ROCOF_LONG_S / 0.05) < RING_N


@pytest.mark.parametrize("which", IMPLS)
@pytest.mark.parametrize("delay", [0.0, pr.UFLS_DELAY_S, 0.2])
@pytest.mark.parametrize("h", [0.02, 0.05])
def test_ufls_trips_at_each_crossing(which, delay, h):
    """Frequency falling at 0.1 Hz/s from 60 Hz: stage s trips when f crosses its set point, + the delay,
    within a sub-step (the relay sees the sub-step frequency)."""
    step = impl(pr.ufls_step, which)
    timers = np.zeros(5)
    stage = 0
    trip_t = {}
    for k in range(1, int(round(20.0 / h)) + 1):
        t = k * h
        f = 60.0 - 0.1 * t
        new = step(f, stage, timers, pr.UFLS_HZ, delay, h)
        for s in range(stage, new):
            trip_t[s] = t
        stage = new
    assert stage == 5
    for s, f_set in enumerate(pr.UFLS_HZ):
        assert trip_t[s] == pytest.approx((60.0 - f_set) / 0.1 + delay, abs=h + 1e-9)
    assert pr.ufls_shed_fraction.py_func(3, pr.UFLS_RELIEF) == 0.25
    assert pr.ufls_shed_fraction(0, pr.UFLS_RELIEF) == 0.0


@pytest.mark.parametrize("which", IMPLS)
def test_ufls_timer_resets_on_recovery(which):
    step = impl(pr.ufls_step, which)
    timers = np.zeros(5)
    st = step(59.25, 0, timers, pr.UFLS_HZ, 0.5, 0.3)
    assert st == 0 and timers[0] == pytest.approx(0.3)
    st = step(59.4, st, timers, pr.UFLS_HZ, 0.5, 0.3)
    assert st == 0 and timers[0] == 0.0


@pytest.mark.parametrize("which", IMPLS)
def test_ufls_deep_fall_trips_stages_in_order(which):
    """A sudden fall to 58.6 Hz: every stage above picks up at once; with the delay they all trip together
    once it has run (stages in order, never past the frequency), and tripped stages stay tripped."""
    step = impl(pr.ufls_step, which)
    timers = np.zeros(5)
    st = step(58.6, 0, timers, pr.UFLS_HZ, 0.1, 0.05)
    assert st == 0 and np.allclose(timers[:4], 0.05) and timers[4] == 0.0
    st = step(58.6, st, timers, pr.UFLS_HZ, 0.1, 0.05)
    assert st == 4  # 59.3/59.1/58.9/58.7 tripped; 58.5 not reached
    st = step(59.9, st, timers, pr.UFLS_HZ, 0.1, 0.05)
    assert st == 4 and timers[4] == 0.0


@pytest.mark.parametrize("which", IMPLS)
def test_ufls_restore(which):
    """A shed stage comes back after RESTORE_S with the step's lowest frequency above RESTORE_HZ, if the
    reserve covers the load it brings back, (relief[s] − relief[s−1])·IT: by hand, stage 2 of 500 MW IT
    brings back (0.15 − 0.05)·500 = 50 MW, stage 1 0.05·500 = 25 MW."""
    f = impl(pr.ufls_restore_step, which)
    above, below = pr.RESTORE_HZ + 0.02, pr.RESTORE_HZ - 0.01
    assert f(0, 12.0, 60.0, 100.0, 500.0, pr.UFLS_RELIEF, 1.0) == (0, 0.0)  # nothing shed: nothing to do
    stage, timer = 2, 0.0
    for _ in range(int(pr.RESTORE_S) - 1):
        stage, timer = f(stage, timer, above, 60.0, 500.0, pr.UFLS_RELIEF, 1.0)
        assert stage == 2
    assert timer == pytest.approx(pr.RESTORE_S - 1.0)
    stage, timer = f(stage, timer, above, 60.0, 500.0, pr.UFLS_RELIEF, 1.0)
    assert (stage, timer) == (1, 0.0)  # one stage per restore
    # a dip below the restore frequency restarts the timer
    assert f(1, 250.0, below, 60.0, 500.0, pr.UFLS_RELIEF, 1.0) == (1, 0.0)
    # reserve short of the load the stage brings back: the stage stays shed, the timer keeps counting
    assert f(2, 400.0, above, 49.0, 500.0, pr.UFLS_RELIEF, 1.0) == (2, 401.0)
    assert f(2, 400.0, above, 51.0, 500.0, pr.UFLS_RELIEF, 1.0) == (1, 0.0)
    assert f(1, 400.0, above, 24.0, 500.0, pr.UFLS_RELIEF, 1.0) == (1, 401.0)
    assert f(1, 400.0, above, 26.0, 500.0, pr.UFLS_RELIEF, 1.0) == (0, 0.0)


@pytest.mark.parametrize("which", IMPLS)
def test_rocof_window_is_the_slope_over_the_window(which):
    """A ring of sub-step frequencies: a ramp of −0.5 Hz/s gives −0.5 over any window, across the ring's
    wrap-around; a 0.1 Hz step seen by 100 ms and 500 ms windows gives 1.0 and 0.2 Hz/s."""
    f = impl(pr.rocof_window_hz_per_s, which)
    h = 0.02
    ring = np.full(RING_N, 60.0)
    for pos in range(3 * RING_N):
        ring[pos % RING_N] = 60.0 - 0.5 * pos * h
        if pos >= 25:
            assert f(ring, pos, 5, h) == pytest.approx(-0.5, rel=1e-9)
            assert f(ring, pos, 25, h) == pytest.approx(-0.5, rel=1e-9)
    ring = np.full(RING_N, 60.0)
    for pos in range(34):
        ring[pos % RING_N] = 60.0 if pos < 30 else 59.9
    assert f(ring, 33, 5, h) == pytest.approx(-0.1 / 0.1)  # the step inside the 100 ms window
    assert f(ring, 33, 25, h) == pytest.approx(-0.1 / 0.5)
    ring[34] = ring[35] = 59.9
    assert f(ring, 34, 5, h) == pytest.approx(-1.0)  # five windows see it…
    assert f(ring, 35, 5, h) == 0.0  # …and the sixth no longer


@pytest.mark.parametrize("which", IMPLS)
def test_gpu_cap(which):
    f = impl(pr.gpu_cap_step, which)
    c = 1.0
    for _ in range(20):
        c = f(c, 59.6, 59.7, 59.9, 0.05, 0.01, 0.6, 1.0)
    assert c == 0.6
    assert f(c, 59.8, 59.7, 59.9, 0.05, 0.01, 0.6, 1.0) == 0.6  # hysteresis band holds
    assert f(c, 59.95, 59.7, 59.9, 0.05, 0.01, 0.6, 1.0) == pytest.approx(0.61)
    assert f(0.995, 59.95, 59.7, 59.9, 0.05, 0.01, 0.6, 1.0) == 1.0
    assert f(1.0, 59.6) == pytest.approx(1.0 - pr.CAP_DOWN_PER_S)  # the documented defaults
