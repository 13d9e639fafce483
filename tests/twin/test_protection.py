"""Protection (twin.protection): UFLS stages, anti-stall, GPU power capping."""

from __future__ import annotations

import numpy as np
import pytest

from twin import protection as pr

IMPLS = ["numba", "python"]


def impl(fn, which):
    return fn if which == "numba" else fn.py_func


def test_ercot_set_points_and_relief():
    assert list(pr.UFLS_HZ) == [59.3, 59.1, 58.9, 58.7, 58.5]
    assert list(pr.UFLS_RELIEF[:3]) == [0.05, 0.15, 0.25]
    assert np.all(np.diff(pr.UFLS_RELIEF) > 0)


@pytest.mark.parametrize("which", IMPLS)
@pytest.mark.parametrize("delay", [0.0, 0.2])
def test_ufls_trips_at_each_crossing(which, delay):
    """Frequency falling at 0.1 Hz/s from 60 Hz: stage s trips when f crosses its set point (+delay)."""
    step = impl(pr.ufls_step, which)
    timers = np.zeros(5)
    stage, h = 0, 0.01
    trip_t = {}
    for k in range(1, 2001):
        t = k * h
        f = 60.0 - 0.1 * t
        new = step(f, stage, timers, pr.UFLS_HZ, delay, h)
        for s in range(stage, new):
            trip_t[s] = t
        stage = new
    assert stage == 5
    for s, f_set in enumerate(pr.UFLS_HZ):
        assert trip_t[s] == pytest.approx((60.0 - f_set) / 0.1 + delay, abs=2 * h)
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
def test_anti_stall(which):
    f = impl(pr.anti_stall_step, which)
    out = np.zeros(2)
    timer = 0.0
    shed_at = []
    for k in range(200):
        f(59.45, timer, pr.ANTI_STALL_HZ, pr.ANTI_STALL_DELAY_S, pr.ANTI_STALL_RELIEF, 1.0, out)
        timer = out[0]
        shed_at.append(out[1])
    assert shed_at[88] == 0.0 and shed_at[89] == 0.015 and shed_at[119] == 0.03 and shed_at[149] == 0.045
    f(59.9, timer, pr.ANTI_STALL_HZ, pr.ANTI_STALL_DELAY_S, pr.ANTI_STALL_RELIEF, 1.0, out)
    assert out[0] == 0.0 and out[1] == 0.045  # shed load stays shed


@pytest.mark.parametrize("which", IMPLS)
def test_gpu_cap(which):
    f = impl(pr.gpu_cap_step, which)
    c = 1.0
    for _ in range(20):
        c = f(c, 59.6, 59.7, 59.9, 0.05, 0.01, 0.6, 1.0)
    assert c == 0.6
    assert f(c, 59.8, 59.7, 59.9, 0.05, 0.01, 0.6, 1.0) == 0.6  # hysteresis band holds
    assert f(c, 59.95, 59.7, 59.9, 0.05, 0.01, 0.6, 1.0) == pytest.approx(0.61)


@pytest.mark.parametrize("which", IMPLS)
def test_budget_cap_factor(which):
    f = impl(pr.budget_cap_factor, which)
    # hall: 10 MW static, 9 MW idle, 60 MW demand: a 49 MW budget leaves 30 of the 51 MW dynamic part
    c = f(49.0, 9.0, 60.0, 10.0)
    assert 10.0 + 9.0 + 51.0 * c == pytest.approx(49.0)
    assert f(100.0, 9.0, 60.0, 10.0) == 1.0 and f(15.0, 9.0, 60.0, 10.0) == 0.0
