"""Chiller curves (twin.cooling) against the tables of docs/physics.md §6."""

from __future__ import annotations

import numpy as np
import pytest

from sites.curves import chiller_curves
from twin import cooling as co

IMPLS = ["numba", "python"]
CURVE = tuple(chiller_curves()["york-ycal0033ee"][:3])
RANGES = ((4.4, 10.0), (23.9, 51.7))
T_CHW = 6.67
COP_REF = 3.1

# docs/physics.md §6 table at Tchw = 6.67 °C (values printed to 2–3 significant digits)
TABLE = [(25.0, 1.08, 4.1), (35.0, 1.05, 3.0), (40.0, 0.96, 2.65), (45.0, 0.83, 2.3), (50.0, 0.65, 2.05)]


def impl(fn, which):
    return fn if which == "numba" else fn.py_func


def full_load_cop(t_amb, which="numba", t_chw=T_CHW):
    """COP at full load, Q/P: the capacity over the compressor power serving it."""
    cap = impl(co.chiller_capacity_mw, which)(1.0, CURVE[0], t_chw, t_amb, *RANGES)
    return cap / impl(co.chiller_power_mw, which)(cap, 1.0, COP_REF, *CURVE, t_chw, t_amb, *RANGES)


@pytest.mark.parametrize("which", IMPLS)
@pytest.mark.parametrize("t_amb, capft, cop", TABLE)
def test_capacity_and_cop_match_physics_table(which, t_amb, capft, cop):
    """(e) CAPFT to ±0.006 (the table's 2 decimals, 1.0754 printed as 1.08) and full-load COP = Q/P to ±0.05."""
    cap = impl(co.chiller_capacity_mw, which)(1.0, CURVE[0], T_CHW, t_amb, *RANGES)
    assert cap == pytest.approx(capft, abs=0.006)
    assert full_load_cop(t_amb, which) == pytest.approx(cop, abs=0.05)


def test_reference_point_is_rated():
    """At the rating point (6.67 °C / 35 °C) CAPFT and EIRFT are ≈1: COP ≈ COP_ref."""
    assert co.biquadratic(CURVE[0], T_CHW, 35.0) == pytest.approx(1.0, abs=0.06)
    assert full_load_cop(35.0) == pytest.approx(COP_REF, rel=0.03)


def test_cop_falls_with_ambient_at_physics_slope():
    """COP falls ≈2.5–3 %/K of ambient (docs/physics.md §6 'Shape'), between 25 and 45 °C."""
    c25, c45 = full_load_cop(25.0), full_load_cop(45.0)
    slope = (1.0 - (c45 / c25) ** (1.0 / 20.0))
    assert 0.02 <= slope <= 0.035


@pytest.mark.parametrize("which", IMPLS)
def test_inputs_clamped_to_valid_range(which):
    cap = impl(co.chiller_capacity_mw, which)
    assert cap(1.0, CURVE[0], T_CHW, 60.0, *RANGES) == cap(1.0, CURVE[0], T_CHW, 51.7, *RANGES)
    assert cap(1.0, CURVE[0], T_CHW, 0.0, *RANGES) == cap(1.0, CURVE[0], T_CHW, 23.9, *RANGES)


@pytest.mark.parametrize("which", IMPLS)
def test_warm_water_cop_second_law(which):
    """COP = η_II·T_ev/(T_cd − T_ev) in kelvin, checked by hand at Tchw 18 °C, Tamb 35 °C."""
    f = impl(co.cop_warm_water, which)
    t_ev = 18.0 - 3.0 + 273.15
    t_cd = 35.0 + 12.5 + 273.15
    assert f(18.0, 35.0, 0.5, 3.0, 12.5) == pytest.approx(0.5 * t_ev / (t_cd - t_ev))
    assert f(30.0, 5.0, 0.5, 3.0, 12.5) == np.inf  # no lift needed


