"""Gas turbines (twin.turbines): derating, heat rate, GGOV1-reduced governor (as the engine runs it through
governor_prepare/governor_step), status, fuel, emissions."""

from __future__ import annotations

import numpy as np
import pytest

from twin import turbines as tb

IMPLS = ["numba", "python"]


def impl(fn, which):
    return fn if which == "numba" else fn.py_func


@pytest.mark.parametrize("which", IMPLS)
def test_derating_against_site_rating_curve(which):
    """(e) docs/physics.md §3: power correction ≈0.83 at 40 °C and ≈1.25 at −19 °C (generic curve [P30]).

    The linear model with a in the industrial range 0.6–0.8 %/K brackets 0.83 at 40 °C; a = 0.68 %/K
    hits it and gives ≈1.23 at −19 °C (the real curve bends, so ±0.03 there).
    """
    k = impl(tb.derate_factor, which)
    assert k(15.0, 0.007) == 1.0
    assert k(40.0, 0.008) <= 0.83 <= k(40.0, 0.006)
    assert k(40.0, 0.0068) == pytest.approx(0.83, abs=0.005)
    assert k(-19.0, 0.0068) == pytest.approx(1.25, abs=0.03)
    # aeroderivative 0.8–1.0 %/K: "−6 % to >−10 % per 10 K"
    assert 0.90 <= k(25.0, 0.009) <= 0.94
    assert k(500.0, 0.01) == 0.0


@pytest.mark.parametrize("which", IMPLS)
@pytest.mark.parametrize("load, factor, tol", [(0.75, 1.07, 0.005), (0.50, 1.20, 1e-9), (0.25, 1.60, 1e-9)])
def test_part_load_heat_rate_factors(which, load, factor, tol):
    """(f) Wfnl = 0.2: the fuel line gives ×1.07 at 75 % (1.0667, printed to 2 decimals), ×1.20 at 50 %, ×1.6 at 25 %."""
    p_av = 35.0  # at ISO: the heat rate of the fuel line at part load, fuel/(P·HR_full)
    fuel = impl(tb.fuel_flow_mmbtu_per_s, which)(load * p_av, p_av, p_av, 9500.0, 1.0, 0.2)
    hr = fuel * 3600.0 * 1e6 / (load * p_av * 1e3)
    assert hr / 9500.0 == pytest.approx(factor, abs=tol)


@pytest.mark.parametrize("which", IMPLS)
def test_fuel_flow_consistent_with_heat_rate_and_co2_per_mwh(which):
    """Fuel = HR(p)·P; at 9,500 Btu/kWh HHV full load CO2 ≈ 0.50 t/MWh (docs/physics.md §3 emissions table)."""
    fuel = impl(tb.fuel_flow_mmbtu_per_s, which)
    p_av = 35.0  # at ISO: available = ISO rating, no ambient correction
    for p in (0.3, 0.5, 0.9, 1.0):
        f = fuel(p * p_av, p_av, p_av, 9500.0, 1.0, 0.2)
        hr = 9500.0 * (0.2 + 0.8 * p) / p  # the part-load heat rate of the GGOV1 fuel line, by hand
        assert f == pytest.approx(hr * p * p_av * 1e3 / 1e6 / 3600.0)
    mmbtu_per_mwh = fuel(p_av, p_av, p_av, 9500.0, 1.0, 0.2) * 3600.0 / p_av
    assert mmbtu_per_mwh == pytest.approx(9.5)
    assert impl(tb.co2_kg, which)(mmbtu_per_mwh) / 1000.0 == pytest.approx(0.50, abs=0.005)
    assert fuel(0.0, p_av, p_av, 9500.0, 1.0, 0.2) == pytest.approx(0.2 * fuel(p_av, p_av, p_av, 9500.0, 1.0, 0.2))


@pytest.mark.parametrize("which", IMPLS)
def test_fuel_line_on_a_hot_day(which):
    """42 °C, derate 0.8 %/K, heat rate +0.25 %/K: no-load fuel stays at 0.2 of ISO full-load fuel, full
    derated load burns HR·1.0675 per kWh, and any given output costs more fuel than at 15 °C."""
    fuel = impl(tb.fuel_flow_mmbtu_per_s, which)
    p_iso, hr = 38.0, 9000.0
    k, c = 1.0 - 0.008 * 27.0, 1.0 + 0.0025 * 27.0
    p_av = p_iso * k
    to_btu_per_h = 3600.0 * 1e6
    assert fuel(0.0, p_av, p_iso, hr, c, 0.2) * to_btu_per_h == pytest.approx(0.2 * hr * p_iso * 1e3)
    assert fuel(p_av, p_av, p_iso, hr, c, 0.2) * to_btu_per_h == pytest.approx(hr * c * p_av * 1e3)
    for p_mw in (5.0, 15.0, 25.0, p_av):
        assert fuel(p_mw, p_av, p_iso, hr, c, 0.2) > fuel(p_mw, p_iso, p_iso, hr, 1.0, 0.2)


