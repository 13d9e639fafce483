"""Load-flow benchmarks: per-solve cost, the time series, and the side-by-side peer comparison.

Timed with pytest-benchmark (``pytest benchmarks --benchmark-enable``); kernels are compiled in the
fixtures so steady state is timed. Nothing here asserts an absolute time. The side-by-side test
runs ours, pandapower's ``run_timeseries`` and lightsim2grid's ``TimeSeriesCPP`` on the same campus
and profile in one run, prints steps/s and ratios, writes ``benchmarks/results/loadflow.json`` and
checks the ratio targets of issue 3 (≥ 1,000 × pandapower, ≥ 2 × lightsim2grid), which are ratios
measured side by side, not absolute times. In the default test run (pytest-benchmark disabled by
addopts), or with ``TWIN_BENCH_QUICK=1`` or ``CI`` set, pandapower gets 200 steps instead of 3,600;
``pytest benchmarks --benchmark-enable -s`` is the full mode. The whole suite with its JSON results:
``python -m benchmarks``.
"""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest

from benchmarks.compare_loadflow import RESULTS, TOLERANCE_MVA, quick_mode, run_comparison
from benchmarks.profiles import campus_net, campus_profile
from grid_models.compile import compile_net
from grid_models.powerflow import LoadFlowState, runpf, solve
from grid_models.timeseries import bus_injections, solve_timeseries

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

N_STEPS = 3600


@pytest.fixture(scope="module")
def campus():
    net = campus_net()
    arrays = compile_net(copy.deepcopy(net), distributed_slack=True)
    first = solve(arrays, tolerance_mva=TOLERANCE_MVA)
    slack0 = np.where(arrays.island_slack_col >= 0, first.slack_mw, 0.0) / arrays.base_mva
    state0 = LoadFlowState.start(arrays, first.vm_pu, first.va_degree, slack0)
    prof = campus_profile(arrays, 0, N_STEPS)
    p, q = bus_injections(arrays, **prof)
    solve_timeseries(arrays, p[:2], q[:2], state=state0.copy())  # compile / load the cache
    return net, arrays, state0, prof, p, q


def test_bench_solve_one_operating_point(benchmark, campus):
    """Full Newton on the campus from a DC start (what ``runpf`` runs after compiling)."""
    _, arrays, *_ = campus
    res = benchmark(solve, arrays, tolerance_mva=TOLERANCE_MVA, solver="numba")
    assert res.converged


def test_bench_runpf_campus(benchmark, campus):
    """``runpf`` end to end: pandapower's conversion, our solve, ``net.res_*`` written."""
    net = copy.deepcopy(campus[0])
    res = benchmark(runpf, net, distributed_slack=True)
    assert res.converged


def test_bench_warm_step(benchmark, campus):
    """One warm-started step through the Python entry point (call overhead included)."""
    _, arrays, state0, _, p, q = campus
    state = state0.copy()

    def step():
        return solve_timeseries(arrays, p[:1], q[:1], state=state, tolerance_mva=TOLERANCE_MVA)

    res = benchmark(step)
    assert res.converged.all()


def test_bench_timeseries_hour(benchmark, campus):
    """3,600 one-second steps of the campus in one call (voltages and branch flows)."""
    _, arrays, state0, _, p, q = campus

    def hour():
        return solve_timeseries(arrays, p, q, state=state0.copy(), tolerance_mva=TOLERANCE_MVA)

    res = benchmark(hour)
    assert res.converged.all()
    benchmark.extra_info["steps"] = N_STEPS
    benchmark.extra_info["mean_iterations"] = float(res.iterations.mean())
    benchmark.extra_info["factorisations"] = int(res.factorisations)


def test_bench_bus_injections_hour(benchmark, campus):
    """Element profiles (314 loads, 42 gens) to bus injections for 3,600 steps."""
    _, arrays, _, prof, p, _ = campus
    out = benchmark(bus_injections, arrays, **prof)
    np.testing.assert_allclose(out[0], p)


def test_side_by_side_peers(request, capsys):
    """Ours vs pandapower ``run_timeseries`` vs lightsim2grid on memphis, same profile, one run.

    Ratios of best-of-9 interleaved timings; on a machine busy with other work they still move by
    tens of percent between runs (measured ours/lightsim2grid 2.5–3.6 on 2 shared cores).
    """
    # addopts disable pytest-benchmark for the default test run; --benchmark-enable turns it (and full mode) on
    enabled = bool(request.config.getoption("benchmark_enable", default=False)) or \
        not bool(request.config.getoption("benchmark_disable", default=False))
    quick = quick_mode() or not enabled
    report = run_comparison(n_steps=N_STEPS, quick=quick, out=RESULTS, verbose=True)
    with capsys.disabled():
        print()
        print(json.dumps(report["ratios"], indent=2))
    assert RESULTS.exists()
    assert report["ours"]["converged_steps"] == N_STEPS
    assert report["pandapower"]["max_abs_dvm_pu_vs_ours_grid_tied_islands"] < 1e-6
    assert report["ratios"]["ours_over_pandapower"] >= 1000
    if "steps_per_s" not in report["lightsim2grid"]:
        pytest.skip(report["lightsim2grid"].get("skipped", "lightsim2grid unavailable"))
    assert report["lightsim2grid"]["converged"]
    assert report["lightsim2grid"]["max_abs_dvm_pu_vs_ours"] < 1e-3  # same problem (its trafo model differs slightly)
    assert report["ratios"]["ours_over_lightsim2grid"] >= 2


def test_scaling_table(request, capsys):
    """Ours vs lightsim2grid net by net, same 300-step profile, one run per net (benchmarks.scaling).

    Targets (ratios measured side by side): ≥ 1 × lightsim2grid on every net of 1,000 buses or more,
    ≥ 3 × on the reference campus nets (the 34-bus campus, the full build and the detailed campus; full
    mode only: on a busy 2-core machine lightsim2grid's time on a 34-bus net moves by a factor 2 between
    runs), and |Δvm| ≤ 1e-8 pu against runpp at the last step.
    Quick mode (the default test run) covers the campus nets and case1354pegase; full mode every net.
    """
    from benchmarks.scaling import CAMPUS_NETS, NETS, format_table, run_scaling

    enabled = bool(request.config.getoption("benchmark_enable", default=False)) or \
        not bool(request.config.getoption("benchmark_disable", default=False))
    full = enabled and not quick_mode()
    nets = NETS if full else ("memphis", "memphis:detailed", "case1354pegase")
    report = run_scaling(nets, out=RESULTS.parent / "scaling.json" if full else None, verbose=False)
    with capsys.disabled():
        print("\n" + format_table(report))
    pytest.importorskip("lightsim2grid")
    for row in report["rows"]:
        assert "skipped" not in row, row
        assert row["ours_converged_steps"] == row["steps"] and row["lightsim2grid_converged"], row["net"]
        assert row["max_abs_dvm_pu_vs_runpp_last_step"] <= 1e-8, row["net"]
        if row["n_bus"] >= 1000:
            assert row["ours_over_lightsim2grid"] >= 1.0, row["net"]
        if full and row["net"] in CAMPUS_NETS:
            assert row["ours_over_lightsim2grid"] >= 3.0, row["net"]