@pytest.mark.parametrize("which", IMPLS)
def test_plant_power_is_compressor_plus_fractions(which):
    q, p_it, t_amb = 0.8, 0.9, 40.0
    comp = co.chiller_power_mw(q, 1.0, COP_REF, *CURVE, T_CHW, t_amb, *RANGES)
    got = impl(co.cooling_plant_power_mw, which)(q, 1.0, COP_REF, *CURVE, T_CHW, t_amb, *RANGES, p_it, 0.04, 0.015)
    assert got == pytest.approx(comp + 0.04 * q + 0.015 * p_it)
    # beyond capacity the compressor and fans see only the capacity
    cap = co.chiller_capacity_mw(1.0, CURVE[0], T_CHW, 50.0, *RANGES)
    big = impl(co.cooling_plant_power_mw, which)(5.0, 1.0, COP_REF, *CURVE, T_CHW, 50.0, *RANGES, 0.0, 0.04, 0.0)
    assert big == pytest.approx(co.chiller_power_mw(cap, 1.0, COP_REF, *CURVE, T_CHW, 50.0, *RANGES) + 0.04 * cap)
    # docs/physics.md §7: fans + pumps at defaults land in 1.5–3 % + 1–2 % of IT for Q ≈ IT
    assert 0.02 <= co.auxiliary_power_mw(1.0, 1.0) <= 0.08


@pytest.mark.parametrize("which", IMPLS)
def test_cop_of_a_liquid_cooled_hall_at_25c_facility_water(which):
    """Acceptance: COP of a liquid-cooled hall at 25 °C facility water per the warm-water form.

    By hand (docs/physics.md §6, η_II = 0.5, T_ev = Tw − 3 K, T_cd = Tamb + 12.5 K) at 25 °C water and
    35.6 °C ambient: COP = 0.5·295.15/(321.25 − 295.15) = 5.654; the compressor power is Q/COP. The EIR
    curve at its own 10 °C limit would give ≈3.3: warm water is what makes liquid cooling cheap.
    """
    t_ev = 25.0 - 3.0 + 273.15
    t_cd = 35.6 + 12.5 + 273.15
    cop = 0.5 * t_ev / (t_cd - t_ev)
    assert cop == pytest.approx(5.654, abs=5e-4)
    f = impl(co.compressor_power_mw, which)
    for q in (10.0, 80.0):
        assert f(q, 100.0, COP_REF, *CURVE, 25.0, 35.6, *RANGES) == pytest.approx(q / cop, rel=1e-12)
    eir_10 = 80.0 / co.chiller_power_mw(80.0, 100.0, COP_REF, *CURVE, 10.0, 35.6, *RANGES)
    assert eir_10 < 0.7 * cop
    # the plant: compressors at that COP, fans on the heat, pumps on the IT
    plant = impl(co.cooling_plant_power_mw, which)(80.0, 100.0, COP_REF, *CURVE, 25.0, 35.6, *RANGES, 85.0, 0.04, 0.015)
    assert plant == pytest.approx(80.0 / cop + 0.04 * 80.0 + 0.015 * 85.0, rel=1e-12)


@pytest.mark.parametrize("which", IMPLS)
def test_compressor_power_selects_the_eir_curves_in_their_range(which):
    """At or below the curve's 10 °C chilled-water limit the EIR curves apply; above it the warm-water
    form; free cooling (ambient below the water) and no load cost nothing."""
    f = impl(co.compressor_power_mw, which)
    for t_w in (T_CHW, 10.0):
        assert f(0.6, 1.0, COP_REF, *CURVE, t_w, 35.0, *RANGES) == pytest.approx(
            co.chiller_power_mw(0.6, 1.0, COP_REF, *CURVE, t_w, 35.0, *RANGES), rel=1e-12)
    assert f(0.6, 1.0, COP_REF, *CURVE, 10.5, 35.0, *RANGES) == pytest.approx(
        0.6 / co.cop_warm_water(10.5, 35.0), rel=1e-12)
    assert f(0.6, 1.0, COP_REF, *CURVE, 25.0, 5.0, *RANGES) == 0.0  # no lift: dry coolers
    assert f(0.0, 1.0, COP_REF, *CURVE, 25.0, 35.0, *RANGES) == 0.0
    assert f(-1.0, 1.0, COP_REF, *CURVE, T_CHW, 35.0, *RANGES) == 0.0