@pytest.mark.parametrize("which", IMPLS)
def test_nox_steps_up_below_the_dle_turndown(which):
    """AP-42 lean-premix 0.099 lb/MMBtu ≈ 0.43 kg/MWh at 9.5 MMBtu/MWh (docs/physics.md §3); below the
    turndown the uncontrolled 0.32 lb/MMBtu; an SCR unit's own (lower) factors are used as given."""
    nox = impl(tb.nox_kg, which)
    dle, low = 0.099 * 0.45359237, 0.32 * 0.45359237
    assert tb.NOX_KG_PER_MMBTU_LEAN_PREMIX == pytest.approx(dle)
    assert nox(9.5, 1.0, 0.4, dle, low) == pytest.approx(0.43, abs=0.005)
    assert nox(9.5, 0.4, 0.4, dle, low) == pytest.approx(9.5 * dle)  # at the turndown: still premix
    assert nox(9.5, 0.39, 0.4, dle, low) == pytest.approx(9.5 * low)
    assert nox(9.5, 0.39, 0.4, dle * 0.08, low * 0.08) == pytest.approx(9.5 * low * 0.08)  # SCR 2 of 25 ppm


@pytest.mark.parametrize("which", IMPLS)
def test_heat_rate_ambient_factor_brackets_curve(which):
    """≈0.2–0.3 %/K: the range brackets ≈1.10 at 45 °C loosely (linear fit of a curved correction)."""
    f = impl(tb.heat_rate_ambient_factor, which)
    assert f(15.0, tb.HR_RISE_PER_C) == 1.0
    assert f(45.0, 0.002) <= 1.10 <= f(45.0, 0.0035)
    assert f(42.0, 0.0025) == pytest.approx(1.0 + 0.0025 * 27.0)
    assert f(0.0, 0.0025) < 1.0  # a cold day burns less per kWh


def test_hhv_conversion_of_heat_rate():
    """LHV → HHV by 1.108 for pipeline gas (GREET/AFDC [P58]); HHV passes; anything else is refused."""
    assert tb.hhv_heat_rate_btu_per_kwh(9700.0, "lhv") == pytest.approx(9700.0 * 1.108)
    assert tb.hhv_heat_rate_btu_per_kwh(9700.0, "hhv") == 9700.0
    with pytest.raises(ValueError, match="lhv"):
        tb.hhv_heat_rate_btu_per_kwh(9700.0, "gross")


def run_gov(which, p_set, dw, n_s, h=0.02, p0=0.6, par=None, pe_follows=True, ldref_pu=-1.0):
    """A GGOV1 unit on a stiff grid (Pe = Pm, or held at p0) for n_s seconds of sub-steps h; Pmech per sub-step."""
    par = tb.ggov1_params() if par is None else par
    x = np.zeros(tb.GX_NSTATE)
    tb.ggov1_init(x, par, p0)
    step = impl(tb.ggov1_step, which)
    pm = np.empty(int(round(n_s / h)))
    for k in range(pm.size):
        pm[k] = step(x, par, p_set, x[tb.GX_PMECH] if pe_follows else p0, dw, h, ldref_pu)
    return pm, x


@pytest.mark.parametrize("which", IMPLS)
def test_ggov1_init_is_steady(which):
    pm, x = run_gov(which, 0.6, 0.0, 5.0)
    assert np.max(np.abs(pm - 0.6)) < 1e-12
    assert x[tb.GX_VALVE] == pytest.approx(0.2 + 0.6 / 1.5)  # Wfnl + P/Kturb


@pytest.mark.parametrize("which", IMPLS)
@pytest.mark.parametrize("db_hz", [0.0, 0.036])
def test_ggov1_droop_steady_state(which, db_hz):
    """Unit on a stiff grid at Δf = −0.15 Hz: Pe → P_set − Δω_d/R, with Δω_d the deviation beyond the
    deadband (by hand: 4 % droop, −0.15 Hz → +6.25 % of rating; −0.114 Hz beyond a 0.036 Hz band → +4.75 %)."""
    par = tb.ggov1_params(deadband_hz=db_hz)
    dw = -0.15 / 60.0
    pm, _ = run_gov(which, 0.6, dw, 120.0, par=par)
    expected = 0.6 + (0.15 - db_hz) / 60.0 / 0.04
    assert expected == pytest.approx(0.6625 if db_hz == 0.0 else 0.6475)
    assert pm[-1] == pytest.approx(expected, rel=1e-4)
    # over-frequency: the droop line the other way
    pm, _ = run_gov(which, 0.6, -dw, 120.0, par=par)
    assert pm[-1] == pytest.approx(0.6 - (0.15 - db_hz) / 60.0 / 0.04, rel=1e-4)


