"""The coupled engine, side by side with pandapower's own time series on the same exported net.

* ``test_bench_engine_day``: one simulated day of the full reference campus, every model coupled
  (workload, thermal/cooling, turbines, batteries, frequency, protection, AC load flow every second),
  after compilation — pytest-benchmark times it.
* ``test_engine_vs_pandapower``: in one fresh process, the engine's steps per second over that day against
  ``pandapower.timeseries.run_timeseries`` on the engine's own network (``build_net`` of the same site,
  the benchmark profile of :mod:`benchmarks.profiles`), for the reference campus (34 buses) and beside it
  the detailed campus (``memphis:detailed``, 254 buses); prints both and the ratios and writes them to
  ``benchmarks/results/engine.json``. pandapower solves only the load flow; the engine does all the rest
  as well, so the ratio understates the engine's advantage. No absolute time is asserted.
* ``test_memory_is_bounded``: peak memory of a run streamed to Zarr grows with nothing but the
  horizon's compressed output; the year check is ``python -m benchmarks.test_engine --year``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from benchmarks.compare_loadflow import RESULTS, compare_in_fresh_process, pandapower_timeseries, quick_mode

ENGINE_RESULTS = RESULTS.parent / "engine.json"


def _engine_day(site_name: str = "memphis", horizon: str = "24:00:00"):
    from sites import load_site
    from twin.engine import Engine
    from twin.kpi import KpiAccumulator
    from twin.scenario import load_scenario

    site = load_site(site_name)
    sc = load_scenario("baseline-day").model_copy(deep=True)
    sc.scenario.horizon = horizon
    eng = Engine(site, sc, [], reuse_outputs=True)  # as the runner does
    kpi = KpiAccumulator(eng.plant, 1.0, site=site)

    def run():
        for seg in eng.segments():
            kpi.update(seg)
        return eng.k

    return eng, run


@pytest.fixture(scope="module")
def warm():
    _eng, run = _engine_day(horizon="00:10:00")  # compile and load every kernel once
    run()


def test_bench_engine_day(benchmark, warm):
    def setup():
        eng, run = _engine_day()
        return (run,), {}

    steps = benchmark.pedantic(lambda run: run(), setup=setup, rounds=1, iterations=1)
    assert steps == 86400


#: the reference campus (34 buses) and the detailed variant (Colossus 2 to its unit substations, 254 buses)
ENGINE_SITES = ("memphis", "memphis:detailed")


def _site_vs_pandapower(site_name: str) -> dict:
    """In this process: compile, then time a coupled day of ``site_name`` and pandapower's time series on the
    engine's own net of that site."""
    from benchmarks.profiles import campus_profile
    from grid_models.compile import compile_net

    _eng, run = _engine_day(site_name, horizon="00:10:00")
    run()  # compile and load every kernel once
    eng, run = _engine_day(site_name)
    t0 = time.perf_counter()
    steps = run()
    engine_s = time.perf_counter() - t0
    net = eng.net
    arrays = compile_net(net)
    n_pp = 200 if quick_mode() else 1000
    prof = campus_profile(arrays, 0, n_pp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp = pandapower_timeseries(net, prof, n_pp)
    ours = steps / engine_s
    return {"site": site_name, "n_bus": len(net.bus), "engine_steps": steps, "engine_seconds": engine_s,
            "engine_steps_per_s": ours, "pandapower_steps": n_pp, "pandapower_seconds": pp["seconds"],
            "pandapower_steps_per_s": pp["steps_per_s"], "ratio_engine_over_pandapower": ours / pp["steps_per_s"]}


def compare_with_pandapower() -> dict:
    """Each of :data:`ENGINE_SITES` side by side with pandapower; the reference campus's figures at the top level."""
    by_site = {name: _site_vs_pandapower(name) for name in ENGINE_SITES}
    return {**by_site[ENGINE_SITES[0]], "sites": by_site, "quick": quick_mode()}


def format_engine_report(report: dict) -> str:
    """One line per site of a :func:`compare_with_pandapower` report."""
    return "\n".join(
        f"engine day on {r['site']} ({r['n_bus']} buses, all models coupled): {r['engine_steps_per_s']:,.0f} steps/s "
        f"({r['engine_seconds']:.2f} s per simulated day); pandapower run_timeseries (load flow only): "
        f"{r['pandapower_steps_per_s']:,.1f} steps/s; ratio {r['ratio_engine_over_pandapower']:,.0f}x"
        for r in report["sites"].values())


def test_engine_vs_pandapower():
    """Side by side in one fresh process (not this test session's, whose threads and heap other tests have
    left behind): the engine's steps per second over a coupled day against pandapower's time series."""
    report = compare_in_fresh_process("benchmarks.test_engine", ENGINE_RESULTS)
    print("\n" + format_engine_report(report))
    for r in report["sites"].values():
        assert np.isfinite(r["ratio_engine_over_pandapower"]) and r["engine_steps"] == 86400, r["site"]


def peak_rss_mb() -> float:
    """This process's peak resident memory [MB]: VmHWM, which starts afresh at exec (``ru_maxrss`` can carry
    the peak of the parent that forked it)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _peak_rss_mb(days: float) -> tuple[float, float]:
    """Run ``days`` of the campus to Zarr in a fresh process; its peak RSS [MB] and wall time [s]."""
    code = f"""
import resource, sys, tempfile, time, warnings
warnings.filterwarnings("ignore")
from twin.catalog import Catalog
from twin.runner import run
from twin.scenario import load_scenario
from benchmarks.test_engine import peak_rss_mb
sc = load_scenario("baseline-day").model_copy(deep=True)
sc.scenario.horizon = {days * 86400.0}
sc.record.full_rate = [v for v in sc.record.full_rate if v not in ("vm_pu", "loading_pct")]
sc.record.per_minute = ["vm_pu", "loading_pct"]
d = tempfile.mkdtemp()
t = time.perf_counter()
run("memphis", sc, run_dir=d + "/run", catalog=Catalog(d + "/c.sqlite"))
print(peak_rss_mb(), time.perf_counter() - t)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rss, wall = map(float, out.stdout.split()[-2:])
    return rss, wall


def test_memory_is_bounded(warm):
    """Peak memory of a short and a 4× longer run differs by little: the output streams to Zarr."""
    short = 0.25 if quick_mode() else 1.0
    small, _ = _peak_rss_mb(short)
    large, wall = _peak_rss_mb(4 * short)
    print(f"\npeak RSS: {short:g} day {small:.0f} MB, {4 * short:g} days {large:.0f} MB ({wall:.1f} s for {4 * short:g} days)")
    assert large < 1500.0
    assert large - small < 150.0  # a day of full-rate buffers is ~40 MB; the store grows on disk, not in memory


if __name__ == "__main__":  # pragma: no cover - the year check by hand; --compare for test_engine_vs_pandapower
    if "--compare" in sys.argv:
        print(json.dumps(compare_with_pandapower()))
    if "--year" in sys.argv:
        rss, wall = _peak_rss_mb(365.0)
        print(json.dumps({"days": 365, "peak_rss_mb": rss, "wall_s": wall}))
