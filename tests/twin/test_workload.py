"""Workload (twin.workload): seeded utilisation profiles, IT power, GPU power-smoothing filters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin import workload as wl

IMPLS = ["numba", "python"]
NO_CKPT = dict(checkpoint_interval_s=(1e9, 1e9))


def impl(fn, which):
    return fn if which == "numba" else fn.py_func


@pytest.fixture(scope="module")
def day():
    return wl.utilisation_profile(6 * 3600, seed=7)


def test_seeded_reproducibility(day):
    again = wl.utilisation_profile(6 * 3600, seed=7)
    for a, b in zip(day, again):
        np.testing.assert_array_equal(a, b)
    other = wl.utilisation_profile(6 * 3600, seed=8)
    assert not np.array_equal(day.u_mean, other.u_mean)


def test_envelope_and_bounds(day):
    assert np.all(day.u_min <= day.u_mean + 1e-12) and np.all(day.u_mean <= day.u_max + 1e-12)
    assert day.u_min.min() >= 0.0 and day.u_max.max() <= 1.0
    # sub-second swings are carried as an envelope: most seconds see both phases or are inside one
    swing = day.u_max - day.u_min
    assert np.mean(swing > 0.5) > 0.1


def test_long_run_mean_within_model_bounds(day):
    """Mean u = (1 − f_ck)·(duty·u_compute + (1 − duty)·u_comm) + f_ck·u_ckpt, f_ck = E[dur]/E[gap].

    Defaults: duty 0.7, u 1.0/0.1 ⇒ 0.73 outside checkpoints; f_ck = 62.5/2100 ≈ 3 %. Six hours hold
    ≈10 checkpoints, so allow ±0.02 for their random number and length.
    """
    sq = 0.7 * 1.0 + 0.3 * 0.1
    f_ck = 62.5 / 2100.0
    assert day.u_mean.mean() == pytest.approx((1 - f_ck) * sq, abs=0.02)
    no_ck = wl.utilisation_profile(3 * 3600, seed=1, **NO_CKPT)
    assert no_ck.u_mean.mean() == pytest.approx(sq, abs=0.01)
    assert no_ck.u_max.max() == 1.0 and no_ck.u_min.min() == pytest.approx(0.1)


def test_checkpoint_dips_present(day):
    """Whole seconds at u = 0 come in runs of 5–120 s (minus partial seconds), 10–60 min apart."""
    dip = day.u_max <= 1e-12
    edges = np.flatnonzero(np.diff(np.concatenate(([0], dip.astype(int), [0]))))
    starts, stops = edges[::2], edges[1::2]
    lengths = stops - starts
    assert len(starts) >= 5
    assert lengths.min() >= 5 - 2 and lengths.max() <= 120
    gaps = np.diff(starts)
    assert gaps.min() >= 600 - 2 and gaps.max() <= 3600 + 120


def test_per_second_mean_matches_exact_square_wave():
    """Fixed 2.5 s period, no jitter: per-second mean vs the exact overlap of [k, k+1) with compute phases.

    Iterations start at t = −1 s (a job running throughout); compute lasts 0.7·2.5 s. Sampling at 50/s
    misplaces each edge by at most half a sample (0.01 s), so |error| ≤ 0.02·(u_compute − u_comm).
    """
    n = 600
    prof = wl.utilisation_profile(n, seed=0, period_s=(2.5, 2.5), jitter=0.0, **NO_CKPT)
    starts = -1.0 + 2.5 * np.arange(n)
    exact = np.empty(n)
    for k in range(n):
        on = np.clip(np.minimum(starts + 1.75, k + 1) - np.maximum(starts, k), 0, None).sum()
        exact[k] = 0.1 + 0.9 * on
    err = np.max(np.abs(prof.u_mean - exact))
    assert err <= 0.02 * 0.9 + 1e-12


def test_job_start_stop_ramps():
    prof = wl.utilisation_profile(400, seed=2, jobs_s=[[100.0, 250.0]], ramp_s=4.0, **NO_CKPT)
    assert np.all(prof.u_max[:100] == 0.0) and np.all(prof.u_max[254:] == 0.0)
    assert prof.u_max[100] <= 0.25 + 1e-9  # ramping: at most 1 s of a 4 s ramp
    assert prof.u_max[110:240].max() == 1.0


def test_inference_daily_shape():
    """Inference only: u(t) = m·(1 + A·cos(2π(h − h_peak)/24)), per-second means of the cosine."""
    prof = wl.utilisation_profile(86400, seed=0, inference_share=1.0, samples_per_s=2, **NO_CKPT)
    hours = (np.arange(86400) + 0.5) / 3600.0
    ref = 0.6 * (1.0 + 0.3 * np.cos(2 * np.pi * (hours - 15.0) / 24.0))
    assert np.max(np.abs(prof.u_mean - ref)) < 1e-4
    assert np.argmax(prof.u_mean) // 3600 in (14, 15)


@pytest.mark.parametrize("which", IMPLS)
def test_it_power_formula_and_bounds(which, day):
    """P_IT = N·[P_idle + (P_peak − P_idle)·u·g_T] + P_static: bounded by all-idle and all-peak."""
    f = impl(wl.it_power_mw, which)
    n = 100_000
    p_idle = wl.IDLE_FRAC * wl.GB200_TDP_W
    p_st = wl.static_power_mw(n)
    assert p_st == pytest.approx(0.25 / 0.75 * n * 1200e-6)  # static = 25 % of rack peak
    p = np.array([f(u, n, p_idle, wl.GB200_TDP_W, 1.0, p_st) for u in day.u_mean[:2000]])
    lo, hi = n * p_idle * 1e-6 + p_st, n * wl.GB200_TDP_W * 1e-6 + p_st
    assert np.all(p >= lo - 1e-9) and np.all(p <= hi + 1e-9)
    assert f(1.0, n, p_idle, wl.GB200_TDP_W, 1.0, p_st) == pytest.approx(hi)
    assert f(1.0, n, p_idle, wl.GB200_TDP_W, 0.6, 0.0) == pytest.approx(n * (180 + 1020 * 0.6) * 1e-6)


@pytest.mark.parametrize("which", IMPLS)
def test_power_smoothing_step_down_energy_closed_form(which):
    """One drop from TDP to idle: hold h, ramp at r_dn to the floor, stay there.

    Energy above the workload over T: (P0 − Pw)·h + (P0 − Pf)²/(2·r_dn) + (Pf − Pw)·(T − h),
    with P0 = 1200 W, Pw = 150 W, floor Pf = 720 W (60 % TDP), h = 0.5 s, r_dn = 400 W/s, T = 5 s.
    """
    dt, t_end = 0.001, 5.0
    n = int(round(t_end / dt))
    work = np.full(n, 150.0)
    out = np.empty(n)
    p, hold = 1200.0, 0.5
    step = impl(wl.power_smoothing_step, which)
    for k in range(n):
        p, hold = step(p, hold, work[k], 0.6, 1200.0, 1000.0, 400.0, 0.5, dt)
        out[k] = p
    # trapezoid over the step ends (each step's value is at its end): integrate from t = 0 with P(0) = 1200
    cost = np.trapezoid(np.concatenate(([1200.0], out)) - 150.0, dx=dt)
    ref = 1050.0 * 0.5 + 480.0 ** 2 / (2 * 400.0) + 570.0 * (t_end - 0.5)
    assert cost == pytest.approx(ref, rel=1e-3)
    assert out.min() == pytest.approx(720.0)


@pytest.mark.parametrize("which", IMPLS)
def test_power_smoothing_limits_swing(which):
    """A 2 s square wave 1200/150 W at 10 ms: rates within ±r, floor respected, swing reduced."""
    dt = 0.01
    t = np.arange(2000) * dt
    work = np.where((t % 2.0) < 1.4, 1200.0, 150.0)
    out = np.empty_like(work)
    impl(wl.power_smoothing, which)(work, 0.5, 1200.0, 2000.0, 300.0, 0.3, dt, out)
    rate = np.diff(out) / dt
    assert rate.max() <= 2000.0 + 1e-6 and rate.min() >= -300.0 - 1e-6
    assert out.min() >= 600.0 - 1e-9
    assert out[500:].max() - out[500:].min() < 0.35 * (1200.0 - 150.0)
    assert np.all(out >= np.maximum(work, 600.0) - 300.0 * 2.0)  # never far below the command


@pytest.mark.parametrize("which", IMPLS)
def test_psu_storage(which):
    """Rack step with ample storage: the grid side is the exact first-order low-pass; energy is conserved."""
    f = impl(wl.psu_storage_step, which)
    tau, dt = 0.5, 0.05
    pg, e, e0 = 100e3, 300e3, 300e3
    grid_energy = 0.0
    for k in range(1, 41):
        pg_old, e_old = pg, e
        pg, e = f(pg, e, 130e3, tau, 600e3, dt)
        assert pg == pytest.approx(130e3 - 30e3 * math.exp(-k * dt / tau), rel=1e-9)
        grid_energy += 130e3 * dt + (e - e_old)
    assert grid_energy == pytest.approx(130e3 * 40 * dt + (e - e0))
    assert 0.0 <= e < e0
    # an empty store cannot help: the grid follows the rack
    pg, e = f(100e3, 0.0, 130e3, tau, 600e3, dt)
    assert e == 0.0 and pg == pytest.approx(130e3)
