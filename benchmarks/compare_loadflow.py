"""Side-by-side load-flow time series on one net and one injection profile, in one run.

Three solvers get the same reference campus (:data:`benchmarks.profiles.CAMPUS`), the same 1 s
element profile (:func:`benchmarks.profiles.campus_profile`: every load's P and Q, every generator's
P), the same convergence tolerance (largest power mismatch ``TOLERANCE_MVA``), a warm start from
the solved operating point, and must return bus voltages and branch flows for every step:

* **ours** — :func:`grid_models.timeseries.solve_timeseries` (numba chord Newton, distributed slack
  per island). The timed region includes turning element profiles into bus injections
  (:func:`grid_models.timeseries.bus_injections`).
* **pandapower** — ``pandapower.timeseries.run_timeseries`` with ``ConstControl`` profiles and an
  ``OutputWriter`` logging bus voltages and line/trafo loading, ``runpp`` with its own Newton–Raphson
  (``lightsim2grid=False``) warm-started from the last results. pandapower cannot share a
  distributed slack in several islands in one call, so it solves the whole net with single slacks
  (each islanded island's slack unit takes its mismatch): the same number of buses and equations per
  step, one ``runpp`` per step, the configuration most favourable to it.
* **lightsim2grid** — its C++ ``TimeSeriesCPP`` (Newton–Raphson with KLU), voltages then currents
  and active flows (``compute_flows``, ``compute_power_flows``). Its pandapower converter rejects
  several islands with mixed slack types and ``parallel`` lines, so each island is converted on
  its own (parallel lines duplicated, islanded slack shared by ``slack_weight``) and its time is the
  sum over islands.

Steps per second are measured as best-of-``repeats`` CPU time of the calling thread for ours and
lightsim2grid (wall time recorded alongside: see :func:`_seconds`), timed in alternation so that a busy
machine slows both alike, and one run for pandapower (its CPU time in the ratios, its wall time in
``seconds``; ``pandapower_steps`` steps: it runs ~50–100 steps/s, so quick mode uses 200).
Run ``python -m benchmarks.compare_loadflow`` (add ``--quick``) to print and write the JSON.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.profiles import CAMPUS, campus_net, campus_profile

__all__ = ["TOLERANCE_MVA", "RESULTS", "quick_mode", "run_comparison", "prepare_ours", "pandapower_timeseries",
           "prepare_lightsim2grid", "versions", "machine_info", "format_report"]

#: convergence tolerance of all three solvers: largest power mismatch [MVA] (pu on the net's 1 MVA base)
TOLERANCE_MVA = 1e-8
#: where the comparison is recorded
RESULTS = Path(__file__).resolve().parent / "results" / "loadflow.json"


def quick_mode() -> bool:
    """``TWIN_BENCH_QUICK=1`` or a CI environment: fewer pandapower steps."""
    return os.environ.get("TWIN_BENCH_QUICK", "0") not in ("", "0", "false", "False") or bool(os.environ.get("CI"))


def _seconds(fn) -> tuple[float, float]:
    """Wall time and the calling thread's CPU time of one call, with the garbage collector paused (as
    ``timeit`` does).

    Both solvers compute in the calling thread, so its CPU time is their cost without the time the
    scheduler gave to other processes: on a shared machine a run of 5 ms is preempted more often than
    one of 1.5 ms, and best-of-N wall times then favour the shorter run (on this 2-core VM at a load
    average of 10 the wall-time ratio of the 34-bus campus read 8 × where the CPU-time ratio read 3.2 ×).
    On a quiet machine the two agree.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        return time.perf_counter() - t0, time.thread_time() - c0
    finally:
        if enabled:
            gc.enable()


def prepare_ours(net, prof: dict[str, np.ndarray]):
    """Our time series on the whole campus (all islands in one call), compiled and warmed up.

    Returns
    -------
    run : callable
        Element profiles → bus injections → voltages and branch flows for every step (written into the
        previous call's arrays, as lightsim2grid keeps its result matrices between calls).
    kernel_run : callable
        The same from precomputed bus injections.
    arrays : GridArrays
    """
    from grid_models.compile import compile_net
    from grid_models.powerflow import LoadFlowState, solve
    from grid_models.timeseries import bus_injections, solve_timeseries

    arrays = compile_net(copy.deepcopy(net), distributed_slack=True)
    first = solve(arrays, tolerance_mva=TOLERANCE_MVA)
    slack0 = np.where(arrays.island_slack_col >= 0, first.slack_mw, 0.0) / arrays.base_mva
    state0 = LoadFlowState.start(arrays, first.vm_pu, first.va_degree, slack0)
    p, q = bus_injections(arrays, **prof)

    last: dict = {}

    def run():  # into the previous call's arrays (see benchmarks.scaling)
        pb, qb = bus_injections(arrays, **prof, out=last.get("pq"))
        last["pq"] = pb, qb
        last["res"] = solve_timeseries(arrays, pb, qb, state=state0.copy(), tolerance_mva=TOLERANCE_MVA,
                                       out=last.get("res"))
        return last["res"]

    def kernel_run():
        last["kernel"] = solve_timeseries(arrays, p, q, state=state0.copy(), tolerance_mva=TOLERANCE_MVA,
                                          out=last.get("kernel"))
        return last["kernel"]

    run()  # numba kernels compiled (or loaded from the cache) before timing
    return run, kernel_run, arrays


