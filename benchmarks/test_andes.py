"""Island frequency dynamics, the engine side by side with ANDES on case (b) of the ANDES validation.

Case (b) (:mod:`tests.validation.cases`): the Colossus 2 + Southaven island, its online Titan 350 units
on TGOV1 and both Megapack yards in droop, one unit tripped 5 s in, 35 s simulated. Both tools run the
same island in one fresh process, after a short warm-up run of each (numba compilation: the engine's
kernels and ANDES's model equations):

* ours: :class:`twin.engine.Engine` with sub-steps recorded, 1 s steps of 20 sub-steps (50 ms), every
  model of the site coupled (workload, thermal/cooling, dispatch, protection, the AC load flow of the
  campus net every segment) — more than the frequency dynamics ANDES computes;
* ANDES: its time-domain simulation (implicit trapezoidal, fixed step ``TSTEP_S`` = 1/60 s) of the same island,
  one GENCLS + TGOV1 per unit and the REGCA1/REECA1/REPCA1 battery chain.

``test_bench_engine_case_b`` times our side alone with pytest-benchmark; ``test_engine_vs_andes_case_b``
runs both side by side in a fresh process and reports simulated seconds per wall second of each, for
the stepping alone (engine ``advance`` vs. ``TDS.run``) and end to end (construction, power flow and
initialisation included), and their ratios, written to ``benchmarks/results/andes.json``. No absolute
time is asserted.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("andes")

RESULTS = Path(__file__).resolve().parent / "results" / "andes.json"


def _case_b_once(horizon_s: float = 35.0) -> dict:
    from tests.validation import andes_harness as ah
    from tests.validation import cases

    tmp = Path(tempfile.mkdtemp())
    t0 = time.perf_counter()
    eng, _, group = cases.build_case_b(tmp, "trip", horizon_s)
    t_built = time.perf_counter()
    run = cases.run_engine(eng, cases.ISLAND_B)
    ours_total = time.perf_counter() - t0
    sim_s = float(run.traj.t_s[-1])
    t1 = time.perf_counter()
    ref = cases.andes_for(run, trip_group=group)
    andes_total = time.perf_counter() - t1
    return {"simulated_s": sim_s, "ours_step_s": run.wall_s, "ours_total_s": ours_total,
            "andes_step_s": ref.wall_s, "andes_total_s": andes_total, "andes_tstep_s": ah.TSTEP_S,
            "ours_substep_s": float(run.traj.t_s[2] - run.traj.t_s[1]),
            "ours_build_s": t_built - t0}


def compare_with_andes() -> dict:
    """In this process: a short warm-up run of both (compilation, caches), then the timed run."""
    _case_b_once(horizon_s=7.0)
    r = _case_b_once()
    sim = r["simulated_s"]
    out = {
        "case": "b: colossus2+southaven, one Titan 350 tripped at 5 s",
        **r,
        "ours_sim_s_per_wall_s": sim / r["ours_step_s"],
        "andes_sim_s_per_wall_s": sim / r["andes_step_s"],
        "ours_sim_s_per_wall_s_end_to_end": sim / r["ours_total_s"],
        "andes_sim_s_per_wall_s_end_to_end": sim / r["andes_total_s"],
    }
    out["ratio_ours_over_andes"] = out["ours_sim_s_per_wall_s"] / out["andes_sim_s_per_wall_s"]
    out["ratio_ours_over_andes_end_to_end"] = out["ours_sim_s_per_wall_s_end_to_end"] / out["andes_sim_s_per_wall_s_end_to_end"]
    return out


def test_bench_engine_case_b(benchmark, tmp_path):
    """pytest-benchmark times our side of case (b) alone (35 s with a trip), engine built in setup."""
    from tests.validation import cases

    cases.run_engine(cases.build_case_b(tmp_path, "trip", 7.0)[0], cases.ISLAND_B)  # compile

    def setup():
        return (cases.build_case_b(tmp_path, "trip")[0],), {}

    run = benchmark.pedantic(lambda eng: cases.run_engine(eng, cases.ISLAND_B), setup=setup, rounds=3, iterations=1)
    assert run.traj.t_s[-1] == pytest.approx(35.0)


@pytest.mark.slow
def test_engine_vs_andes_case_b():
    """Side by side in one fresh process: simulated seconds per wall second, ours and ANDES's, case (b)."""
    from benchmarks.compare_loadflow import compare_in_fresh_process

    report = compare_in_fresh_process("benchmarks.test_andes", RESULTS)
    print(f"\ncase (b), {report['simulated_s']:.0f} s simulated: engine {report['ours_sim_s_per_wall_s']:,.0f} sim-s/wall-s "
          f"(end to end {report['ours_sim_s_per_wall_s_end_to_end']:,.1f}); ANDES {report['andes_sim_s_per_wall_s']:,.2f} "
          f"(end to end {report['andes_sim_s_per_wall_s_end_to_end']:,.2f}); ratio {report['ratio_ours_over_andes']:,.0f}x "
          f"(end to end {report['ratio_ours_over_andes_end_to_end']:,.1f}x)")
    assert np.isfinite(report["ratio_ours_over_andes"]) and report["simulated_s"] == pytest.approx(35.0)


if __name__ == "__main__":  # pragma: no cover - the subprocess of test_engine_vs_andes_case_b
    if "--compare" in sys.argv:
        print(json.dumps(compare_with_andes()))
