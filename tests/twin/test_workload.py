"""Workload (twin.workload): seeded utilisation profiles, the hall's IT on the sub-step grid, GPU power
smoothing and rack PSU storage, against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin import plant as pl
from twin import workload as wl
from twin.state import SH_HOLD_S, SH_NCOL, SH_P_GPU_W, SH_PSU_E_J, SH_PSU_P_W

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


def smooth_trace(which, work, floor_frac, tdp_w, r_up, r_dn, hyst_s, dt):
    """A per-GPU power trace through power_smoothing_step, called once per sample (from rest at the first)."""
    step = impl(wl.power_smoothing_step, which)
    out = np.empty_like(work)
    p, hold = max(work[0], floor_frac * tdp_w), hyst_s
    for k in range(work.size):
        p, hold = step(p, hold, work[k], floor_frac, tdp_w, r_up, r_dn, hyst_s, dt)
        out[k] = p
    return out


@pytest.mark.parametrize("which", IMPLS)
def test_power_smoothing_limits_swing(which):
    """A 2 s square wave 1200/150 W at 10 ms: rates within ±r, floor respected, swing reduced."""
    dt = 0.01
    t = np.arange(2000) * dt
    work = np.where((t % 2.0) < 1.4, 1200.0, 150.0)
    out = smooth_trace(which, work, 0.5, 1200.0, 2000.0, 300.0, 0.3, dt)
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


def test_kept_samples_average_to_the_per_second_mean():
    """keep_samples=True returns the internal samples (n_s, samples_per_s) as float32; their per-second
    mean, min and max are the profile's u_mean, u_min, u_max (to float32 rounding)."""
    prof = wl.utilisation_profile(900, seed=3, samples_per_s=20, jobs_s=[[100.0, 700.0]], ramp_s=3.0,
                                  checkpoint_interval_s=(300.0, 400.0), checkpoint_duration_s=(5.0, 30.0),
                                  chunk_s=250, keep_samples=True)
    assert prof.u_sub.shape == (900, 20) and prof.u_sub.dtype == np.float32
    np.testing.assert_allclose(prof.u_sub.astype(float).mean(axis=1), prof.u_mean, rtol=0, atol=1e-6)
    np.testing.assert_allclose(prof.u_sub.min(axis=1), prof.u_min, rtol=0, atol=1e-7)
    np.testing.assert_allclose(prof.u_sub.max(axis=1), prof.u_max, rtol=0, atol=1e-7)
    assert np.ptp(prof.u_sub[200:600]) > 0.5  # the samples carry the sub-second swing
    # the same seed without samples gives the same profile
    again = wl.utilisation_profile(900, seed=3, samples_per_s=20, jobs_s=[[100.0, 700.0]], ramp_s=3.0,
                                   checkpoint_interval_s=(300.0, 400.0), checkpoint_duration_s=(5.0, 30.0))
    assert again.u_sub is None
    np.testing.assert_array_equal(again.u_mean, prof.u_mean)


# ---- hall_it_substeps: a 1,000-GPU hall, 1.2 kW TDP, 0.3 MW flat rack power
N_GPU, TDP_KW, P_STATIC = 1000, 1.2, 0.3
P_IDLE = P_STATIC + N_GPU * 180e-6  # 15 % of TDP at idle: 0.48 MW
P_PEAK = P_STATIC + N_GPU * 1200e-6  # 1.5 MW


def ctrl_vector(smooth=None, psu=None):
    ct = np.zeros(pl.CT_NCOL)
    if smooth:
        ct[pl.CT_SMOOTH] = 1.0
        ct[pl.CT_SMOOTH_FLOOR], ct[pl.CT_SMOOTH_UP_PER_S] = smooth["floor"], smooth["up"]
        ct[pl.CT_SMOOTH_DOWN_PER_S], ct[pl.CT_SMOOTH_HYST_S] = smooth["down"], smooth["hyst"]
    if psu:
        ct[pl.CT_PSU], ct[pl.CT_PSU_TAU_S], ct[pl.CT_PSU_E_S] = 1.0, psu["tau"], psu["e_s"]
    return ct


@pytest.mark.parametrize("which", IMPLS)
def test_hall_it_without_filters_is_the_throttled_demand(which):
    """Smoothing and PSU off: P = P_idle + (P_demand − P_idle)·g on every sub-step, never negative; the
    hall's state row is left alone."""
    f = impl(wl.hall_it_substeps, which)
    demand = np.linspace(P_IDLE, P_PEAK, 20)
    row = np.zeros(SH_NCOL)
    out = np.empty(20)
    for g in (1.0, 0.6, 0.0):
        f(demand, g, P_IDLE, P_STATIC, N_GPU, TDP_KW, P_PEAK, row, ctrl_vector(), 0.05, out)
        np.testing.assert_allclose(out, P_IDLE + (demand - P_IDLE) * g, rtol=1e-12)
    assert np.all(row == 0.0)
    f(np.full(20, -5.0), 1.0, P_IDLE, P_STATIC, N_GPU, TDP_KW, P_PEAK, row, ctrl_vector(), 0.05, out)
    assert np.all(out == 0.0)