def pandapower_timeseries(net, prof: dict[str, np.ndarray], n_steps: int) -> dict:
    """``pandapower.timeseries.run_timeseries`` over the first ``n_steps`` steps of the profile."""
    import pandas as pd
    import pandapower as pp
    from pandapower.control import ConstControl
    from pandapower.timeseries import DFData, OutputWriter, run_timeseries

    net = copy.deepcopy(net)
    net.load["scaling"] = 1.0
    net.gen["scaling"] = 1.0
    pp.runpp(net, lightsim2grid=False, tolerance_mva=TOLERANCE_MVA)
    steps = range(n_steps)
    for element, variable, key in (("load", "p_mw", "load_p_mw"), ("load", "q_mvar", "load_q_mvar"),
                                   ("gen", "p_mw", "gen_p_mw")):
        idx = net[element].index
        data = DFData(pd.DataFrame(prof[key][:n_steps], columns=idx))
        ConstControl(net, element=element, variable=variable, element_index=idx, data_source=data,
                     profile_name=idx)
    ow = OutputWriter(net, steps, output_path=None, log_variables=[])
    for table, col in (("res_bus", "vm_pu"), ("res_bus", "va_degree"), ("res_line", "loading_percent"),
                       ("res_line", "p_from_mw"), ("res_trafo", "loading_percent")):
        ow.log_variable(table, col)
    t0, c0 = time.perf_counter(), time.thread_time()
    run_timeseries(net, time_steps=steps, verbose=False, lightsim2grid=False, tolerance_mva=TOLERANCE_MVA,
                   init="results", continue_on_divergence=False)
    seconds, cpu = time.perf_counter() - t0, time.thread_time() - c0
    return {"steps": n_steps, "seconds": seconds, "steps_per_s": n_steps / seconds, "cpu_seconds": cpu,
            "_vm_pu": ow.output["res_bus.vm_pu"].to_numpy()}


def _island_net(net, buses):
    import pandapower as pp
    from pandapower.toolbox import select_subnet

    sub = select_subnet(net, buses, include_results=False, keep_everything_else=False)
    for element in ("line", "trafo"):
        if len(sub[element]) and (sub[element].parallel != 1).any():
            rows = np.repeat(sub[element].index.to_numpy(), sub[element].parallel.to_numpy().astype(int))
            sub[element] = sub[element].loc[rows].reset_index(drop=True)
            sub[element]["parallel"] = 1
    pp.toolbox.create_continuous_bus_index(sub, start=0)
    return sub


