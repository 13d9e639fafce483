"""grid_models.solve_timeseries: against pandapower.runpp at sampled steps, and against its numpy twin.

Acceptance (issue 3): a day (86,400 one-second steps) of the reference campus agrees with ``runpp``
at 20 sampled steps to max |Δvm| ≤ 1e-6 pu, |Δva| ≤ 1e-4 degree, loading within 1e-3 points.
"""

from __future__ import annotations

import copy
import time
import warnings

import numpy as np
import pytest

from benchmarks.profiles import CAMPUS, campus_profile, net_at_step
from grid_models.compile import compile_net
from grid_models.powerflow import solve
from grid_models.reference import runpp_by_island
from grid_models.timeseries import bus_injections, solve_timeseries
from tests.grid_models.test_powerflow import LOADING_TOL_PCT, VA_TOL_DEG, VM_TOL_PU, site_net, synthetic_net

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

DAY_S = 86_400
CHUNK_S = 3_600


@pytest.fixture(scope="module")
def campus():
    net, _ = site_net(CAMPUS)
    return net, compile_net(net, distributed_slack=True)


def reference_at(net, arrays, prof: dict[str, np.ndarray], k: int):
    """``runpp`` (island by island, distributed slack where islanded) on the net set to step ``k``."""
    ref = net_at_step(net, prof, k)
    runpp_by_island(ref)
    return ref


class IslandReference:
    """``runpp_by_island`` with the island sub-nets cut once (``select_subnet`` is its slow part).

    Same rules: each island solved alone by ``pandapower.runpp(lightsim2grid=False,
    tolerance_mva=1e-10)``, with ``distributed_slack`` where it has no ext_grid and weighted gens.
    """

    def __init__(self, net):
        from pandapower.toolbox import select_subnet

        from grid_models.reference import island_buses

        self.net = net
        self.subs = []
        for buses in island_buses(net):
            sub = select_subnet(net, buses, include_results=False, keep_everything_else=False)
            has_ext = bool(len(sub.ext_grid) and sub.ext_grid.in_service.any())
            has_gen = bool(len(sub.gen) and sub.gen.in_service.any())
            if not (has_ext or has_gen):
                continue
            weighted = has_gen and not has_ext and bool((sub.gen.slack_weight.fillna(0) * sub.gen.in_service).abs().sum() > 0)
            self.subs.append((sub, weighted))

    def at(self, prof: dict[str, np.ndarray], k: int):
        import pandas as pd
        import pandapower as pp

        parts = {t: [] for t in ("res_bus", "res_line", "res_trafo")}
        for sub, weighted in self.subs:
            rows = self.net.load.index.get_indexer(sub.load.index)
            sub.load["p_mw"] = prof["load_p_mw"][k][rows]
            sub.load["q_mvar"] = prof["load_q_mvar"][k][rows]
            sub.load["scaling"] = 1.0
            if len(sub.gen):
                sub.gen["p_mw"] = prof["gen_p_mw"][k][self.net.gen.index.get_indexer(sub.gen.index)]
                sub.gen["scaling"] = 1.0
            pp.runpp(sub, distributed_slack=weighted, tolerance_mva=1e-10, max_iteration=30, lightsim2grid=False)
            for t in parts:
                if len(sub[t]):
                    parts[t].append(sub[t])
        out = copy.copy(self.net)
        for t, element in (("res_bus", "bus"), ("res_line", "line"), ("res_trafo", "trafo")):
            out[t] = pd.concat(parts[t]).reindex(self.net[element].index)
        return out


def compare_step(arrays, res, row: int, ref) -> dict[str, float]:
    """Largest deviations of one time-series row from a solved pandapower net."""
    vm = ref.res_bus.vm_pu.to_numpy()
    va = ref.res_bus.va_degree.to_numpy()
    ok = np.isfinite(vm)
    loading = np.r_[ref.res_line.loading_percent.to_numpy(), ref.res_trafo.loading_percent.to_numpy()]
    rows = np.r_[arrays.line_branch, arrays.trafo_branch]
    assert np.isfinite(res.vm_pu[row][ok]).all()
    return {
        "vm_pu": float(np.max(np.abs(res.vm_pu[row][ok] - vm[ok]))),
        "va_degree": float(np.max(np.abs(res.va_degree[row][ok] - va[ok]))),
        "loading_percent": float(np.nanmax(np.abs(res.loading_percent[row][rows] - loading))),
        "p_from_mw": float(np.nanmax(np.abs(res.p_from_mw[row][arrays.line_branch] - ref.res_line.p_from_mw.to_numpy()))),
    }


