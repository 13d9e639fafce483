"""Reserve and N-1 margins against hand sums on the reference campus."""

from __future__ import annotations

import numpy as np
import pytest

from sites import load_site
from twin.margins import reserve_margins
from twin.plant import compile_plant
from twin.turbines import derate_factor


def test_margins_by_hand():
    site = load_site("colossus1")
    plant = compile_plant(site)
    n_t, n_b, n_g = len(plant.turb), len(plant.bess), len(plant.grid)
    load = np.array([300.0])
    online = np.ones(n_t, bool)
    online[0] = False
    m = reserve_margins(plant, load_mw=load, t_amb_c=35.0, turbine_online=online, bess_available=np.ones(n_b, bool),
                        grid_closed=np.ones(n_g, bool), bess_soc=np.full(n_b, 0.8))[0]
    unit = site.turbine_model(site.turbines[0])
    turb = 11 * unit.p_iso_mw * derate_factor.py_func(35.0, unit.derate_per_c)
    assert m.turbine_capacity_mw == pytest.approx(turb)
    assert m.grid_capacity_mw == 150.0 and m.bess_capacity_mw == pytest.approx(site.bess[0].p_mw)
    assert m.reserve_margin == pytest.approx((turb + 150.0 + site.bess[0].p_mw - 300.0) / 300.0)
    assert m.largest_unit == "colossus1/megapack"  # 164 MW of Megapacks > the 150 MW tie > one SMT-130
    assert m.n1_margin == pytest.approx((turb + 150.0 - 300.0) / 300.0)
    # an empty battery and an open tie leave the turbines; the largest unit is then one turbine
    m2 = reserve_margins(plant, load_mw=load, t_amb_c=35.0, turbine_online=online, bess_available=np.ones(n_b, bool),
                         grid_closed=np.zeros(n_g, bool), bess_soc=np.full(n_b, 0.05))[0]
    assert m2.capacity_mw == pytest.approx(turb) and m2.largest_unit.startswith("colossus1/smt130")
    assert m2.n1_margin == pytest.approx((turb * 10 / 11 - 300.0) / 300.0)
    none = reserve_margins(plant, load_mw=np.zeros(1), t_amb_c=35.0, turbine_online=online, bess_available=np.ones(n_b, bool),
                           grid_closed=np.ones(n_g, bool))[0]
    assert np.isnan(none.reserve_margin) and np.isnan(none.n1_margin)