def prepare_lightsim2grid(net, prof: dict[str, np.ndarray]):
    """lightsim2grid's ``TimeSeriesCPP``, one per island (see the module docstring).

    Returns
    -------
    run : callable
        Solves every island's series (voltages, currents, active flows); returns True if all converged.
    vm_pu : callable
        After ``run``: bus voltage magnitudes (n_steps, n_bus) in ``net.bus`` order.
    """
    from grid_models.reference import island_buses
    from lightsim2grid import AlgorithmType
    from lightsim2grid.network import init_from_pandapower
    from lightsim2grid.timeSerie import TimeSeriesCPP

    n = len(prof["load_p_mw"])
    parts = []
    for buses in island_buses(net):
        sub = _island_net(net, buses)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            grid = init_from_pandapower(sub, pp_orig_file="pandapower_v3")
        v0 = grid.ac_pf(np.ones(len(sub.bus), dtype=complex), 30, TOLERANCE_MVA)
        if not len(v0):
            raise RuntimeError(f"lightsim2grid does not solve the island of bus {buses[0]}")
        load_rows = net.load.index.get_indexer(sub.load.index) if len(sub.load) else np.zeros(0, int)
        gen_rows = net.gen.index.get_indexer(sub.gen.index) if len(sub.gen) else np.zeros(0, int)
        extra = np.array([g.target_p_mw for g in grid.get_generators()][len(gen_rows):])  # slack units it added
        prod_p = np.ascontiguousarray(np.hstack([prof["gen_p_mw"][:, gen_rows], np.broadcast_to(extra, (n, len(extra)))]))
        load_p = np.ascontiguousarray(prof["load_p_mw"][:, load_rows])
        load_q = np.ascontiguousarray(prof["load_q_mvar"][:, load_rows])
        # static generators keep their values (as in ours, whose profile has none)
        sgen_p = np.ascontiguousarray(np.broadcast_to([g.target_p_mw for g in grid.get_static_generators()],
                                                      (n, len(grid.get_static_generators()))))
        ts = TimeSeriesCPP(grid)
        if AlgorithmType.NR_KLU in ts.available_default_algorithms():
            ts.change_algorithm(AlgorithmType.NR_KLU)
        parts.append((buses, ts, prod_p, sgen_p, load_p, load_q, v0, grid))

    def run():
        ok = True
        for _, ts, prod_p, sgen_p, load_p, load_q, v0, _grid in parts:
            status = ts.compute_Vs(prod_p, sgen_p, load_p, load_q, v0, 10, TOLERANCE_MVA)
            ts.compute_flows()
            ts.compute_power_flows()
            ok &= status == 1
        return ok

    def vm_pu():
        vm = np.full((n, len(net.bus)), np.nan)
        for buses, ts, *_ in parts:
            vm[:, buses] = np.abs(ts.get_voltages())[:, :len(buses)]
        return vm

    run()
    return run, vm_pu