@pytest.mark.parametrize("which", IMPLS)
def test_ggov1_no_response_inside_the_deadband(which):
    """±0.036 Hz deadband (FERC 842): a 0.03 Hz deviation either way moves nothing, to rounding."""
    par = tb.ggov1_params(deadband_hz=0.036)
    assert par[tb.GG_DB_PU] == pytest.approx(0.036 / 60.0)
    for df in (-0.03, 0.03, -0.0359):
        pm, _ = run_gov(which, 0.6, df / 60.0, 30.0, par=par)
        assert np.max(np.abs(pm - 0.6)) < 1e-12
    pm, _ = run_gov(which, 0.6, -0.03 / 60.0, 30.0)  # the same deviation without a deadband does act
    assert pm[-1] > 0.6 + 0.01


@pytest.mark.parametrize("which", IMPLS)
@pytest.mark.parametrize("loading", [0.005, 0.15])
def test_ggov1_valve_rate_is_a_loading_rate(which, loading):
    """Set point 0.3 → 0.9 pu: Pmech rises no faster than Kturb·Ropen per second. A DLE unit's 0.5 %/s
    loading rate [P23] is Ropen = 0.005/Kturb (as twin.plant.governor_row builds it): the 0.6 pu climb
    then takes ≈120 s at that rate, and the rate is reached."""
    k_turb = 1.5
    par = tb.ggov1_params(k_turb=k_turb, r_open_pu_per_s=loading / k_turb)
    n_s = 0.6 / loading + 120.0  # the ramp, then the PI's ≈13 s settling (R·Kigov = 0.08/s on the error)
    pm, _ = run_gov(which, 0.9, 0.0, n_s, p0=0.3, par=par)
    rate = np.diff(pm) / 0.02
    assert rate.max() <= loading * (1.0 + 1e-9)
    assert rate.max() > 0.95 * loading
    t_90 = (np.argmax(pm >= 0.3 + 0.9 * 0.6) + 1) * 0.02
    assert t_90 >= 0.9 * 0.6 / loading  # the rate, not the PI, sets the time
    assert pm[-1] == pytest.approx(0.9, abs=1e-3)


@pytest.mark.parametrize("which", IMPLS)
def test_ggov1_load_limiter_at_ldref(which):
    """Set point 1.2 pu with the limiter at 0.9 (e.g. the ambient derate k_T = 0.9): Pmech stops at Ldref,
    whether Ldref comes from the parameters or, as the engine passes it, from ldref_pu per sub-step."""
    pm_par, _ = run_gov(which, 1.2, 0.0, 60.0, p0=0.3, par=tb.ggov1_params(ldref=0.9))
    pm_arg, _ = run_gov(which, 1.2, 0.0, 60.0, p0=0.3, ldref_pu=0.9)
    np.testing.assert_array_equal(pm_par, pm_arg)
    assert pm_arg[-1] == pytest.approx(0.9, abs=2e-3)
    # the exhaust-temperature proxy lags the fuel by Tfload = 3 s, so the limiter catches the ramp late:
    # a brief overshoot of a few % of rating, as GGOV1's typical data gives
    assert pm_arg.max() < 0.9 + 0.05
    # the valve rate limit (Kturb·Ropen = 0.15 pu/s by default) holds on the way up
    assert (np.diff(pm_arg) / 0.02).max() <= 0.15 + 1e-9
    # a limiter above the set point does not bind
    pm, _ = run_gov(which, 0.8, 0.0, 150.0, p0=0.3, ldref_pu=1.0)
    assert pm[-1] == pytest.approx(0.8, abs=1e-3)


