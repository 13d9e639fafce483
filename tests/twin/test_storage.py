"""BESS (twin.storage): SoC bookkeeping, limits, control modes and the response lag against closed forms.

The engine runs :func:`bess_substep_mw` (command through the response lag) and :func:`soc_step` on every
sub-step (twin.frequency.island_step), and the schedules (:func:`smoothing_step`,
:func:`import_cap_schedule_mw`) once per step (twin.dispatch.pms_step).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin import plant as pl
from twin import storage as st

IMPLS = ["numba", "python"]


def impl(fn, which):
    return fn if which == "numba" else fn.py_func


E_MWH = 100 * st.MEGAPACK2XL_E_MWH  # 100 Megapacks
P_MW = 100 * 1.9  # 2 h configuration


def yard_row(p_mw=100.0, droop=0.01, deadband=0.036, gfm=False, response_s=0.2, soc_min=0.05, soc_max=0.95):
    """A battery's parameter row (twin.plant ``BE_*``)."""
    row = np.zeros(pl.BE_NCOL)
    row[pl.BE_P_MW], row[pl.BE_E_MWH], row[pl.BE_ETA_C], row[pl.BE_ETA_D] = p_mw, 2.0 * p_mw, 0.95, 0.95
    row[pl.BE_SOC_MIN], row[pl.BE_SOC_MAX], row[pl.BE_SOC0], row[pl.BE_DROOP] = soc_min, soc_max, 0.5, droop
    row[pl.BE_RESPONSE_S], row[pl.BE_DEADBAND_HZ], row[pl.BE_GFM] = response_s, deadband, 1.0 if gfm else 0.0
    return row


@pytest.mark.parametrize("which", IMPLS)
def test_soc_step_signs(which):
    f = impl(st.soc_step, which)
    # discharging 10 MW for 1 h from a 10 MWh battery takes 1/η_d of its energy
    assert f(0.5, 10.0, 10.0, 0.95, 0.90, 3600.0) == pytest.approx(0.5 - 1.0 / 0.90)
    # charging 10 MW for 0.1 h into 100 MWh stores η_c of it
    assert f(0.5, -10.0, 100.0, 0.95, 0.90, 360.0) == pytest.approx(0.5 + 0.1 * 0.95 / 10.0)
    assert f(0.5, 0.0, 100.0, 0.95, 0.90, 360.0) == 0.5


@pytest.mark.parametrize("which", IMPLS)
def test_charge_discharge_cycle_energy(which):
    """(d) A cycle through soc_step at 1 s with separate η_c = 0.95, η_d = 0.94.

    Charge at P for 1 h: ΔSoC = η_c·P·1 h/E (closed form). Discharge at P until the SoC is back: the AC
    energy returned over the AC energy taken is η_c·η_d (the round-trip efficiency), within 1e-3.
    """
    eta_c, eta_d = 0.95, 0.94
    step = impl(st.soc_step, which)
    soc, e_in = 0.2, 0.0
    for _ in range(3600):
        soc = step(soc, -P_MW, E_MWH, eta_c, eta_d, 1.0)
        e_in += P_MW / 3600.0
    assert soc - 0.2 == pytest.approx(eta_c * P_MW * 1.0 / E_MWH, rel=1e-9)
    e_out, n = 0.0, 0
    while soc > 0.2:
        soc = step(soc, P_MW, E_MWH, eta_c, eta_d, 1.0)
        e_out += P_MW / 3600.0
        n += 1
    e_out -= (0.2 - soc) * E_MWH * eta_d  # the last second overshoots: give its excess back
    assert e_out / e_in == pytest.approx(eta_c * eta_d, rel=1e-6)
    assert n == math.ceil(3600 * eta_c * eta_d - 1e-9)


def test_efficiency_from_rte():
    assert st.efficiency_from_rte(0.81) == pytest.approx(0.9)
    assert st.efficiency_from_rte(st.RTE_DEFAULT) ** 2 == pytest.approx(0.90)


@pytest.mark.parametrize("which", IMPLS)
def test_soc_derate_over_last_five_percent(which):
    lim = impl(st.soc_power_limit_mw, which)
    assert lim(0.50, 0.05, 0.95, 100.0, True, 0.05) == 100.0
    assert lim(0.075, 0.05, 0.95, 100.0, True, 0.05) == pytest.approx(50.0)
    assert lim(0.05, 0.05, 0.95, 100.0, True, 0.05) == 0.0
    assert lim(0.01, 0.05, 0.95, 100.0, True, 0.05) == 0.0
    assert lim(0.94, 0.05, 0.95, 100.0, False, 0.05) == pytest.approx(20.0)
    assert lim(0.94, 0.05, 0.95, 100.0, True, 0.05) == 100.0


