"""grid_models.sparse_lu and the sparse time series: against scipy's sparse solve, the dense kernel,
the numpy twin and pandapower.runpp."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandapower as pp
import pytest
import scipy.sparse.linalg as spla

from benchmarks.profiles import campus_profile
from grid_models import sparse_lu
from grid_models.compile import compile_net
from grid_models.newton import jacobian, numbering
from grid_models.powerflow import LoadFlowState, solve
from grid_models.timeseries import bus_injections, solve_timeseries
from tests.grid_models.test_powerflow import pandapower_case

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)


def _solved(case: str, distributed: bool = False):
    net = pandapower_case(case)
    arrays = compile_net(copy.deepcopy(net), distributed_slack=distributed)
    first = solve(arrays, tolerance_mva=1e-8 * arrays.base_mva)
    assert first.converged
    slack0 = np.where(arrays.island_slack_col >= 0, first.slack_mw, 0.0) / arrays.base_mva
    return net, arrays, LoadFlowState.start(arrays, first.vm_pu, first.va_degree, slack0)


@pytest.mark.parametrize("case,distributed,ordering", [("case118", True, "bus"), ("case118", True, "threshold"),
                                                       ("case1354pegase", False, "bus")])
def test_refactor_and_solve_match_scipy_at_another_point(case, distributed, ordering, monkeypatch):
    """Pivots and patterns fixed at one point, factors recomputed at a point 2 % / 3° away: the solve
    equals scipy's ``spsolve`` of the Jacobian built by the numpy twin there. With the bus-by-bus
    ordering (taken on these cases), and with the threshold-pivoted one it falls back to when a diagonal
    pivot is too small (here forced: every pivot would have to be its column's largest)."""
    _, a, st = _solved(case, distributed)
    if ordering == "threshold":
        monkeypatch.setattr(sparse_lu, "PIVOT_TOL", 1.0)
    isl = sparse_lu.sparse_islands(a, 0)
    sps = sparse_lu.analyse(a, st.v, isl)
    slots = sps.slot[:int(a.island_dim[0])]
    # the bus ordering leaves an empty slot beside each bus with one unknown; the fallback pairs positions
    assert np.array_equal(slots, np.arange(len(slots))) == (ordering == "threshold")
    rng = np.random.default_rng(1)
    v2 = st.v * (1 + 0.02 * rng.standard_normal(a.n_bus)) * np.exp(0.05j * rng.standard_normal(a.n_bus))
    jac = jacobian(a, v2, numbering(a)).tocsc()
    dim = int(a.island_dim[0])
    sparse_lu.jacobian_fill(0, dim, a.ybus_indptr, a.ybus_indices, a.ybus_data, v2, a.bus_slack_weight,
                            a.island_bus_ptr, a.island_buses, a.bus_p_row, a.bus_q_row, tuple(sps))
    work = np.zeros(dim)
    assert sparse_lu.refactor(0, dim, tuple(sps), work)
    f = rng.standard_normal(dim)
    dx = np.zeros(dim)
    sparse_lu.solve(0, dim, tuple(sps), f, dx, work)
    ref = spla.spsolve(jac[:dim, :dim], f)
    assert np.abs(dx - ref).max() <= 1e-9 * np.abs(ref).max()
    # the permuted pattern holds exactly the Jacobian's entries (nothing dropped, nothing invented)
    assert len(sps.a_val) >= jac[:dim, :dim].count_nonzero()


@pytest.mark.parametrize("case,distributed", [("case118", True), ("case300", False)])
def test_sparse_time_series_equals_dense_and_twin(case, distributed):
    """The same series with every island sparse, every island dense (case118; case300's 530 rows are
    above DENSE_MAX_DIM, so it stays sparse) and the scipy twin."""
    _, a, st = _solved(case, distributed)
    p, q = bus_injections(a, **campus_profile(a, 0, 40, seed=2))
    tol = 1e-8 * a.base_mva
    sparse = solve_timeseries(a, p, q, state=st.copy(), tolerance_mva=tol, sparse_min_dim=0)
    others = [solve_timeseries(a, p, q, state=st.copy(), tolerance_mva=tol, solver="numpy")]
    if a.island_dim.max() <= sparse_lu.DENSE_MAX_DIM:
        others.append(solve_timeseries(a, p, q, state=st.copy(), tolerance_mva=tol, sparse_min_dim=10 ** 9))
        assert not others[-1].state.sparse.is_sparse.any()
    else:  # no dense room: sparse whatever is asked
        assert solve_timeseries(a, p[:1], q[:1], state=st.copy(), sparse_min_dim=10 ** 9).state.sparse.is_sparse.all()
    assert sparse.converged.all() and all(o.converged.all() for o in others)
    for other in others:
        np.testing.assert_allclose(sparse.vm_pu, other.vm_pu, atol=1e-9, rtol=0)
        np.testing.assert_allclose(sparse.va_degree, other.va_degree, atol=1e-6, rtol=0)
        np.testing.assert_allclose(sparse.p_from_mw, other.p_from_mw, atol=1e-5, rtol=0)
    assert sparse.factorisations < len(p)  # the chord method reuses the sparse factors


def test_state_keeps_its_analysis_between_chunks():
    _, a, st = _solved("case300")
    p, q = bus_injections(a, **campus_profile(a, 0, 20))
    whole = solve_timeseries(a, p, q, state=st.copy(), sparse_min_dim=0)
    first = solve_timeseries(a, p[:10], q[:10], state=st.copy(), sparse_min_dim=0)
    analysis = first.state.sparse
    second = solve_timeseries(a, p[10:], q[10:], state=first.state, sparse_min_dim=0)
    assert second.state.sparse.a_ptr is analysis.a_ptr  # not analysed again
    np.testing.assert_allclose(np.r_[first.vm_pu, second.vm_pu], whole.vm_pu, atol=1e-9, rtol=0)
    # a different split re-analyses instead of reading factors that do not exist
    _, a, st = _solved("case118")
    p, q = bus_injections(a, **campus_profile(a, 0, 20))
    first = solve_timeseries(a, p[:10], q[:10], state=st.copy(), sparse_min_dim=0)
    dense = solve_timeseries(a, p[10:], q[10:], state=first.state.copy(), sparse_min_dim=10 ** 9)
    sparse = solve_timeseries(a, p[10:], q[10:], state=first.state.copy(), sparse_min_dim=0)
    assert not dense.state.sparse.is_sparse.any()
    np.testing.assert_allclose(dense.vm_pu, sparse.vm_pu, atol=1e-9, rtol=0)


def test_large_net_time_series_matches_runpp_at_the_last_step():
    """case1354pegase (2,447 Jacobian rows, sparse): |Δvm| ≤ 1e-8 pu against runpp at the last step."""
    net, a, st = _solved("case1354pegase")
    assert sparse_lu.sparse_islands(a).all()
    prof = campus_profile(a, 0, 30)
    p, q = bus_injections(a, **prof)
    res = solve_timeseries(a, p, q, state=st, tolerance_mva=1e-8 * a.base_mva)
    assert res.converged.all()
    ref = copy.deepcopy(net)
    ref.load["p_mw"], ref.load["q_mvar"], ref.load["scaling"] = prof["load_p_mw"][-1], prof["load_q_mvar"][-1], 1.0
    ref.gen["p_mw"], ref.gen["scaling"] = prof["gen_p_mw"][-1], 1.0
    pp.runpp(ref, lightsim2grid=False, tolerance_mva=1e-10, max_iteration=30)
    assert np.abs(res.vm_pu[-1] - ref.res_bus.vm_pu.to_numpy()).max() <= 1e-8
    assert np.abs(res.va_degree[-1] - ref.res_bus.va_degree.to_numpy()).max() <= 1e-6


def test_dense_numba_snapshot_refuses_a_state_without_dense_room():
    _, a, st = _solved("case1354pegase")  # a state from LoadFlowState.start: no dense room above DENSE_MAX_DIM
    with pytest.raises(ValueError, match="factorises dense"):
        solve(a, init=st, solver="numba")


def test_a_net_is_analysed_once_and_every_state_has_its_own_factors():
    """A second state of the same compiled net reuses the first one's ordering and patterns (no second
    analysis) but gets its own numeric factors: both series equal a series whose state was analysed anew."""
    import grid_models.timeseries as ts

    _, a, st = _solved("case118")
    p, q = bus_injections(a, **campus_profile(a, 0, 15))
    first = solve_timeseries(a, p, q, state=st.copy(), sparse_min_dim=0)
    second = solve_timeseries(a, p, q, state=st.copy(), sparse_min_dim=0)
    assert second.state.sparse.a_ptr is first.state.sparse.a_ptr  # the same analysis
    assert second.state.sparse.l_val is not first.state.sparse.l_val  # independent factors
    ts._PLANS.clear()  # forget the analysis: a new one at the same point
    anew = solve_timeseries(a, p, q, state=st.copy(), sparse_min_dim=0)
    assert anew.state.sparse.a_ptr is not first.state.sparse.a_ptr
    for res in (first, second):
        np.testing.assert_array_equal(res.vm_pu, anew.vm_pu)
    # a recompiled net (other arrays) is analysed for itself
    _, b, st_b = _solved("case118")
    other = solve_timeseries(b, p, q, state=st_b.copy(), sparse_min_dim=0)
    assert other.state.sparse.a_ptr is not anew.state.sparse.a_ptr
    np.testing.assert_allclose(other.vm_pu, anew.vm_pu, atol=1e-12, rtol=0)