@pytest.mark.parametrize("which", IMPLS)
def test_governor_prepare_cache_gives_the_uncached_result(which):
    """Decay factors cached for the sub-step by governor_prepare reproduce the uncached path exactly; a
    sub-step other than the prepared one falls back to computing them."""
    par = tb.ggov1_params(deadband_hz=0.036)
    cached = par.copy()
    impl(tb.governor_prepare, which)(tb.GOV_GGOV1, cached, 0.02)
    assert cached[tb.GG_HSUB] == 0.02 and par[tb.GG_HSUB] == -1.0
    for h in (0.02, 1.0):
        xa, xb = np.zeros(tb.GX_NSTATE), np.zeros(tb.GX_NSTATE)
        tb.ggov1_init(xa, par, 0.5)
        tb.ggov1_init(xb, par, 0.5)
        step = impl(tb.ggov1_step, which)
        for k in range(int(round(20.0 / h))):
            dw = -0.004 * np.sin(0.7 * k * h)
            pa = step(xa, par, 0.7, xa[tb.GX_PMECH], dw, h, 0.95)
            pb = step(xb, cached, 0.7, xb[tb.GX_PMECH], dw, h, 0.95)
            assert pa == pb
        np.testing.assert_array_equal(xa, xb)
    # a TGOV1 row is left alone (its lags compute their own factors)
    tg = tb.tgov1_params()
    before = tg.copy()
    impl(tb.governor_prepare, which)(tb.GOV_TGOV1, tg, 0.02)
    np.testing.assert_array_equal(tg, before)


@pytest.mark.parametrize("which", IMPLS)
def test_governor_step_dispatches_by_kind(which):
    """GGOV1 rows go to ggov1_step (with ldref_pu), TGOV1 rows to tgov1_step capped at ldref_pu."""
    f = impl(tb.governor_step, which)
    par = tb.ggov1_params()
    xa, xb = np.zeros(tb.GX_NSTATE), np.zeros(tb.GX_NSTATE)
    impl(tb.governor_init, which)(tb.GOV_GGOV1, xa, par, 0.5)
    tb.ggov1_init(xb, par, 0.5)
    np.testing.assert_array_equal(xa, xb)
    for _ in range(100):
        assert f(tb.GOV_GGOV1, xa, par, 0.8, xa[tb.GX_PMECH], -0.001, 0.02, 0.9) == tb.ggov1_step(
            xb, par, 0.8, xb[tb.GX_PMECH], -0.001, 0.02, 0.9)
    tg = tb.tgov1_params(r=0.05)
    x = np.zeros(tb.GX_NSTATE)
    impl(tb.governor_init, which)(tb.GOV_TGOV1, x, tg, 0.5)
    assert x[tb.GX_PMECH] == 0.5
    for _ in range(3000):  # 60 s: TGOV1 settles on its droop line, P_set − Δω/R (by hand: 0.5 + 0.002/0.05)
        p = f(tb.GOV_TGOV1, x, tg, 0.5, 0.5, -0.002, 0.02, 1.0)
    assert p == pytest.approx(0.5 + 0.002 / 0.05, rel=1e-3)
    assert f(tb.GOV_TGOV1, x, tg, 0.5, 0.5, -0.002, 0.02, 0.45) == 0.45  # capped at the availability


@pytest.mark.parametrize("which", IMPLS)
def test_unit_status_machine(which):
    f = impl(tb.unit_status_step, which)
    out = np.empty(3)
    st, tm = tb.STATUS_STANDBY, 0.0
    f(st, tm, True, False, 600.0, 1.0, out)
    assert out[0] == tb.STATUS_STARTING and out[1] == 599.0
    st, tm = out[0], out[1]
    n = 0
    while st != tb.STATUS_ONLINE:
        f(st, tm, False, False, 600.0, 1.0, out)
        st, tm = out[0], out[1]
        n += 1
    assert n + 1 == 600  # online after the start time
    f(st, tm, False, True, 600.0, 1.0, out)
    assert out[0] == tb.STATUS_TRIPPED and out[2] == 0.0
    f(out[0], out[1], True, False, 600.0, 1.0, out)
    assert out[0] == tb.STATUS_TRIPPED  # needs a reset to standby first
    f(tb.STATUS_STARTING, 0.4, False, False, 600.0, 1.0, out)
    assert out[0] == tb.STATUS_ONLINE and out[2] == pytest.approx(0.6)


@pytest.mark.parametrize("which", IMPLS)
def test_ramp_and_setpoint_limits(which):
    r = impl(tb.ramp_limit_mw, which)
    # LMS100: 50 MW/min
    assert r(40.0, 100.0, 50.0 / 60.0, 50.0 / 60.0, 1.0) == pytest.approx(40.0 + 50.0 / 60.0)
    assert r(40.0, 40.5, 50.0 / 60.0, 50.0 / 60.0, 1.0) == 40.5
    assert r(40.0, 0.0, 1.0, 2.0, 1.0) == 38.0
    s = impl(tb.setpoint_limits_mw, which)
    assert s(5.0, 15.0, 35.0) == 15.0 and s(50.0, 15.0, 35.0) == 35.0 and s(20.0, 15.0, 35.0) == 20.0
