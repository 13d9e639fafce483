"""Sweeps that never abort: failures recorded with their reason, results written as cases finish,
resumption, random N-k samples (a real dask cluster: test_cluster.py; the API's sweeps: tests/api/test_sweeps.py)."""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sites import load_site
from twin.sweep import (RECORDS, collect_cases, dask_client, read_records, rank_cases, run_case, sample_cases, submit_cases,
                        sweep, write_sweep_report)

ROOT = Path(__file__).resolve().parents[2]
BASE = {"scenario": {"name": "short", "site": "memphis", "start": "2026-07-15T14:30:00", "horizon": "00:03:00"},
        "weather": {"design_day": "memphis-0.4pct"}, "workload": {"seed": 3}}
#: a case that fails once it runs (its workload trace does not exist): it must be recorded with its reason
BAD = "no-such-trace.csv"
#: a trip that splits an island (runs: twin.topology)
SPLIT = "colossus1/cable-h1"
CASES = (f'[[cases]]\nname = "bad trace"\n[cases.workload]\ntrace = "{BAD}"\n'
         f'[[cases]]\nname = "split"\n[[cases.events]]\nat = "00:01:00"\ndo = "trip"\ntarget = "{SPLIT}"\n'
         '[[cases]]\nname = "two trips"\n[[cases.events]]\nat = "00:01:00"\ndo = "trip"\n'
         'target = "southaven/titan350-*"\ncount = 2\n')


def test_a_failing_case_is_a_record_not_an_exception():
    doc = copy.deepcopy(BASE)
    doc["workload"] = {**doc["workload"], "trace": BAD}
    rec = run_case("memphis", "bad trace", doc)
    assert rec["status"] == "failed" and rec["case"] == "bad trace"
    assert "ScenarioError" in rec["error"] and "no such file" in rec["error"]
    doc = copy.deepcopy(BASE)
    doc["events"] = [{"at": "00:01:00", "do": "trip", "target": SPLIT}]
    split = run_case("memphis", "split", doc)
    assert split["status"] == "done" and split["unserved_energy_mwh"] > 0  # the hall cut off is not served
    ok = run_case("memphis", "base", copy.deepcopy(BASE))
    assert ok["status"] == "done" and ok["error"] is None and ok["unserved_energy_mwh"] is not None


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    cases = out / "cases.toml"
    cases.write_text(CASES)
    seen = []
    ds, ranking = sweep("memphis", BASE, n1=["grid-ties"], cases_file=cases, at="00:01:00", out_dir=out / "run",
                        n_workers=1, progress=lambda d, n: seen.append((d, n)))
    return out, cases, ds, ranking, seen


def test_sweep_goes_on_after_a_failed_case_and_records_it(finished):
    out, _, ds, ranking, seen = finished
    run = out / "run"
    names = list(ds.case.values)
    assert names == ["base", "open colossus1/mlgw-63", "open colossus2/mlgw-service", "bad trace", "split", "two trips"]
    status = dict(zip(names, ds.status.values))
    assert status["bad trace"] == "failed" and all(s == "done" for n, s in status.items() if n != "bad trace")
    assert np.isnan(ds.sel(case="bad trace").unserved_energy_mwh) and np.isfinite(ds.sel(case="two trips").pue)
    assert "bad trace" not in ranking and sorted(ranking) == sorted(n for n in names if n != "bad trace")
    assert ranking == rank_cases(ds)
    failures = json.loads((run / "failures.json").read_text())
    assert list(failures) == ["bad trace"] and BAD in failures["bad trace"]
    csv = pd.read_csv(run / "kpis.csv")
    assert (csv[csv.case == "bad trace"].error.str.contains("ScenarioError")).all()
    assert len(read_records(run)) == 6  # every case written as it finished
    assert seen[0] == (0, 6) and seen[-1] == (6, 6)
    report = write_sweep_report(ds, ranking, run).read_text()
    assert "Failed cases (1)" in report and BAD in report


def test_an_interrupted_sweep_resumes_with_the_cases_it_lacks(finished, tmp_path):
    out, cases, ds, _, _ = finished
    lines = (out / "run" / RECORDS).read_text().splitlines()
    kept = [json.loads(x)["case"] for x in lines[:3]]
    part = tmp_path / "part"
    part.mkdir()
    # three cases finished, then the sweep was killed in the middle of writing the fourth
    (part / RECORDS).write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])
    seen = []
    ds2, _ = sweep("memphis", BASE, n1=["grid-ties"], cases_file=cases, at="00:01:00", out_dir=part, n_workers=1,
                   progress=lambda d, n: seen.append(d))
    assert seen[0] == 3  # the recorded cases were not run again
    assert set(read_records(part)) == set(ds.case.values)
    for v in ("unserved_energy_mwh", "gpu_hours_lost", "f_min_hz", "pue", "status"):
        np.testing.assert_array_equal(ds2[v].values, ds[v].values)
    assert set(kept) < set(ds2.case.values)


