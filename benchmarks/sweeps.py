"""Sweep throughput: many one-hour contingency cases of ``memphis:full-build`` on a LocalCluster.

* ``n2``: ``n_cases`` random N-2 cases (every N-1 kind, ``twin.sweep.sample_cases``, seed 0) on
  ``workers`` worker processes, timed from submission to the last KPI written (cluster start-up
  included); then the first ``check_cases`` of them again on one worker, whose KPI arrays must equal
  the first run's.
* ``n1``: N-1 over every turbine, branch, battery, chiller and grid tie; every case ends as a result
  or as a recorded failure (branch trips that split an island are not supported by the engine yet).

Run ``python -m benchmarks.sweeps`` (``--cases``, ``--workers``, ``--check``, ``--skip-n1``); writes
``benchmarks/results/sweeps.json`` with versions and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.compare_loadflow import machine_info, versions

__all__ = ["SITE", "BASE", "RESULTS", "run_sweeps"]

SITE = "memphis:full-build"
#: one hour of the design day, contingencies at 00:10
BASE = {"scenario": {"name": "sweep-bench", "site": SITE, "start": "2026-07-15T14:00:00", "horizon": "01:00:00"},
        "weather": {"design_day": "memphis-0.4pct"}, "workload": {"seed": 3}}
AT = "00:10:00"
RESULTS = Path(__file__).resolve().parent / "results" / "sweeps.json"


def _timed_sweep(out_dir: Path, workers: int, **kw):
    from twin.sweep import sweep

    t0 = time.perf_counter()
    ds, ranking = sweep(SITE, BASE, at=AT, out_dir=out_dir, n_workers=workers, resume=False, **kw)
    return ds, time.perf_counter() - t0


def run_sweeps(n_cases: int = 1000, workers: int = 2, check_cases: int = 100, n1: bool = True,
               out: Path | None = RESULTS, verbose: bool = True) -> dict:
    """Run the sweep benchmarks (see the module docstring) and return (and write) the report."""
    from twin.sweep import N1_KINDS

    report: dict = {"site": SITE, "horizon": BASE["scenario"]["horizon"], "machine": machine_info(),
                    "versions": versions()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ds, wall = _timed_sweep(tmp / "n2", workers, n1=list(N1_KINDS), sample=n_cases, k=2, seed=0)
        n = ds.sizes["case"]
        failed = int((ds.status.values == "failed").sum())
        report["n2"] = {"cases": n, "workers": workers, "wall_s": wall, "cases_per_s": n / wall, "failed": failed,
                        "failure_reasons": sorted({e.split(":")[0] for e in ds.error.values if e})}
        if verbose:
            print(f"{n} random N-2 cases on {workers} workers: {wall:.1f} s ({n / wall:.1f} cases/s), {failed} failed",
                  flush=True)
        if check_cases:
            ds1, wall1 = _timed_sweep(tmp / "n2-one", 1, n1=list(N1_KINDS), sample=check_cases, k=2, seed=0)
            same = True
            sub = ds.sel(case=ds1.case.values)
            for v in ds1.data_vars:
                same &= bool(np.array_equal(ds1[v].values, sub[v].values, equal_nan=ds1[v].dtype.kind == "f"))
            report["n2"]["one_worker_check"] = {"cases": int(ds1.sizes["case"]), "wall_s": wall1, "identical_kpis": same}
            if verbose:
                print(f"  first {ds1.sizes['case']} again on 1 worker: {wall1:.1f} s, identical KPI arrays: {same}", flush=True)
        if n1:
            ds, wall = _timed_sweep(tmp / "n1", workers, n1=list(N1_KINDS))
            failed = ds.status.values == "failed"
            report["n1"] = {"cases": int(ds.sizes["case"]), "workers": workers, "wall_s": wall,
                            "done": int((~failed).sum()), "failed": int(failed.sum()),
                            "failure_reasons": sorted({e.split(":")[0] for e in ds.error.values if e}),
                            "aborted": False}
            if verbose:
                print(f"N-1 over {', '.join(N1_KINDS)}: {ds.sizes['case']} cases in {wall:.1f} s, {int(failed.sum())} "
                      f"recorded failures, none aborted the sweep", flush=True)
    report["load_average_after"] = list(os.getloadavg())
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--check", type=int, default=100, help="cases re-run on one worker (0: none)")
    parser.add_argument("--skip-n1", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    run_sweeps(args.cases, args.workers, args.check, not args.skip_n1, args.out)


if __name__ == "__main__":
    main()
