"""KPIs (twin.kpi) on hand-made segments, against hand-computed values."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from sites import load_site
from twin.kpi import KpiAccumulator
from twin.plant import H_N_GPU, H_T_SLOW_C, compile_plant

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def site():
    return load_site(DATA / "minimal_site.toml")


@pytest.fixture(scope="module")
def plant(site):
    return compile_plant(site)


def _segment(plant, n, **over):
    n_h, n_t, n_b, n_i = len(plant.hall), len(plant.turb), len(plant.bess), plant.n_island
    n_bus, n_br = 4, 3
    seg = {
        "p_it_mw": np.full((n, n_h), 10.0), "p_cooling_mw": np.full((n, n_h), 2.0), "t_gpu_c": np.full((n, n_h), 60.0),
        "t_coolant_c": np.full((n, n_h), 30.0), "throttle": np.ones((n, n_h)), "p_shed_mw": np.zeros((n, n_h)),
        "p_turbine_mw": np.zeros((n, n_t)), "soc_bess": np.full((n, n_b), 0.5), "f_hz": np.full((n, n_i), 60.0),
        "f_min_hz": np.full((n, n_i), 60.0), "f_max_hz": np.full((n, n_i), 60.0), "rocof_long_hz_s": np.zeros((n, n_i)),
        "rocof_hz_s": np.zeros((n, n_i)), "p_unserved_mw": np.zeros((n, n_i)), "p_loss_mw": np.full((n, n_i), 0.1),
        "vm_pu": np.ones((n, n_bus)), "loading_pct": np.full((n, n_br), 40.0), "turbine_starts": np.zeros(n),
        "t_amb_c": np.full(n, 15.0),
    }
    seg.update(over)
    return seg


#: The one turbine model of minimal_site.toml, read as plain TOML (not through the product's loader).
MODEL = tomllib.loads((DATA / "minimal_site.toml").read_text())["turbine_models"]["t130"]
HHV_PER_LHV = 1.108  # pipeline natural gas, GREET/AFDC (docs/references.md [P58])
LB = 0.45359237


def _one_hour(plant, site, load_frac, t_amb):
    """KPIs of the one unit at ``load_frac`` of its derated rating for an hour at ``t_amb``."""
    n = 3600
    p_av = MODEL["p_iso_mw"]["value"] * (1.0 - MODEL["derate_per_c"] * (t_amb - 15.0))
    pt = np.zeros((n, len(plant.turb)))
    pt[:, 0] = load_frac * p_av
    k = KpiAccumulator(plant, 1.0, site=site)
    k.update(_segment(plant, n, p_turbine_mw=pt, t_amb_c=np.full(n, t_amb)))
    return k.result(), p_av


WFNL = 0.2  # the schema's default, not set in minimal_site.toml


def _hr_full_hhv(t_amb):
    """Full-load heat rate [MMBtu/MWh HHV] at ``t_amb`` from the file: LHV rating × 1.108 × ambient."""
    assert MODEL["heat_rate_basis"] == "lhv"
    return MODEL["heat_rate_btu_per_kwh"] * HHV_PER_LHV * (1.0 + MODEL["heat_rate_rise_per_c"] * (t_amb - 15.0)) / 1000.0


def _fuel_one_hour(load_frac, t_amb, p_av):
    """Fuel [MMBtu HHV] of an hour on the fuel line: no-load Wfnl·HR_ISO·P_ISO, full HR_full(T)·P_av."""
    f0 = WFNL * _hr_full_hhv(15.0) * MODEL["p_iso_mw"]["value"]
    return f0 + (_hr_full_hhv(t_amb) * p_av - f0) * load_frac


def test_fuel_follows_the_fuel_line_on_the_hhv_basis(plant, site):
    """Half the derated rating for an hour at 35 °C."""
    r, p_av = _one_hour(plant, site, 0.5, 35.0)
    fuel = _fuel_one_hour(0.5, 35.0, p_av)
    assert r["fuel_mmbtu"] == pytest.approx(fuel, rel=1e-9)
    assert r["turbine_energy_mwh"] == pytest.approx(0.5 * p_av, rel=1e-9)


def test_heat_rate_rises_with_ambient_by_the_file_coefficient(plant, site):
    """At full (derated) load the heat rate at 42 °C is 1 + b·27 K above the one at 15 °C (b from the file)."""
    r15, _ = _one_hour(plant, site, 1.0, 15.0)
    r42, _ = _one_hour(plant, site, 1.0, 42.0)
    assert r15["heat_rate_mmbtu_per_mwh"] == pytest.approx(9.700 * 1.108, rel=1e-9)
    assert r42["heat_rate_mmbtu_per_mwh"] / r15["heat_rate_mmbtu_per_mwh"] == pytest.approx(
        1.0 + MODEL["heat_rate_rise_per_c"] * 27.0, rel=1e-9)
    assert r42["heat_rate_mmbtu_per_mwh"] > r15["heat_rate_mmbtu_per_mwh"]


def test_co2_per_mwh_from_heat_rate_and_factor_on_one_basis(plant, site):
    """Full load at 15 °C: CO2 [t/MWh] = 9,700 Btu/kWh LHV × 1.108 × 53.06 kg/MMBtu HHV = 0.5703 t/MWh."""
    r, _ = _one_hour(plant, site, 1.0, 15.0)
    by_hand = 9700.0 * 1.108 / 1000.0 * 53.06 / 1000.0
    assert MODEL["co2_kg_per_mmbtu"] == 53.06 and by_hand == pytest.approx(0.57026, abs=1e-5)
    assert r["co2_t"] / r["turbine_energy_mwh"] == pytest.approx(by_hand, rel=1e-9)
    # the old mix of an LHV heat rate with the HHV factor gave 9.7 × 53.06 = 0.515 t/MWh, ≈10 % low
    assert r["co2_t"] / r["turbine_energy_mwh"] > 1.1 * 9.7 * 53.06 / 1000.0


def test_nox_below_and_above_the_dle_turndown(plant, site):
    """p_min_frac 0.4: at 50 % load the premix factor, at 30 % the below-turndown one, per MMBtu HHV."""
    above, p_av = _one_hour(plant, site, 0.5, 25.0)
    below, _ = _one_hour(plant, site, 0.3, 25.0)
    assert MODEL["p_min_frac"] == 0.4
    fuel_above = _fuel_one_hour(0.5, 25.0, p_av)
    fuel_below = _fuel_one_hour(0.3, 25.0, p_av)
    assert above["nox_t"] == pytest.approx(fuel_above * MODEL["nox_kg_per_mmbtu"] / 1000.0, rel=1e-9)
    assert below["nox_t"] == pytest.approx(fuel_below * MODEL["nox_below_min_kg_per_mmbtu"] / 1000.0, rel=1e-9)
    # less power, more NOx: the combustor is out of its lean-premix mode
    assert below["nox_t"] > 2.0 * above["nox_t"]


def test_kpis_need_the_site_for_turbine_factors(plant):
    with pytest.raises(TypeError, match="site="):
        KpiAccumulator(plant, 1.0)


def test_a_stopped_unit_burns_nothing(plant, site):
    k = KpiAccumulator(plant, 1.0, site=site)
    k.update(_segment(plant, 600))
    assert k.result()["fuel_mmbtu"] == 0.0


def test_energy_integrals_pue_and_extremes(plant, site):
    n = 7200
    f = np.full((n, plant.n_island), 60.0)
    f[1000, 0] = 59.5
    f[2000, 0] = 60.2
    unserved = np.zeros((n, plant.n_island))
    unserved[3600:, 0] = 5.0  # 5 MW for an hour
    t_gpu = np.full((n, len(plant.hall)), 60.0)
    limit = plant.hall[0, H_T_SLOW_C]
    t_gpu[4000:, 0] = limit + 1.0
    f_lo = f.copy()
    f_lo[1500, 0] = 59.4  # a sub-second nadir that the end-of-step samples miss
    f_hi = f.copy()
    f_hi[2500, 0] = 60.3
    k = KpiAccumulator(plant, 1.0, t_ref_s=1000.0, site=site)
    pairs = (("f_hz", f), ("f_min_hz", f_lo), ("f_max_hz", f_hi), ("p_unserved_mw", unserved), ("t_gpu_c", t_gpu))
    k.update(_segment(plant, n // 2, **{key: v[: n // 2] for key, v in pairs}))
    k.update(_segment(plant, n - n // 2, **{key: v[n // 2:] for key, v in pairs}))
    r = k.result()
    isl = plant.names["island"][0]
    assert r["unserved_energy_mwh"] == pytest.approx(5.0)
    # nadir and peak come from the sub-step extremes, not from the end-of-step samples
    assert r["f_min_hz"][isl] == pytest.approx(59.4) and r["f_max_hz"][isl] == pytest.approx(60.3)
    assert r["time_to_gpu_limit_s"] == pytest.approx(3000.0)  # first over at t = 4000 s, 1000 s after the event
    n_h = len(plant.hall)
    assert r["pue"] == pytest.approx((10.0 * n_h + 2.0 * n_h + 0.1 * plant.n_island) / (10.0 * n_h))
    assert r["horizon_h"] == pytest.approx(2.0)
    assert r["loading_max_pct"] == 40.0 and r["vm_min_pu"] == 1.0


def test_gpu_hours_lost_count_throttle_and_shedding(plant, site):
    n = 3600
    n_h = len(plant.hall)
    thr = np.full((n, n_h), 0.75)
    p_it = np.full((n, n_h), 8.0)
    shed = np.full((n, n_h), 2.0)  # a fifth of the 10 MW demand shed
    k = KpiAccumulator(plant, 1.0, site=site)
    k.update(_segment(plant, n, throttle=thr, p_it_mw=p_it, p_shed_mw=shed))
    lost = (1 - 0.75) + 0.75 * 0.2
    assert k.result()["gpu_hours_lost"] == pytest.approx(lost * plant.hall[:, H_N_GPU].sum())
