"""TGOV1 governor kernel (twin.turbines.tgov1_*) against closed forms and scipy's LTI responses.

References are independent of the kernel: step responses of ``(1 + s·T2)/((1 + s·T1)(1 + s·T3))``
from ``scipy.signal`` (matrix exponential), the clamped-valve trajectory through the lead-lag by
``scipy.signal.lsim`` on a fine grid, and the droop line ``P_ref − Δω/R``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from twin import turbines as tb

IMPLS = ["numba", "python"]


def impl(fn, which):
    return fn if which == "numba" else fn.py_func


def run(which, par, p0, p_set, dw, n_s, h):
    """Pmech and valve after each sub-step; ``p_set``/``dw`` are scalars or functions of time."""
    x = np.zeros(tb.GX_NSTATE)
    tb.tgov1_init(x, par, p0)
    step = impl(tb.tgov1_step, which)
    n = int(round(n_s / h))
    pm, valve = np.empty(n), np.empty(n)
    for k in range(n):
        t = k * h
        ps = p_set(t) if callable(p_set) else p_set
        w = dw(t) if callable(dw) else dw
        pm[k] = step(x, par, ps, w, h)
        valve[k] = x[tb.TGX_VALVE]
    return pm, valve, np.arange(1, n + 1) * h


def lti_step(t1, t2, t3, t):
    """Unit step response of (1 + s·T2)/((1 + s·T1)(1 + s·T3)) at times t (scipy, independent)."""
    sys = signal.lti(np.trim_zeros([t2, 1.0], "f"), np.polymul([t1, 1.0], [t3, 1.0]))
    _, y = signal.step(sys, T=np.concatenate([[0.0], t]))
    return y[1:]


@pytest.mark.parametrize("which", IMPLS)
def test_params_layout_fits_a_governor_row(which):
    par = tb.tgov1_params(0.04, 0.5, 1.0, 5.0, 0.1, 1.0, 0.2)
    assert par.shape == (tb.GG_NPAR,)
    assert [par[i] for i in (tb.TG_R, tb.TG_T1, tb.TG_T2, tb.TG_T3, tb.TG_DT, tb.TG_VMAX, tb.TG_VMIN)] == [
        0.04, 0.5, 1.0, 5.0, 0.1, 1.0, 0.2]
    assert np.all(np.delete(par, [tb.GG_DB_PU, tb.GG_HSUB])[7:] == 0.0) and par[tb.GG_DB_PU] == 0.0
    # state slots are distinct and Pmech sits where the GGOV1 state keeps it
    assert len({tb.TGX_VALVE, tb.TGX_LL, tb.GX_PMECH}) == 3
    assert max(tb.TGX_VALVE, tb.TGX_LL, tb.GX_PMECH) < tb.GX_NSTATE


@pytest.mark.parametrize("which", IMPLS)
def test_init_is_steady(which):
    par = tb.tgov1_params(0.05, 0.5, 1.0, 5.0, 0.3, 1.1, 0.0)
    pm, valve, _ = run(which, par, 0.7, 0.7, 0.0, 20.0, 0.05)
    assert np.max(np.abs(pm - 0.7)) < 1e-14 and np.max(np.abs(valve - 0.7)) < 1e-14


@pytest.mark.parametrize("which", IMPLS)
@pytest.mark.parametrize("t1, t2, t3", [(0.5, 1.0, 5.0), (0.1, 0.2, 10.0), (2.0, 0.0, 0.5), (0.8, 3.0, 0.8)])
@pytest.mark.parametrize("h", [0.05, 0.0137])
def test_setpoint_step_is_exact_lag_leadlag(which, t1, t2, t3, h):
    """A held reference step: Pmech(t) = p0 + ΔP·step{(1+sT2)/((1+sT1)(1+sT3))}, exact for any sub-step.

    (0.8, 3.0, 0.8) is the repeated pole T1 = T3 (t·e^(−t/T) term); (2.0, 0.0, 0.5) a pure two-lag.
    """
    par = tb.tgov1_params(0.05, t1, t2, t3, 0.0, 10.0, -10.0)
    d_p = 0.25
    pm, valve, t = run(which, par, 0.5, 0.5 + d_p, 0.0, 15.0, h)
    np.testing.assert_allclose(pm, 0.5 + d_p * lti_step(t1, t2, t3, t), atol=1e-9)
    np.testing.assert_allclose(valve, 0.5 + d_p * (1.0 - np.exp(-t / t1)), atol=1e-12)


@pytest.mark.parametrize("which", IMPLS)
def test_speed_step_droop_and_damping(which):
    """Δω step: Pmech = p0 − Δω/R·step(TF) − Dt·Δω (the damping term acts at once)."""
    r, dt = 0.04, 0.5
    par = tb.tgov1_params(r, 0.3, 1.5, 6.0, dt, 10.0, -10.0)
    dw = -0.2 / 60.0
    pm, _, t = run(which, par, 0.6, 0.6, dw, 40.0, 0.05)
    expected = 0.6 - dw / r * lti_step(0.3, 1.5, 6.0, t) - dt * dw
    np.testing.assert_allclose(pm, expected, atol=1e-9)


@pytest.mark.parametrize("which", IMPLS)
@pytest.mark.parametrize("p_set, dw, dt", [(0.6, -0.15 / 60.0, 0.0), (0.6, 0.3 / 60.0, 0.2), (0.95, -0.5 / 60.0, 0.0),
                                           (0.3, 0.9 / 60.0, 0.1)])
def test_steady_state_droop_line_within_limits(which, p_set, dw, dt):
    """After many T3: Pmech = clamp(P_ref − Δω/R, Vmin, Vmax) − Dt·Δω (4 % droop; last two hit a limit)."""
    r, vmax, vmin = 0.04, 1.0, 0.1
    par = tb.tgov1_params(r, 0.5, 1.0, 5.0, dt, vmax, vmin)
    pm, _, _ = run(which, par, 0.6, p_set, dw, 120.0, 0.05)
    expected = min(max(p_set - dw / r, vmin), vmax) - dt * dw
    assert pm[-1] == pytest.approx(expected, abs=1e-9)


def clamped_reference(t, p0, u_of_t, t1, t2, t3, vmax, vmin):
    """Independent reference on a fine grid: the anti-windup valve by its closed form per segment of
    constant input, then the lead-lag by scipy's lsim (linear interpolation, dt = 1e-4 s)."""
    tf = np.arange(0.0, t[-1] + 1e-9, 1e-4)
    y = np.empty_like(tf)
    y[0] = p0
    for k in range(1, tf.size):
        u = u_of_t(tf[k - 1])
        v = u + (y[k - 1] - u) * np.exp(-(tf[k] - tf[k - 1]) / t1)
        y[k] = min(max(v, vmin), vmax)
    sys = signal.lti([t2, 1.0], [t3, 1.0])
    _, out, _ = signal.lsim(sys, y - p0, tf)
    return np.interp(t, tf, y), p0 + np.interp(t, tf, out)