def test_a_day_of_the_campus_matches_runpp_at_20_sampled_steps(campus):
    """86,400 steps in 24 chunks of an hour (state carried over), 20 steps checked against runpp."""
    net, arrays = campus
    rng = np.random.default_rng(20)
    samples = np.sort(np.r_[0, DAY_S - 1, rng.choice(np.arange(1, DAY_S - 1), 18, replace=False)])
    state = None
    reference = IslandReference(net)
    errors, checked, n_conv, n_fact = [], 0, 0, 0
    cross_checked = False
    t_solve = 0.0
    for start in range(0, DAY_S, CHUNK_S):
        prof = campus_profile(arrays, start, CHUNK_S)
        p, q = bus_injections(arrays, **prof)
        t0 = time.perf_counter()
        res = solve_timeseries(arrays, p, q, state=state)
        t_solve += time.perf_counter() - t0
        state = res.state
        n_conv += int(res.converged.sum())
        n_fact += res.factorisations
        for k in samples[(samples >= start) & (samples < start + CHUNK_S)] - start:
            ref = reference.at(prof, k)
            if not cross_checked:  # the cached sub-nets give exactly runpp_by_island's answer
                full = reference_at(net, arrays, prof, k)
                np.testing.assert_allclose(ref.res_bus.vm_pu, full.res_bus.vm_pu, atol=1e-12)
                np.testing.assert_allclose(ref.res_line.loading_percent, full.res_line.loading_percent, atol=1e-9)
                cross_checked = True
            errors.append(compare_step(arrays, res, k, ref))
            checked += 1
    assert checked == 20
    assert cross_checked
    assert n_conv == DAY_S
    worst = {key: max(e[key] for e in errors) for key in errors[0]}
    print(f"\nday of {CAMPUS}: {DAY_S / t_solve:,.0f} steps/s, {n_fact} factorisations, worst vs runpp {worst}")
    assert worst["vm_pu"] <= VM_TOL_PU
    assert worst["va_degree"] <= VA_TOL_DEG
    assert worst["loading_percent"] <= LOADING_TOL_PCT
    assert worst["p_from_mw"] <= 1e-5


def test_slack_is_what_the_machines_pick_up(campus):
    net, arrays = campus
    prof = campus_profile(arrays, 500, 10)
    p, q = bus_injections(arrays, **prof)
    res = solve_timeseries(arrays, p, q)
    ref = reference_at(net, arrays, prof, 7)
    for isl in range(arrays.n_island):
        buses = arrays.island_buses[arrays.island_bus_ptr[isl]:arrays.island_bus_ptr[isl + 1]]
        pp_rows = np.flatnonzero(np.isin(arrays.pp_bus_internal, buses))
        gens = np.isin(net.gen.bus.to_numpy(), net.bus.index[pp_rows]) & net.gen.in_service.to_numpy()
        eg = np.isin(net.ext_grid.bus.to_numpy(), net.bus.index[pp_rows]) & net.ext_grid.in_service.to_numpy()
        pick_up = (ref.res_gen.p_mw.to_numpy()[gens] - prof["gen_p_mw"][7][gens]).sum() + ref.res_ext_grid.p_mw[eg].sum()
        assert res.slack_mw[7, isl] == pytest.approx(pick_up, abs=1e-6)


@pytest.mark.parametrize("which", ["campus", "synthetic"])
def test_numba_kernel_matches_numpy_twin(campus, which):
    if which == "campus":
        arrays = campus[1]
    else:
        arrays = compile_net(synthetic_net(), distributed_slack=True)
    prof = campus_profile(arrays, 1000, 40, seed=3)
    p, q = bus_injections(arrays, **prof)
    start = solve_timeseries(arrays, p[:1], q[:1]).state
    nb = solve_timeseries(arrays, p, q, state=start.copy(), solver="numba")
    tw = solve_timeseries(arrays, p, q, state=start.copy(), solver="numpy")
    assert nb.converged.all() and tw.converged.all()
    # both stop below 1e-8 MVA of mismatch, not at the same iterate: agreement to that level
    tolerances = {"vm_pu": 1e-8, "va_degree": 1e-6, "p_from_mw": 1e-6, "q_from_mvar": 1e-6, "p_to_mw": 1e-6,
                  "q_to_mvar": 1e-6, "i_ka": 1e-8, "loading_percent": 1e-6}
    for key, atol in tolerances.items():
        a, b = getattr(nb, key), getattr(tw, key)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=key)
        np.testing.assert_allclose(a, b, atol=atol, rtol=0, equal_nan=True, err_msg=key)
    np.testing.assert_allclose(nb.slack_mw, tw.slack_mw, atol=1e-7, equal_nan=True)
    assert (nb.max_mismatch_mva < 1e-8).all() and (tw.max_mismatch_mva < 1e-8).all()
    assert nb.factorisations < len(p)  # the chord method reuses factors


