"""The detailed campus variant (Colossus 2 to its MV feeders, ring main units and unit substations)."""

from __future__ import annotations

import copy
import warnings

import numpy as np

from twin.operating_point import nominal_net
from grid_models.compile import compile_net
from grid_models.powerflow import runpf
from grid_models.reference import runpp_by_island
from grid_models.sparse_lu import sparse_islands
from sites import load_site

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)


def test_detailed_colossus2_has_feeders_rmus_and_unit_substations():
    base, detailed = load_site("colossus2"), load_site("colossus2:detailed")
    assert len(detailed.buses) - len(base.buses) == 220  # 110 RMUs and their LV boards
    assert len(detailed.halls) == 80 and sum(h.gpu_count for h in detailed.halls) == sum(h.gpu_count for h in base.halls)
    assert len(detailed.chillers) == len(base.chillers)
    added = {x.id for x in detailed.lines + detailed.transformers + detailed.buses} - \
        {x.id for x in base.lines + base.transformers + base.buses}
    for comp in detailed.lines + detailed.transformers + detailed.buses:
        if comp.id in added:
            assert comp.assumption, comp.id  # every added number is a stated assumption
    lv = [b for b in detailed.buses if b.id.endswith("-lv")]
    assert {h.bus for h in detailed.halls} | {c.bus for c in detailed.chillers} <= {b.id for b in lv}


def test_detailed_campus_load_flow_matches_runpp_and_goes_sparse():
    net = nominal_net(load_site("memphis:detailed"))
    assert len(net.bus) > 250
    ref = copy.deepcopy(net)
    runpp_by_island(ref)
    res = runpf(net, distributed_slack=True)
    assert res.converged
    np.testing.assert_allclose(net.res_bus.vm_pu, ref.res_bus.vm_pu, atol=1e-8)
    np.testing.assert_allclose(net.res_line.loading_percent, ref.res_line.loading_percent, atol=1e-5)
    assert sparse_islands(compile_net(net, distributed_slack=True)).any()  # the time series factorises it sparse
    assert ref.res_bus.vm_pu.min() > 0.95 and ref.res_trafo.loading_percent.max() < 100.0