def test_random_n_k_samples_are_seeded_and_distinct():
    site = load_site("memphis")
    doc = copy.deepcopy(BASE)
    a = sample_cases(site, doc, ["turbines", "bess"], 2, 25, seed=4, at="00:01:00")
    b = sample_cases(site, doc, ["turbines", "bess"], 2, 25, seed=4, at="00:01:00")
    c = sample_cases(site, doc, ["turbines", "bess"], 2, 25, seed=5, at="00:01:00")
    assert [n for n, _ in a] == [n for n, _ in b] != [n for n, _ in c]
    assert len({n for n, _ in a}) == 25
    for name, d in a:
        targets = [e["target"] for e in d["events"]]
        assert len(targets) == 2 and len(set(targets)) == 2 and name.count(" + ") == 1
    n_bess = len(site.bess)
    everything = sample_cases(site, doc, ["bess"], 2, 1000, at="00:01:00")  # fewer combinations than asked
    assert len(everything) == n_bess * (n_bess - 1) // 2



@pytest.mark.parametrize("sample", [None, 3, 12])
def test_a_kind_named_twice_counts_once(sample):
    """``--n-1 bess,bess`` (or ``n1: ["bess", "bess"]``) sweeps each battery once: the same cases as ``bess``,
    not a 'repeated case names' error (N-1) or a random case that takes one battery out twice (N-k)."""
    from twin.sweep import generate_cases

    site = load_site("memphis")
    once = generate_cases(site, copy.deepcopy(BASE), ["bess"], "00:01:00", [], sample, 2, seed=1)
    twice = generate_cases(site, copy.deepcopy(BASE), ["bess", "bess"], "00:01:00", [], sample, 2, seed=1)
    assert twice == once
    for _, doc in twice[0][1:]:
        targets = [e["target"] for e in doc["events"]]
        assert len(set(targets)) == len(targets)

@pytest.mark.parametrize("n1,sample,k,listed", [
    (["turbines", "bess"], None, 2, 0), ([], None, 2, 2), (["bess"], 2, 2, 1), (["bess"], 1000, 2, 0), ([], 5, 3, 1),
])
def test_generate_cases_counts_what_it_makes_before_making_it(n1, sample, k, listed):
    """The limit is checked on a count made before any case is built: it must be the number of cases built."""
    from twin.sweep import TooManyCases, generate_cases

    site = load_site("memphis")
    docs = [{"name": f"listed {i}", "weather": {"t_amb_c": 30.0 + i}} for i in range(listed)]
    cases, text = generate_cases(site, copy.deepcopy(BASE), n1, "00:01:00", docs, sample, k, seed=2)
    n = len(cases)
    assert [c for c, _ in cases][0] == "base" and [c for c, _ in cases][n - listed:] == [d["name"] for d in docs]
    assert (text == "") == (sample is None)
    assert generate_cases(site, copy.deepcopy(BASE), n1, "00:01:00", docs, sample, k, seed=2, max_cases=n)[0] == cases
    with pytest.raises(TooManyCases) as info:
        generate_cases(site, copy.deepcopy(BASE), n1, "00:01:00", docs, sample, k, seed=2, max_cases=n - 1)
    assert (info.value.n_cases, info.value.max_cases) == (n, n - 1) and f"{n} cases" in str(info.value)
    assert info.value.field == ("sample" if sample else "n-1" if n1 else "cases")


def test_local_workers_run_without_dask_malloc_trim_threshold():
    """dask's default MALLOC_TRIM_THRESHOLD_ turns off glibc's dynamic mmap threshold (page faults on
    every segment's arrays): the sweep's LocalCluster workers are spawned without it."""
    from twin.sweep import dask_client

    saved = os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    try:
        with dask_client(n_workers=1) as client:
            env = client.run(lambda: {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")})
    finally:
        if saved is not None:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = saved
    (worker_env,) = env.values()
    assert worker_env == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}


def test_a_cancelled_case_frees_its_worker_at_the_next_segment():
    """Cancelling a running case (a cancelled API sweep) stops it between segments: the worker is idle
    within 5 s, where the rest of the ten-day case would take about 9 s of CPU (a simulated day of memphis
    costs 1.0 s, measured)."""
    doc = copy.deepcopy(BASE)
    doc["scenario"]["horizon"] = "240:00:00"
    with dask_client(n_workers=1) as client:
        assert client.submit(run_case, "memphis", "warm", copy.deepcopy(BASE)).result()["status"] == "done"  # kernels loaded
        futures = submit_cases(client, "memphis", [("ten days", doc)], prefix="cancel-test")
        busy = lambda: sum(client.run(lambda dask_worker: dask_worker.state.executing_count).values())  # noqa: E731
        t_end = time.monotonic() + 120
        while not busy():  # the case is running
            assert time.monotonic() < t_end, "the case did not start"
            time.sleep(0.1)
        time.sleep(1.0)
        client.cancel(list(futures))
        records = []
        collect_cases(futures, records.append)
        t0 = time.monotonic()
        while busy():
            assert time.monotonic() - t0 < 5.0, "the cancelled case still runs"
            time.sleep(0.1)
    assert [(r["case"], r["status"]) for r in records] == [("ten days", "cancelled")]