def test_chunks_continue_where_the_last_one_stopped(campus):
    _, arrays = campus
    p, q = bus_injections(arrays, **campus_profile(arrays, 0, 600))
    whole = solve_timeseries(arrays, p, q)
    first = solve_timeseries(arrays, p[:1], q[:1])
    a = solve_timeseries(arrays, p[1:300], q[1:300], state=first.state)
    b = solve_timeseries(arrays, p[300:], q[300:], state=a.state)
    np.testing.assert_allclose(np.r_[first.vm_pu, a.vm_pu, b.vm_pu], whole.vm_pu, atol=1e-10)
    np.testing.assert_allclose(np.r_[first.loading_percent, a.loading_percent, b.loading_percent],
                               whole.loading_percent, atol=1e-7)


def test_bus_injections_of_nominal_values_are_the_compiled_injections():
    net = synthetic_net()
    arrays = compile_net(net, distributed_slack=True)
    p, q = bus_injections(arrays, n_steps=3)
    assert p.shape == (3, len(net.bus))
    live = arrays.pp_bus_internal >= 0
    p_int = np.zeros(arrays.n_bus)
    q_int = np.zeros(arrays.n_bus)
    np.add.at(p_int, arrays.pp_bus_internal[live], p[1, live])
    np.add.at(q_int, arrays.pp_bus_internal[live], q[1, live])
    np.testing.assert_allclose(p_int, arrays.p_mw, atol=1e-12)
    np.testing.assert_allclose(q_int, arrays.q_mvar, atol=1e-12)
    # and a one-step series is the runpf operating point
    res = solve_timeseries(arrays, p[:1], q[:1])
    one = solve(arrays)
    live_pp = arrays.pp_bus_internal[live]
    np.testing.assert_allclose(res.vm_pu[0, live], one.vm_pu[live_pp], atol=1e-10)
    assert np.isnan(res.vm_pu[0, ~live]).all()


def test_element_sum_kernel_matches_its_twin(campus):
    _, arrays = campus
    prof = campus_profile(arrays, 123, 64, seed=5)
    prof["gen_p_mw"] = prof["gen_p_mw"][7]  # a constant profile for one table
    nb = bus_injections(arrays, **prof)
    tw = bus_injections(arrays, **prof, kernel=False)
    for a, b in zip(nb, tw):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-9)
    # every active load lands on its bus with the consumption sign
    k = int(np.flatnonzero(arrays.load_active)[0])
    only = {"load_p_mw": np.zeros_like(prof["load_p_mw"]), "load_q_mvar": np.zeros_like(prof["load_q_mvar"]),
            "gen_p_mw": np.zeros(len(arrays.gen_p_mw))}
    only["load_p_mw"][:, k] = 2.0
    p, _ = bus_injections(arrays, **only)
    assert p[:, arrays.load_pp_bus[k]] == pytest.approx(-2.0) and np.count_nonzero(p) == len(p)


def test_a_collapsing_step_is_reported_and_the_series_recovers(campus):
    """Loads × 20 for one step: that step is not converged (NaN, no exception), the next ones are."""
    _, arrays = campus
    prof = campus_profile(arrays, 0, 30)
    prof["load_p_mw"][10] *= 20
    prof["load_q_mvar"][10] *= 20
    p, q = bus_injections(arrays, **prof)
    t0 = time.perf_counter()
    res = solve_timeseries(arrays, p, q, max_iteration=20)
    assert time.perf_counter() - t0 < 1.0
    assert not res.converged[10]
    assert res.converged[:10].all() and res.converged[11:].all()
    # islands that collapse are NaN; the one-bus island held by its own ext_grid still has a voltage
    sizes = np.diff(arrays.island_bus_ptr)
    trivial = np.isin(arrays.pp_bus_internal, arrays.island_buses[np.repeat(sizes == 1, sizes)])
    assert trivial.sum() == 1
    assert np.isnan(res.vm_pu[10][~trivial]).all() and np.isfinite(res.vm_pu[10][trivial]).all()
    assert np.isnan(res.loading_percent[10]).all()
    clean = campus_profile(arrays, 0, 30)
    p2, q2 = bus_injections(arrays, **clean)
    ref = solve_timeseries(arrays, p2, q2)
    np.testing.assert_allclose(res.vm_pu[11:], ref.vm_pu[11:], atol=1e-9)


def test_float32_outputs_and_no_branch_flows(campus):
    _, arrays = campus
    p, q = bus_injections(arrays, **campus_profile(arrays, 0, 50))
    full = solve_timeseries(arrays, p, q)
    small = solve_timeseries(arrays, p, q, dtype=np.float32, branch_flows=False)
    assert small.vm_pu.dtype == np.float32 and small.loading_percent is None
    np.testing.assert_allclose(small.vm_pu, full.vm_pu, atol=1e-6, equal_nan=True)


