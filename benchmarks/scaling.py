"""How the time-series load flow scales with network size: ours against lightsim2grid, net by net.

Every net gets the same 300-step profile (:func:`benchmarks.profiles.campus_profile`: loads swing
±8 % as square waves, drift and jitter; generator set points move slowly; sgens stay at their
values) and the same tolerance (a largest power mismatch of ``TOLERANCE_MVA`` per unit of the net's
``sn_mva``: lightsim2grid, like pandapower's ``newtonpf``, compares the per-unit mismatch with its
tolerance, so ours gets ``tolerance_mva = TOLERANCE_MVA · sn_mva``), both solvers start
warm from the solved operating point and must return bus voltages and branch flows for every step:

* **ours** — :func:`grid_models.timeseries.solve_timeseries` (islands above
  ``grid_models.sparse_lu.SPARSE_MIN_DIM`` rows factorised sparse), bus injections included, each
  run from a copy of the same starting state; the injections and results are written into the
  previous run's arrays (``out=``, as the engine does chunk after chunk, and as lightsim2grid keeps
  its result matrices between calls: fresh memory costs about 2 µs per 4 kB page on this VM);
* **lightsim2grid** — ``TimeSeriesCPP`` with ``NR_KLU``: ``compute_Vs``, ``compute_flows`` and
  ``compute_power_flows`` (:func:`benchmarks.compare_loadflow.prepare_lightsim2grid`, one per island).

Both are compiled and warmed up first, then timed alternately (``repeats`` runs, best kept: 9 below
1,000 buses, 1 above); the ratio is of the calling thread's CPU time (both compute in it; wall times
are recorded too, and agree on a quiet machine: :func:`benchmarks.compare_loadflow._seconds`).
Accuracy: the last step against ``pandapower.runpp(lightsim2grid=False, tolerance_mva=1e-10)`` on the net set to that step (the campus nets island by island,
:func:`grid_models.reference.runpp_by_island`), largest ``|Δvm|`` over energised buses; runpp is
skipped (and said so) where it does not finish within ``runpp_timeout_s``.

The transmission cases (pandapower's ``case118`` … ``case9241pegase``) are solved with their
ext_grid as single slack (what lightsim2grid and runpp do by default); the campus nets with each
island's distributed slack, as the engine solves them.

Run ``python -m benchmarks.scaling`` (``--nets case118,memphis`` to choose, ``--steps``); it prints the
table and writes ``benchmarks/results/scaling.json`` with versions and machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.compare_loadflow import TOLERANCE_MVA, _seconds, machine_info, prepare_lightsim2grid, versions
from benchmarks.profiles import campus_profile

__all__ = ["NETS", "CAMPUS_NETS", "RESULTS", "load_net", "scale_one", "run_scaling", "format_table"]

#: the nets of the scaling table, smallest first
NETS = ("memphis", "memphis:full-build", "memphis:detailed", "case118", "case300", "case1354pegase", "case2869pegase", "case9241pegase")
#: reference-campus nets (sites); the others are pandapower's transmission cases
CAMPUS_NETS = ("memphis", "memphis:full-build", "memphis:detailed")
RESULTS = Path(__file__).resolve().parent / "results" / "scaling.json"


def load_net(name: str):
    """The pandapower net of a site (``sites.load_site``) or of a pandapower case (``pandapower.networks``)."""
    if name.startswith("case"):
        import pandapower.networks as pn

        return getattr(pn, name)()
    from benchmarks.profiles import campus_net

    return campus_net(name)


def _reference_vm(net, prof: dict[str, np.ndarray], k: int, campus: bool) -> np.ndarray:
    """runpp's bus voltages with the net set to step ``k`` of the profile (NaN where not energised)."""
    import pandapower as pp

    from grid_models.reference import runpp_by_island

    from benchmarks.profiles import net_at_step

    ref = net_at_step(net, prof, k)
    if campus:
        runpp_by_island(ref)
    else:
        pp.runpp(ref, lightsim2grid=False, tolerance_mva=1e-10, max_iteration=30, numba=True)
    return ref.res_bus.vm_pu.to_numpy()