@pytest.mark.parametrize("which", IMPLS)
def test_valve_limit_and_anti_windup(which):
    """Reference pushed far above Vmax for 4 s, then back to the start.

    The valve stops at Vmax exactly (never beyond) and, with ANDES's anti-windup, leaves it on the
    first sub-step after the input turns back (a wound-up integrator would sit at the limit for
    seconds); through the lead-lag, Pmech follows the clamped valve.
    """
    t1, t2, t3, vmax, vmin = 0.5, 1.0, 3.0, 0.9, 0.2
    par = tb.tgov1_params(0.05, t1, t2, t3, 0.0, vmax, vmin)
    h = 0.05

    def u_of_t(t):
        return 2.0 if t < 4.0 - 1e-9 else 0.5

    pm, valve, t = run(which, par, 0.5, u_of_t, 0.0, 12.0, h)
    assert valve.max() == vmax
    t_hit = -t1 * np.log((vmax - 2.0) / (0.5 - 2.0))  # valve reaches Vmax at 0.56 s
    assert np.all(valve[t <= t_hit - 1e-9] < vmax) and np.all(valve[(t >= t_hit + h) & (t <= 4.0)] == vmax)
    k4 = int(round(4.0 / h))  # first sub-step after the release (ends at 4.05 s)
    assert valve[k4] == pytest.approx(0.5 + (vmax - 0.5) * np.exp(-h / t1), abs=1e-12)
    ref_valve, ref_pm = clamped_reference(t, 0.5, u_of_t, t1, t2, t3, vmax, vmin)
    np.testing.assert_allclose(valve, ref_valve, atol=1e-9)
    np.testing.assert_allclose(pm, ref_pm, atol=2e-5)


