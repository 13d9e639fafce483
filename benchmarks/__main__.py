"""The full benchmark suite, one command: ``python -m benchmarks``.

Runs, each side by side in one process and each writing ``benchmarks/results/<name>.json`` with the
package versions and the machine (processor, cores, load averages — timing on a shared machine is
noisy: read the ratios, and the load):

1. ``loadflow`` — the campus time series, ours vs pandapower ``run_timeseries`` vs lightsim2grid
   (:mod:`benchmarks.compare_loadflow`, 3,600 steps, pandapower on all of them);
2. ``scaling`` — ours vs lightsim2grid from the 34-bus campus to case9241pegase (:mod:`benchmarks.scaling`);
3. ``engine`` — a coupled day of the campus and of the detailed campus vs pandapower's time series on their nets (a fresh process,
   :mod:`benchmarks.test_engine`);
4. ``sweeps`` — 1,000 random N-2 one-hour cases and the full N-1 of ``memphis:full-build`` on two
   workers, 100 cases re-run on one (:mod:`benchmarks.sweeps`).

``--only loadflow,scaling`` picks parts; ``--quick`` shortens each (200 pandapower steps, nets up to
case2869pegase, 100 sweep cases). The pytest suites (``pytest benchmarks --benchmark-enable -s``) time
the kernels with pytest-benchmark and check the ratio targets.
"""

from __future__ import annotations

import argparse
import warnings

from benchmarks.compare_loadflow import RESULTS, compare_in_fresh_process

PARTS = ("loadflow", "scaling", "engine", "sweeps")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma list of: {', '.join(PARTS)}")
    parser.add_argument("--quick", action="store_true", help="shorter runs of every part")
    args = parser.parse_args(argv)
    parts = [p for p in args.only.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; expected {', '.join(PARTS)}")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if "loadflow" in parts:
        from benchmarks.compare_loadflow import run_comparison

        print("== load-flow time series, side by side (benchmarks/results/loadflow.json)", flush=True)
        run_comparison(n_steps=3600, quick=args.quick)
    if "scaling" in parts:
        from benchmarks.scaling import NETS, run_scaling

        print("\n== scaling with network size (benchmarks/results/scaling.json)", flush=True)
        nets = [n for n in NETS if n != "case9241pegase"] if args.quick else NETS
        run_scaling(nets)
    if "engine" in parts:
        print("\n== coupled engine vs pandapower (benchmarks/results/engine.json)", flush=True)
        report = compare_in_fresh_process("benchmarks.test_engine", RESULTS.parent / "engine.json",
                                          {"TWIN_BENCH_QUICK": "1"} if args.quick else {})
        from benchmarks.test_engine import format_engine_report

        print(format_engine_report(report), flush=True)
    if "sweeps" in parts:
        from benchmarks.sweeps import run_sweeps

        print("\n== sweeps (benchmarks/results/sweeps.json)", flush=True)
        if args.quick:
            run_sweeps(n_cases=100, check_cases=20, n1=False)
        else:
            run_sweeps()


if __name__ == "__main__":
    main()