@pytest.mark.parametrize("which", IMPLS)
def test_droop_with_deadband(which):
    """1 % droop: a 0.6 Hz dip beyond the 0.036 Hz band asks (0.564/60)/0.01 = 0.94 pu (non-step band)."""
    d = impl(st.droop_response_mw, which)
    assert d(-0.03, 100.0, 0.01, 0.036, 60.0) == 0.0
    assert d(0.036, 100.0, 0.01, 0.036, 60.0) == 0.0
    assert d(-0.037, 100.0, 0.01, 0.036, 60.0) == pytest.approx(100.0 * 0.001 / 60.0 / 0.01)  # from 0 at the edge
    assert d(-0.6, 100.0, 0.01, 0.036, 60.0) == pytest.approx(100.0 * 0.564 / 60.0 / 0.01)
    assert d(0.2, 100.0, 0.01, 0.036, 60.0) == pytest.approx(-100.0 * 0.164 / 60.0 / 0.01)


@pytest.mark.parametrize("which", IMPLS)
def test_bess_power_limits(which):
    """Schedule + droop, clipped to the SoC-derated limits of i_max·P_rated."""
    f = impl(st.bess_power_mw, which)
    # a deep dip saturates at the rating; near empty only the derated power is available
    assert f(0.0, -2.0, 0.5, 100.0, 0.05, 0.95, 0.01, 0.036, 1.0, 60.0) == 100.0
    assert f(0.0, -2.0, 0.06, 100.0, 0.05, 0.95, 0.01, 0.036, 1.0, 60.0) == pytest.approx(20.0)
    # a current limit above rating lets the command through up to i_max·P
    assert f(500.0, 0.0, 0.5, 100.0, 0.05, 0.95, 0.01, 0.036, 1.2, 60.0) == pytest.approx(120.0)
    # schedule + droop beyond the band: 10 MW + (0.064/60)/0.01·100 MW
    assert f(10.0, -0.1, 0.5, 100.0, 0.05, 0.95, 0.01, 0.036, 1.0, 60.0) == pytest.approx(10.0 + 0.064 / 60.0 / 0.01 * 100.0)
    # r_b ≤ 0 disables droop: the schedule passes
    assert f(10.0, -0.5, 0.5, 100.0, 0.05, 0.95, 0.0, 0.036, 1.0, 60.0) == 10.0
    # charging near full: the charge limit is derated (0.94 → 20 %); discharge is not
    assert f(-80.0, 0.0, 0.94, 100.0, 0.05, 0.95, 0.01, 0.036, 1.0, 60.0) == pytest.approx(-20.0)
    assert f(80.0, 0.0, 0.94, 100.0, 0.05, 0.95, 0.01, 0.036, 1.0, 60.0) == 80.0
    # over-frequency makes an idle battery charge
    assert f(0.0, 0.1, 0.5, 100.0, 0.05, 0.95, 0.01, 0.036, 1.0, 60.0) < 0.0


@pytest.mark.parametrize("which", IMPLS)
def test_lag_decay(which):
    f = impl(st.lag_decay, which)
    assert f(0.2, 0.02) == pytest.approx(math.exp(-0.1))
    assert f(0.0, 0.02) == 0.0 and f(-1.0, 0.02) == 0.0


@pytest.mark.parametrize("which", IMPLS)
@pytest.mark.parametrize("h", [0.02, 0.1, 1.0])
def test_substep_lag_is_the_exact_first_order_response(which, h):
    """A droop command step (Δf = −0.336 Hz beyond a 0.036 Hz band at 1 %: 50 MW on 100 MW) through the
    200 ms response lag: P(t) = P_cmd·(1 − e^(−t/τ)) at every sub-step, to rounding, whatever the sub-step."""
    row = yard_row()
    f = impl(st.bess_substep_mw, which)
    a = st.lag_decay(row[pl.BE_RESPONSE_S], h)
    p_cmd = 0.3 / 60.0 / 0.01 * 100.0
    assert p_cmd == pytest.approx(50.0)
    p = 0.0
    for k in range(1, int(round(1.0 / h)) + 1):
        p = f(p, 0.0, -0.336, 0.5, row, 1.0, a, 60.0)
        assert p == pytest.approx(p_cmd * (1.0 - math.exp(-k * h / 0.2)), rel=1e-12)
    # a schedule step adds to the command; the lag then relaxes from where it is
    p = f(p, 20.0, -0.336, 0.5, row, 1.0, a, 60.0)
    assert p == pytest.approx(70.0 + (p_cmd * (1.0 - math.exp(-1.0 / 0.2)) - 70.0) * math.exp(-h / 0.2), rel=1e-12)