def versions() -> dict[str, str | None]:
    """Versions of Python and of the packages a benchmark result depends on (None: not installed)."""
    import importlib.metadata as md

    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("colossus-twin", "numpy", "scipy", "numba", "pandapower", "lightsim2grid", "dask", "distributed"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def machine_info() -> dict:
    """Platform, processor, cores and how busy the machine was (1, 5, 15 min load averages)."""
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg())}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def run_comparison(n_steps: int = 3600, pandapower_steps: int | None = None, quick: bool | None = None,
                   site: str = CAMPUS, repeats: int = 9, out: Path | None = RESULTS, verbose: bool = True) -> dict:
    """Run the three time series and return (and write) steps per second and ratios.

    Parameters
    ----------
    n_steps : int
        Steps of the profile solved by ours and lightsim2grid.
    pandapower_steps : int, optional
        Steps given to pandapower (default: ``n_steps``, or 200 in quick mode).
    quick : bool, optional
        Default: :func:`quick_mode`.
    site : str
        Reference site (``sites.list_sites()``).
    repeats : int
        Best-of repeats for ours and lightsim2grid.
    out : Path or None
        JSON file to write.

    Returns
    -------
    dict
        Per solver ``steps``, ``seconds``, ``steps_per_s``; ``ratios``; agreement checks.
    """
    quick = quick_mode() if quick is None else quick
    if pandapower_steps is None:
        pandapower_steps = min(200, n_steps) if quick else n_steps
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    net = campus_net(site)
    from grid_models.compile import compile_net

    arrays = compile_net(copy.deepcopy(net), distributed_slack=True)
    prof = campus_profile(arrays, 0, n_steps)
    report: dict = {
        "site": site, "n_bus": int(len(net.bus)), "n_branch": int(arrays.n_branch), "n_island": int(arrays.n_island),
        "n_load": int(len(net.load)), "n_gen": int(len(net.gen)), "tolerance_mva": TOLERANCE_MVA,
        "profile": "benchmarks.profiles.campus_profile(seed=0)", "quick": bool(quick),
        "machine": machine_info(),
        "versions": versions(),
    }
    run_ours, kernel_ours, _ = prepare_ours(net, prof)
    try:
        run_ls, vm_ls = prepare_lightsim2grid(net, prof)
    except ImportError as exc:
        run_ls, vm_ls = None, None
        report["lightsim2grid"] = {"skipped": f"lightsim2grid not installed ({exc})"}
    # interleaved best-of-N of the thread's CPU time (see _seconds; wall times recorded alongside)
    t_ours = t_kernel = t_ls = np.inf
    w_ours = w_ls = np.inf
    for _ in range(repeats):
        w, c = _seconds(run_ours)
        t_ours, w_ours = min(t_ours, c), min(w_ours, w)
        t_kernel = min(t_kernel, _seconds(kernel_ours)[1])
        if run_ls is not None:
            w, c = _seconds(run_ls)
            t_ls, w_ls = min(t_ls, c), min(w_ls, w)
    res = run_ours()
    report["ours"] = {
        "steps": n_steps, "seconds": t_ours, "steps_per_s": n_steps / t_ours, "wall_seconds": w_ours,
        "kernel_only_steps_per_s": n_steps / t_kernel, "converged_steps": int(res.converged.sum()),
        "mean_iterations": float(res.iterations.mean()), "factorisations": int(res.factorisations),
        "max_mismatch_mva": float(np.nanmax(res.max_mismatch_mva)),
        "config": "solve_timeseries (numba chord Newton, distributed slack per island) incl. bus_injections",
    }
    if run_ls is not None:
        ok = run_ls()
        report["lightsim2grid"] = {
            "steps": n_steps, "seconds": t_ls, "steps_per_s": n_steps / t_ls, "wall_seconds": w_ls, "converged": bool(ok),
            "config": "TimeSeriesCPP per island (NR_KLU), compute_Vs + compute_flows + compute_power_flows",
            "max_abs_dvm_pu_vs_ours": float(np.nanmax(np.abs(vm_ls() - res.vm_pu))),
        }
    p = pandapower_timeseries(net, prof, pandapower_steps)
    report["pandapower"] = {k: v for k, v in p.items() if not k.startswith("_")}
    report["pandapower"]["config"] = ("run_timeseries with ConstControl + OutputWriter, runpp(lightsim2grid=False, "
                                      "init='results'), single slack per island")
    # pandapower solves single-slack islands: compare where that is the same problem (grid-tied islands)
    eg_bus = net.ext_grid.bus[net.ext_grid.in_service].to_numpy()
    tied_islands = np.unique(arrays.bus_island[arrays.pp_bus_internal[net.bus.index.get_indexer(eg_bus)]])
    tied = np.isin(arrays.bus_island[np.maximum(arrays.pp_bus_internal, 0)], tied_islands) & (arrays.pp_bus_internal >= 0)
    report["pandapower"]["max_abs_dvm_pu_vs_ours_grid_tied_islands"] = float(
        np.nanmax(np.abs(p["_vm_pu"][:, tied] - res.vm_pu[:pandapower_steps, tied])))
    pp_cpu_steps_per_s = report["pandapower"]["steps"] / report["pandapower"]["cpu_seconds"]  # ours is CPU time too
    ratios = {"ours_over_pandapower": report["ours"]["steps_per_s"] / pp_cpu_steps_per_s}
    if "steps_per_s" in report["lightsim2grid"]:
        ratios["ours_over_lightsim2grid"] = report["ours"]["steps_per_s"] / report["lightsim2grid"]["steps_per_s"]
        ratios["lightsim2grid_over_pandapower"] = report["lightsim2grid"]["steps_per_s"] / pp_cpu_steps_per_s
    report["ratios"] = ratios
    if verbose:
        print(format_report(report))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def compare_in_fresh_process(module: str, results: Path, env: dict[str, str] | None = None) -> dict:
    """Run ``python -m <module> --compare`` in a fresh process and return its JSON report (its last line).

    A fresh process, not the caller's: a test session's heap and the threads other tests left behind slow a
    timing by up to half. The report is written to ``results`` with the package versions and the machine.
    """
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", module, "--compare"], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})
    report = json.loads(out.stdout.strip().splitlines()[-1])
    report.update(machine=machine_info(), versions=versions())
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(report, indent=2) + "\n")
    return report


def format_report(report: dict) -> str:
    """A short human-readable table of a :func:`run_comparison` report."""
    lines = [f"load-flow time series on {report['site']} ({report['n_bus']} buses, {report['n_branch']} branches, "
             f"{report['n_island']} islands), tolerance {report['tolerance_mva']:g} MVA"]
    for name in ("ours", "lightsim2grid", "pandapower"):
        r = report.get(name, {})
        if "cpu_seconds" in r:  # pandapower: seconds is its wall time
            lines.append(f"  {name:<14} {r['steps'] / r['cpu_seconds']:>12,.0f} steps/s  ({r['steps']} steps in "
                         f"{r['cpu_seconds']:.3f} s of CPU, {r['seconds']:.3f} s of wall time)")
        elif "steps_per_s" in r:
            lines.append(f"  {name:<14} {r['steps_per_s']:>12,.0f} steps/s  ({r['steps']} steps in {r['seconds']:.3f} s of CPU)")
        else:
            lines.append(f"  {name:<14} {r.get('skipped', 'n/a')}")
    for k, v in report["ratios"].items():
        lines.append(f"  {k:<32} {v:,.1f} x")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 pandapower steps")
    parser.add_argument("--steps", type=int, default=3600)
    parser.add_argument("--site", default=CAMPUS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    run_comparison(n_steps=args.steps, quick=args.quick or None, site=args.site, out=args.out)


if __name__ == "__main__":
    main()