@pytest.mark.parametrize("which", IMPLS)
def test_hall_it_with_smoothing_step_up_and_down_closed_form(which):
    """GPU power smoothing on (floor 30 % TDP, up 10 %/s, down 5 %/s of TDP, hysteresis 0.5 s), 50 ms sub-steps.

    From idle (GPUs held at the 360 W floor) the demand steps to peak: each GPU ramps at 120 W/s, so
    P(t) = P_static + N·min(360 + 120·t, 1200) W, 7 s to peak. Then the demand drops to idle: the GPUs
    hold 0.5 s, then ramp down at 60 W/s to the floor, P(t) = P_static + N·max(1200 − 60·(t − 0.5), 360) W.
    """
    f = impl(wl.hall_it_substeps, which)
    ct = ctrl_vector(smooth=dict(floor=0.3, up=0.1, down=0.05, hyst=0.5))
    h, n_sub = 0.05, 20
    row = np.zeros(SH_NCOL)
    row[SH_P_GPU_W], row[SH_HOLD_S] = 360.0, 0.5  # settled at idle: on the floor
    out = np.empty(n_sub)
    got, t = [], []
    for k in range(10):  # 10 s at peak demand
        f(np.full(n_sub, P_PEAK), 1.0, P_IDLE, P_STATIC, N_GPU, TDP_KW, P_PEAK, row, ct, h, out)
        got.extend(out)
        t.extend(k + h * np.arange(1, n_sub + 1))
    t = np.array(t)
    np.testing.assert_allclose(got, P_STATIC + N_GPU * np.minimum(360.0 + 120.0 * t, 1200.0) * 1e-6, rtol=1e-9)
    got = []
    for _ in range(20):  # 20 s at idle demand
        f(np.full(n_sub, P_IDLE), 1.0, P_IDLE, P_STATIC, N_GPU, TDP_KW, P_PEAK, row, ct, h, out)
        got.extend(out)
    t = h * np.arange(1, 20 * n_sub + 1)
    ref = P_STATIC + N_GPU * np.maximum(1200.0 - 60.0 * np.maximum(t - 0.5, 0.0), 360.0) * 1e-6
    np.testing.assert_allclose(got, ref, rtol=1e-9)
    assert row[SH_P_GPU_W] == pytest.approx(360.0)


@pytest.mark.parametrize("which", IMPLS)
def test_hall_it_with_psu_storage_is_a_low_pass(which):
    """Rack PSU storage on (τ = 0.5 s, 2 s of peak power), half full: a demand step from idle to peak
    reaches the grid as the exact first-order low-pass, P(t) = P1 + (P0 − P1)·e^(−t/τ) (each sub-step's mean
    of it is reported, so the energy drawn from the grid is exact), while the store
    supplies the difference, (P1 − P0)·τ·(1 − e^(−t/τ)) in all."""
    f = impl(wl.hall_it_substeps, which)
    ct = ctrl_vector(psu=dict(tau=0.5, e_s=2.0))
    h, n_sub = 0.05, 20
    row = np.zeros(SH_NCOL)
    e0 = 0.5 * 2.0 * P_PEAK * 1e6
    row[SH_PSU_P_W], row[SH_PSU_E_J] = P_IDLE * 1e6, e0
    out = np.empty(n_sub)
    got = []
    for _ in range(3):
        f(np.full(n_sub, P_PEAK), 1.0, P_IDLE, P_STATIC, N_GPU, TDP_KW, P_PEAK, row, ct, h, out)
        got.extend(out)
    t = h * np.arange(1, 3 * n_sub + 1)
    # each sub-step reports the grid's mean power over it: the exact low-pass averaged over [t − h, t]
    mean = P_PEAK + (P_IDLE - P_PEAK) * 0.5 / h * (np.exp(-(t - h) / 0.5) - np.exp(-t / 0.5))
    np.testing.assert_allclose(got, mean, rtol=1e-9)
    drawn = (P_PEAK - P_IDLE) * 1e6 * 0.5 * (1.0 - math.exp(-3.0 / 0.5))
    assert e0 - row[SH_PSU_E_J] == pytest.approx(drawn, rel=1e-9)


@pytest.mark.parametrize("which", IMPLS)
def test_hall_demand_by_site(which):
    """P_idle + (P_compute − P_idle)·u of each hall's own site, on every step and sub-step."""
    f = impl(wl.hall_demand_mw, which)
    rng = np.random.default_rng(0)
    u = rng.uniform(0.0, 1.0, (2, 3, 4))  # 2 sites, 3 steps, 4 sub-steps
    site_of = np.array([1, 0, 1], dtype=np.int64)
    p_idle, p_comp = np.array([10.0, 20.0, 5.0]), np.array([50.0, 80.0, 25.0])
    out = np.empty((3, 4, 3))
    f(u, site_of, p_idle, p_comp, out)
    for hh in range(3):
        np.testing.assert_allclose(out[:, :, hh], p_idle[hh] + (p_comp[hh] - p_idle[hh]) * u[site_of[hh]], rtol=1e-12)