@pytest.mark.parametrize("which", IMPLS)
@pytest.mark.parametrize("h", [0.02, 0.05, 1.0])
def test_frequency_measurement_filter_exact_and_its_delay(which, h):
    """The measurement filter T_m = 50 ms on a held Δf step: its end value is Δf·(1 − e^(−t/T_m))
    and its mean over a sub-step the integral of that over the sub-step / h, both to rounding. On a
    frequency ramp sampled at the sub-steps' starts, the mean the droop acts on lags the ramp by
    exactly T_m once settled (the end value would lag by ≈ T_m + h/2)."""
    f = impl(st.freq_measurement_step, which)
    fac = np.zeros(st.BA_NCOL)
    row = yard_row()
    row[pl.BE_FREQ_FILTER_S] = 0.05
    impl(st.bess_lag_factors, which)(row, h, 10.0 * h, fac)
    assert fac[0] == pytest.approx(math.exp(-h / 0.2)) and fac[2] == pytest.approx(math.exp(-h / 0.05))
    m = 0.0
    for k in range(5):
        mean, m_end = f(m, 0.1, fac[2], fac[4])
        t0, t1 = k * h, (k + 1) * h
        exact_mean = 0.1 * (1.0 - 0.05 / h * (math.exp(-t0 / 0.05) - math.exp(-t1 / 0.05)))
        assert m_end == pytest.approx(0.1 * (1.0 - math.exp(-t1 / 0.05)), rel=1e-12)
        assert mean == pytest.approx(exact_mean, rel=1e-12)
        m = m_end
    rate, m = 0.5, 0.0  # Hz/s
    for k in range(int(round(3.0 / h))):
        mean, m = f(m, rate * k * h, fac[2], fac[4])
    t_mid = (k + 0.5) * h
    assert (rate * (t_mid - 0.5 * h) - mean) / rate == pytest.approx(0.05, rel=1e-9)  # vs the sampled Δf: T_m
    # a grid-forming yard, or T_m = 0, measures the island frequency as it is
    impl(st.bess_lag_factors, which)(yard_row(gfm=True), h, 1.0, fac)
    assert f(0.3, 0.1, fac[2], fac[4]) == (0.1, 0.1)


@pytest.mark.parametrize("which", IMPLS)
def test_substep_grid_forming_follows_at_once_and_derate_limits(which):
    f = impl(st.bess_substep_mw, which)
    gfm = yard_row(gfm=True)
    assert f(0.0, 30.0, 0.0, 0.5, gfm, 1.0, 0.9, 60.0) == 30.0  # no lag whatever the decay
    gfl = yard_row()
    assert f(0.0, 30.0, 0.0, 0.5, gfl, 1.0, 0.9, 60.0) == pytest.approx(3.0)  # 10 % of the way in one sub-step
    # half the yard out (derate 0.5): the command is held to 50 MW
    assert f(0.0, 80.0, 0.0, 0.5, gfm, 0.5, 0.0, 60.0) == pytest.approx(50.0)
    assert f(0.0, 80.0, -2.0, 0.5, gfm, 0.5, 0.0, 60.0) == pytest.approx(50.0)


@pytest.mark.parametrize("which", IMPLS)
def test_smoothing_high_pass_of_a_step(which):
    """IT step of ΔP at t = 0 from a settled low-pass: P_smooth(t) = ΔP·e^(−t/τ) (first-order HPF)."""
    f = impl(st.smoothing_step, which)
    lpf, d_p, tau = 500.0, 80.0, 60.0
    for k in range(1, 181):
        lpf, ps = f(lpf, 500.0 + d_p, tau, 1.0)
        assert ps == pytest.approx(d_p * math.exp(-k / tau), rel=1e-9)
        assert lpf + ps == pytest.approx(500.0 + d_p)


@pytest.mark.parametrize("which", IMPLS)
def test_lowpass_step(which):
    f = impl(st.lowpass_step, which)
    assert f(0.0, 10.0, 2.0, 1.0) == pytest.approx(10.0 * (1.0 - math.exp(-0.5)))
    assert f(3.0, 10.0, 0.0, 1.0) == 10.0  # no lag


@pytest.mark.parametrize("which", IMPLS)
def test_import_cap_schedule(which):
    f = impl(st.import_cap_schedule_mw, which)
    assert f(400.0, 100.0, 250.0, 20.0) == 50.0  # discharge what exceeds the cap
    assert f(300.0, 100.0, 250.0, 20.0) == -20.0  # recharge gently from the headroom
    assert f(345.0, 100.0, 250.0, 20.0) == -5.0
    assert f(350.0, 100.0, 250.0, 20.0) == 0.0  # exactly at the cap
