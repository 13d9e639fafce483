"""BESS (twin.storage): SoC bookkeeping, limits and control modes against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin import storage as st

IMPLS = ["numba", "python"]


def impl(fn, which):
    return fn if which == "numba" else fn.py_func


E_MWH = 100 * st.MEGAPACK2XL_E_MWH  # 100 Megapacks
P_MW = 100 * 1.9  # 2 h configuration


@pytest.mark.parametrize("which", IMPLS)
def test_charge_discharge_cycle_energy(which):
    """(d) A cycle through bess_step at 1 s: SoC changes by ∫P with η_c = η_d = √RTE, within 0.1 %.

    Charge at P for T_c = 1 h: ΔSoC = η_c·P·T_c/E (closed form). Discharge at P until the SoC is back:
    the AC energy returned over the AC energy taken is RTE.
    """
    eta = st.efficiency_from_rte(0.90)
    step = impl(st.bess_step, which)
    out = np.empty(4)
    soc, p = 0.2, 0.0
    e_in = 0.0
    for _ in range(3600):
        step(soc, p, -P_MW, 0.0, E_MWH, eta, eta, 1.0, out)
        soc, p = out[0], out[1]
        e_in -= out[3]
    assert soc - 0.2 == pytest.approx(eta * P_MW * 1.0 / E_MWH, rel=1e-3)
    e_out = 0.0
    while soc > 0.2:
        step(soc, p, P_MW, 0.0, E_MWH, eta, eta, 1.0, out)
        soc, p = out[0], out[1]
        e_out += out[3]
    # the last step overshoots by less than one second of discharge
    e_out -= (0.2 - soc) * E_MWH * eta
    assert e_out / e_in == pytest.approx(0.90, rel=1e-3)


@pytest.mark.parametrize("which", IMPLS)
def test_lagged_step_energy_matches_fine_integration(which):
    """A 1 s step whose power crosses zero through its lag: energy split by sign vs 1e5-point quadrature."""
    eta_c, eta_d = 0.95, 0.94
    p0, pc, tau, dt = 30.0, -50.0, 0.4, 1.0
    out = np.empty(4)
    impl(st.bess_step, which)(0.5, p0, pc, tau, E_MWH, eta_c, eta_d, dt, out)
    t = np.linspace(0.0, dt, 100_001)
    pt = pc + (p0 - pc) * np.exp(-t / tau)
    e_dis = np.trapezoid(np.maximum(pt, 0.0), t) / 3600.0
    e_ch = np.trapezoid(np.minimum(pt, 0.0), t) / 3600.0
    assert out[1] == pytest.approx(pt[-1])
    assert out[3] == pytest.approx(e_dis + e_ch, rel=1e-6)
    assert out[0] == pytest.approx(0.5 - (e_dis / eta_d + e_ch * eta_c) / E_MWH, abs=1e-10)


@pytest.mark.parametrize("which", IMPLS)
def test_soc_step_signs(which):
    f = impl(st.soc_step, which)
    assert f(0.5, 10.0, 10.0, 0.95, 0.95, 3600.0) == pytest.approx(0.5 - 1.0 / 0.95)
    assert f(0.5, -10.0, 100.0, 0.95, 0.95, 360.0) == pytest.approx(0.5 + 0.1 * 0.95 / 10.0)


@pytest.mark.parametrize("which", IMPLS)
def test_soc_derate_over_last_five_percent(which):
    lim = impl(st.soc_power_limit_mw, which)
    assert lim(0.50, 0.05, 0.95, 100.0, True, 0.05) == 100.0
    assert lim(0.075, 0.05, 0.95, 100.0, True, 0.05) == pytest.approx(50.0)
    assert lim(0.05, 0.05, 0.95, 100.0, True, 0.05) == 0.0
    assert lim(0.94, 0.05, 0.95, 100.0, False, 0.05) == pytest.approx(20.0)
    assert lim(0.94, 0.05, 0.95, 100.0, True, 0.05) == 100.0


@pytest.mark.parametrize("which", IMPLS)
def test_droop_with_deadband(which):
    """1 % droop: a 0.6 Hz dip beyond the 0.036 Hz band asks (0.564/60)/0.01 = 0.94 pu."""
    d = impl(st.droop_response_mw, which)
    assert d(-0.03, 100.0, 0.01, 0.036, 60.0) == 0.0
    assert d(-0.6, 100.0, 0.01, 0.036, 60.0) == pytest.approx(100.0 * 0.564 / 60.0 / 0.01)
    assert d(0.2, 100.0, 0.01, 0.036, 60.0) == pytest.approx(-100.0 * 0.164 / 60.0 / 0.01)


@pytest.mark.parametrize("which", IMPLS)
def test_bess_power_limits(which):
    f = impl(st.bess_power_mw, which)
    # a deep dip saturates at the rating; near empty only the derated power is available
    assert f(0.0, -2.0, 0.0, 0.5, 100.0, 0.05, 0.95, 0.01, 0.036, 0.0, 1.0, 60.0) == 100.0
    assert f(0.0, -2.0, 0.0, 0.06, 100.0, 0.05, 0.95, 0.01, 0.036, 0.0, 1.0, 60.0) == pytest.approx(20.0)
    # virtual inertia: −2·H_v·P·RoCoF/f0 (H_v = 4 s, −0.3 Hz/s → +4 MW on 100 MW), no droop in the band
    assert f(0.0, 0.0, -0.3, 0.5, 100.0, 0.05, 0.95, 0.01, 0.036, 4.0, 1.2, 60.0) == pytest.approx(4.0)
    assert f(500.0, 0.0, 0.0, 0.5, 100.0, 0.05, 0.95, 0.01, 0.036, 4.0, 1.2, 60.0) == pytest.approx(120.0)


@pytest.mark.parametrize("which", IMPLS)
def test_smoothing_high_pass_of_a_step(which):
    """IT step of ΔP at t = 0 from a settled low-pass: P_smooth(t) = ΔP·e^(−t/τ) (first-order HPF)."""
    f = impl(st.smoothing_step, which)
    lpf, d_p, tau = 500.0, 80.0, 60.0
    for k in range(1, 181):
        lpf, ps = f(lpf, 500.0 + d_p, tau, 1.0)
        assert ps == pytest.approx(d_p * math.exp(-k / tau), rel=1e-9)


@pytest.mark.parametrize("which", IMPLS)
def test_import_cap_schedule(which):
    f = impl(st.import_cap_schedule_mw, which)
    assert f(400.0, 100.0, 250.0, 20.0) == 50.0  # discharge what exceeds the cap
    assert f(300.0, 100.0, 250.0, 20.0) == -20.0  # recharge gently from the headroom
    assert f(345.0, 100.0, 250.0, 20.0) == -5.0