@pytest.mark.parametrize("which", IMPLS)
def test_lower_limit_on_overspeed(which):
    """Over-speed of 1 Hz at 4 % droop asks −0.42 pu: the valve sits at Vmin, Pmech settles there."""
    t1, t2, t3, vmin = 0.2, 0.5, 2.0, 0.15
    par = tb.tgov1_params(0.04, t1, t2, t3, 0.0, 1.0, vmin)
    dw = 1.0 / 60.0
    pm, valve, t = run(which, par, 0.0 + 0.4, 0.4, dw, 20.0, 0.02)
    assert valve.min() == vmin and np.all(valve >= vmin)
    ref_valve, ref_pm = clamped_reference(t, 0.4, lambda _t: 0.4 - dw / 0.04, t1, t2, t3, 1.0, vmin)
    np.testing.assert_allclose(pm, ref_pm, atol=2e-5)
    assert pm[-1] == pytest.approx(vmin, abs=1e-4)


@pytest.mark.parametrize("which", IMPLS)
def test_no_lag_and_bypassed_leadlag(which):
    """T1 = 0: the valve is the clamped input; T3 = 0: the lead-lag is bypassed (gain 1, as ANDES)."""
    par = tb.tgov1_params(0.05, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0)
    pm, valve, _ = run(which, par, 0.5, 0.7, 0.0, 1.0, 0.05)
    assert np.all(pm == 0.7) and np.all(valve == 0.7)
    pm, _, _ = run(which, par, 0.5, 1.4, 0.0, 1.0, 0.05)
    assert np.all(pm == 1.0)
    par = tb.tgov1_params(0.05, 0.0, 2.0, 4.0, 0.0, 1.0, 0.0)  # algebraic valve, lead-lag on its step
    pm, _, t = run(which, par, 0.5, 0.7, 0.0, 10.0, 0.05)
    np.testing.assert_allclose(pm, 0.7 - 0.2 * (1 - 2.0 / 4.0) * np.exp(-t / 4.0), atol=1e-12)


@pytest.mark.parametrize("which", IMPLS)
def test_speed_deadband_is_non_step(which):
    """TGOV1DB: inside ±0.036 Hz nothing moves; beyond it droop and Dt act on Δω − db (no step at the edge)."""
    r, dt, db_hz = 0.04, 0.5, 0.036
    par = tb.tgov1_params(r, 0.3, 1.5, 6.0, dt, 10.0, -10.0, deadband_hz=db_hz)
    assert par[tb.GG_DB_PU] == pytest.approx(db_hz / 60.0)
    pm, _, _ = run(which, par, 0.6, 0.6, -0.03 / 60.0, 5.0, 0.05)
    assert np.all(pm == 0.6)
    dw = -0.2 / 60.0
    dwd = dw + db_hz / 60.0
    pm, _, t = run(which, par, 0.6, 0.6, dw, 40.0, 0.05)
    np.testing.assert_allclose(pm, 0.6 - dwd / r * lti_step(0.3, 1.5, 6.0, t) - dt * dwd, atol=1e-9)
    f = impl(tb.speed_deadband, which)
    assert [f(x, 0.1) for x in (0.05, -0.1, 0.3, -0.25)] == pytest.approx([0.0, 0.0, 0.2, -0.15])