def scale_one(name: str, n_steps: int = 300, repeats: int | None = None, reference: bool = True) -> dict:
    """One row of the scaling table (see the module docstring)."""
    from grid_models.compile import compile_net
    from grid_models.powerflow import LoadFlowState, solve
    from grid_models.sparse_lu import sparse_islands
    from grid_models.timeseries import bus_injections, solve_timeseries

    campus = name in CAMPUS_NETS
    net = load_net(name)
    arrays = compile_net(copy.deepcopy(net), distributed_slack=campus)
    first = solve(arrays, tolerance_mva=TOLERANCE_MVA * arrays.base_mva)
    if not first.converged:
        return {"net": name, "n_bus": int(len(net.bus)), "skipped": "the base case does not converge"}
    slack0 = np.where(arrays.island_slack_col >= 0, first.slack_mw, 0.0) / arrays.base_mva
    state0 = LoadFlowState.start(arrays, first.vm_pu, first.va_degree, slack0)
    prof = campus_profile(arrays, 0, n_steps)
    repeats = repeats or (9 if len(net.bus) < 1000 else 1)

    last: dict = {}

    def ours():  # into the previous call's arrays, as lightsim2grid's TimeSeriesCPP keeps its result matrices
        pb, qb = bus_injections(arrays, **prof, out=last.get("pq"))
        last["pq"] = pb, qb
        last["res"] = solve_timeseries(arrays, pb, qb, state=state0.copy(), tolerance_mva=TOLERANCE_MVA * arrays.base_mva,
                                       out=last.get("res"))
        return last["res"]

    t0 = time.perf_counter()
    ours()  # compiled (or loaded from the numba cache), analysed
    warm_s = time.perf_counter() - t0
    row = {"net": name, "n_bus": int(len(net.bus)), "n_branch": int(arrays.n_branch), "n_island": int(arrays.n_island),
           "largest_jacobian_rows": int(arrays.island_dim.max(initial=0)),
           "sparse_islands": int(sparse_islands(arrays).sum()), "steps": n_steps, "repeats": repeats,
           "ours_first_call_s": warm_s}
    run_ls = None
    try:
        prof_ls = dict(prof)
        run_ls, vm_ls = prepare_lightsim2grid(net, prof_ls)
    except ImportError as exc:
        row["lightsim2grid_skipped"] = f"lightsim2grid not installed ({exc})"
    t_ours = t_ls = w_ours = w_ls = np.inf  # best CPU time of the thread, best wall time
    for _ in range(repeats):
        w, c = _seconds(ours)
        t_ours, w_ours = min(t_ours, c), min(w_ours, w)
        if run_ls is not None:
            w, c = _seconds(run_ls)
            t_ls, w_ls = min(t_ls, c), min(w_ls, w)
    res = ours()
    row.update({"ours_s": t_ours, "ours_wall_s": w_ours, "ours_steps_per_s": n_steps / t_ours,
                "ours_converged_steps": int(res.converged.sum()), "ours_factorisations": int(res.factorisations),
                "ours_mean_iterations": float(res.iterations.mean())})
    if run_ls is not None:
        ok = run_ls()
        row.update({"lightsim2grid_s": t_ls, "lightsim2grid_wall_s": w_ls, "lightsim2grid_steps_per_s": n_steps / t_ls,
                    "lightsim2grid_converged": bool(ok), "ours_over_lightsim2grid": t_ls / t_ours,
                    "ours_over_lightsim2grid_wall": w_ls / w_ours,
                    "max_abs_dvm_pu_ours_vs_lightsim2grid": float(np.nanmax(np.abs(vm_ls() - res.vm_pu)))})
    if reference:
        t0 = time.perf_counter()
        vm_ref = _reference_vm(net, prof, n_steps - 1, campus)
        live = np.isfinite(vm_ref)
        row["runpp_s"] = time.perf_counter() - t0
        row["max_abs_dvm_pu_vs_runpp_last_step"] = float(np.max(np.abs(res.vm_pu[-1][live] - vm_ref[live])))
    return row


def run_scaling(nets=NETS, n_steps: int = 300, out: Path | None = RESULTS, reference: bool = True,
                verbose: bool = True) -> dict:
    """The scaling table over ``nets``; written to ``out`` (JSON) with versions and machine."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    report = {"steps": n_steps, "tolerance_pu": TOLERANCE_MVA, "profile": "benchmarks.profiles.campus_profile(seed=0)",
              "machine": machine_info(), "versions": versions(), "rows": []}
    for name in nets:
        try:
            row = scale_one(name, n_steps, reference=reference)
        except LookupError as exc:  # a site that is not defined in this checkout
            row = {"net": name, "skipped": str(exc)}
        report["rows"].append(row)
        if verbose:
            print(format_table({"rows": [row]}, header=not (len(report["rows"]) - 1)), flush=True)
    report["load_average_after"] = os.getloadavg()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def format_table(report: dict, header: bool = True) -> str:
    """Markdown table of a :func:`run_scaling` report."""
    lines = []
    if header:
        lines += ["| net | buses | Jacobian rows | ours steps/s | lightsim2grid steps/s | ours / lightsim2grid "
                  "(CPU) | (wall) | max abs dvm vs runpp [pu] |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        if "skipped" in r:
            lines.append(f"| {r['net']} | {r.get('n_bus', '')} | | skipped: {r['skipped']} | | | | |")
            continue
        ls = r.get("lightsim2grid_steps_per_s")
        dvm = r.get("max_abs_dvm_pu_vs_runpp_last_step")
        lines.append(f"| {r['net']} | {r['n_bus']:,} | {r['largest_jacobian_rows']:,} | {r['ours_steps_per_s']:,.0f} | "
                     f"{'n/a' if ls is None else f'{ls:,.0f}'} | "
                     f"{'n/a' if ls is None else format(r['ours_over_lightsim2grid'], '.2f')} × | "
                     f"{'n/a' if ls is None else format(r['ours_over_lightsim2grid_wall'], '.2f')} × | "
                     f"{'n/a' if dvm is None else format(dvm, '.1e')} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default=",".join(NETS), help="comma-separated nets (default: all)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--no-reference", action="store_true", help="skip the runpp check at the last step")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    run_scaling(tuple(n for n in args.nets.split(",") if n), args.steps, args.out, reference=not args.no_reference)


if __name__ == "__main__":
    main()