def test_bad_shapes_are_refused(campus):
    _, arrays = campus
    with pytest.raises(ValueError):
        solve_timeseries(arrays, np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError):
        bus_injections(arrays, load_p_mw=np.zeros((2, 3)))
    other = compile_net(synthetic_net(), distributed_slack=True)
    p, q = bus_injections(arrays, n_steps=2)
    with pytest.raises(ValueError, match="state"):
        solve_timeseries(arrays, p, q, state=solve_timeseries(other, *bus_injections(other)).state)


def test_loading_mode_equals_the_full_flows(campus):
    """branch_flows="loading": p_from/p_to/loading as the full mode (to round-off), the rest None."""
    _, arrays = campus
    prof = campus_profile(arrays, 0, 60)
    prof["load_p_mw"][20] *= 20  # a failed step: NaN rows in both modes
    prof["load_q_mvar"][20] *= 20
    p, q = bus_injections(arrays, **prof)
    start = solve_timeseries(arrays, p[:1], q[:1]).state
    full = solve_timeseries(arrays, p, q, state=start.copy())
    lean = solve_timeseries(arrays, p, q, state=start.copy(), branch_flows="loading")
    assert not full.converged[20] and not lean.converged[20]
    assert lean.q_from_mvar is None and lean.q_to_mvar is None and lean.i_ka is None
    np.testing.assert_array_equal(lean.vm_pu, full.vm_pu)
    np.testing.assert_array_equal(lean.p_from_mw, full.p_from_mw)
    np.testing.assert_array_equal(lean.p_to_mw, full.p_to_mw)
    np.testing.assert_array_equal(np.isnan(lean.loading_percent), np.isnan(full.loading_percent))
    np.testing.assert_allclose(lean.loading_percent, full.loading_percent, rtol=1e-13, atol=1e-12, equal_nan=True)
    twin = solve_timeseries(arrays, p, q, state=start.copy(), branch_flows="loading", solver="numpy")
    assert twin.i_ka is None
    np.testing.assert_allclose(twin.loading_percent, lean.loading_percent, atol=1e-6, equal_nan=True)
    with pytest.raises(ValueError, match="branch_flows"):
        solve_timeseries(arrays, p, q, branch_flows="all")


def test_reused_outputs_equal_fresh_ones(campus):
    """out=: chunk after chunk into the same arrays gives what fresh arrays give; other shapes allocate anew."""
    _, arrays = campus
    prof = campus_profile(arrays, 0, 90)
    prof["load_p_mw"][50] *= 20  # a failed step in the second chunk: its NaN rows must not leak into the third
    prof["load_q_mvar"][50] *= 20
    p, q = bus_injections(arrays, **prof)
    start = solve_timeseries(arrays, p[:1], q[:1]).state
    fresh_state, reuse_state, buf = start.copy(), start.copy(), None
    for a in (0, 30, 60):
        fresh = solve_timeseries(arrays, p[a:a + 30], q[a:a + 30], state=fresh_state, branch_flows="loading")
        res = solve_timeseries(arrays, p[a:a + 30], q[a:a + 30], state=reuse_state, branch_flows="loading", out=buf)
        if buf is not None:
            assert res.vm_pu is buf.vm_pu and res.loading_percent is buf.loading_percent
        for k in ("vm_pu", "va_degree", "converged", "iterations", "slack_mw", "p_from_mw", "p_to_mw", "loading_percent"):
            np.testing.assert_array_equal(getattr(res, k), getattr(fresh, k), err_msg=f"{k}, chunk at {a}")
        buf = res
    other = solve_timeseries(arrays, p[:10], q[:10], state=start.copy(), branch_flows=True, out=buf)
    assert other.vm_pu is not buf.vm_pu and other.i_ka is not None


@pytest.mark.parametrize("n_steps", [1, 3, 301])
def test_bus_injections_kernel_equals_its_numpy_twin(campus, n_steps):
    """The kernel sums four steps at a time and the rest one by one: every step count gives the twin's sums."""
    _, arrays = campus
    prof = campus_profile(arrays, 100, n_steps, seed=5)
    k, n = bus_injections(arrays, **prof), bus_injections(arrays, kernel=False, **prof)
    for a, b in zip(k, n):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-9)


def test_bus_injections_into_given_arrays(campus):
    """out=: the sums overwrite the given arrays (old contents do not leak in); other shapes allocate anew."""
    _, arrays = campus
    prof = campus_profile(arrays, 0, 20, seed=3)
    fresh = bus_injections(arrays, **prof)
    buf = tuple(np.full_like(x, 7.0) for x in fresh)
    again = bus_injections(arrays, **prof, out=buf)
    assert again[0] is buf[0] and again[1] is buf[1]
    for a, b in zip(again, fresh):
        np.testing.assert_array_equal(a, b)
    short = bus_injections(arrays, **campus_profile(arrays, 0, 5, seed=3), out=buf)
    assert short[0] is not buf[0] and short[0].shape == (5, arrays.n_pp_bus)
