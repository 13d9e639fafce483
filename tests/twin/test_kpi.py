"""KPIs (twin.kpi) on hand-made segments, against hand-computed values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sites import load_site
from twin.kpi import KpiAccumulator
from twin.plant import H_N_GPU, H_T_SLOW_C, compile_plant

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def plant():
    return compile_plant(load_site(DATA / "minimal_site.toml"))


def _segment(plant, n, **over):
    n_h, n_t, n_b, n_i = len(plant.hall), len(plant.turb), len(plant.bess), plant.n_island
    n_bus, n_br = 4, 3
    seg = {
        "p_it_mw": np.full((n, n_h), 10.0), "p_cooling_mw": np.full((n, n_h), 2.0), "t_gpu_c": np.full((n, n_h), 60.0),
        "t_coolant_c": np.full((n, n_h), 30.0), "throttle": np.ones((n, n_h)), "p_shed_mw": np.zeros((n, n_h)),
        "p_turbine_mw": np.zeros((n, n_t)), "soc_bess": np.full((n, n_b), 0.5), "f_hz": np.full((n, n_i), 60.0),
        "rocof_hz_s": np.zeros((n, n_i)), "p_unserved_mw": np.zeros((n, n_i)), "p_loss_mw": np.full((n, n_i), 0.1),
        "vm_pu": np.ones((n, n_bus)), "loading_pct": np.full((n, n_br), 40.0), "turbine_starts": np.zeros(n),
        "t_amb_c": np.full(n, 15.0),
    }
    seg.update(over)
    return seg


def test_fuel_energy_and_emissions_match_the_heat_rate_line(plant):
    """A unit at half its derated rating for an hour burns HR_full·P_av·(Wfnl + (1 − Wfnl)/2) (PHYSICS.md §3)."""
    n = 3600
    t_amb = 35.0
    p_iso = 16.48
    p_av = p_iso * (1.0 - 0.008 * (t_amb - 15.0))
    pt = np.zeros((n, len(plant.turb)))
    pt[:, 0] = 0.5 * p_av
    k = KpiAccumulator(plant, 1.0)
    k.update(_segment(plant, n, p_turbine_mw=pt, t_amb_c=np.full(n, t_amb)))
    r = k.result()
    wfnl = 0.2  # the schema's default, not set in minimal_site.toml
    fuel = 9700.0 * p_av * 1e3 * (wfnl + (1 - wfnl) * 0.5) * 1e-6  # Btu/kWh · kW · h → MMBtu
    assert r["fuel_mmbtu"] == pytest.approx(fuel, rel=1e-9)
    assert r["co2_t"] == pytest.approx(fuel * 53.06 / 1000.0, rel=1e-9)
    assert r["nox_t"] == pytest.approx(0.5 * p_av * 0.43 / 1000.0, rel=1e-9)  # 1 h at 0.5·P_av MW


def test_a_stopped_unit_burns_nothing(plant):
    k = KpiAccumulator(plant, 1.0)
    k.update(_segment(plant, 600))
    assert k.result()["fuel_mmbtu"] == 0.0


def test_energy_integrals_pue_and_extremes(plant):
    n = 7200
    f = np.full((n, plant.n_island), 60.0)
    f[1000, 0] = 59.5
    f[2000, 0] = 60.2
    unserved = np.zeros((n, plant.n_island))
    unserved[3600:, 0] = 5.0  # 5 MW for an hour
    t_gpu = np.full((n, len(plant.hall)), 60.0)
    limit = plant.hall[0, H_T_SLOW_C]
    t_gpu[4000:, 0] = limit + 1.0
    k = KpiAccumulator(plant, 1.0, t_ref_s=1000.0)
    k.update(_segment(plant, n // 2, **{key: v[: n // 2] for key, v in (("f_hz", f), ("p_unserved_mw", unserved), ("t_gpu_c", t_gpu))}))
    k.update(_segment(plant, n - n // 2, **{key: v[n // 2:] for key, v in (("f_hz", f), ("p_unserved_mw", unserved), ("t_gpu_c", t_gpu))}))
    r = k.result()
    isl = plant.names["island"][0]
    assert r["unserved_energy_mwh"] == pytest.approx(5.0)
    assert r["f_min_hz"][isl] == pytest.approx(59.5) and r["f_max_hz"][isl] == pytest.approx(60.2)
    assert r["time_to_gpu_limit_s"] == pytest.approx(3000.0)  # first over at t = 4000 s, 1000 s after the event
    n_h = len(plant.hall)
    assert r["pue"] == pytest.approx((10.0 * n_h + 2.0 * n_h + 0.1 * plant.n_island) / (10.0 * n_h))
    assert r["horizon_h"] == pytest.approx(2.0)
    assert r["loading_max_pct"] == 40.0 and r["vm_min_pu"] == 1.0


def test_gpu_hours_lost_count_throttle_and_shedding(plant):
    n = 3600
    n_h = len(plant.hall)
    thr = np.full((n, n_h), 0.75)
    p_it = np.full((n, n_h), 8.0)
    shed = np.full((n, n_h), 2.0)  # a fifth of the 10 MW demand shed
    k = KpiAccumulator(plant, 1.0)
    k.update(_segment(plant, n, throttle=thr, p_it_mw=p_it, p_shed_mw=shed))
    lost = (1 - 0.75) + 0.75 * 0.2
    assert k.result()["gpu_hours_lost"] == pytest.approx(lost * plant.hall[:, H_N_GPU].sum())
