"""Sweeps that never abort: failures recorded with their reason, results written as cases finish,
resumption, random N-k samples, and a real dask cluster (scheduler and workers as separate processes)."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sites import load_site
from twin.sweep import RECORDS, read_records, rank_cases, run_case, sample_cases, sweep, write_sweep_report

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_external_cluster_gives_the_local_cluster_numbers(finished, tmp_path):
    """A ``dask scheduler`` and two ``dask worker`` processes on loopback run the same sweep."""
    out, cases, ds_local, rank_local, _ = finished
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "MALLOC_TRIM_THRESHOLD_": ""}
    env.pop("MALLOC_TRIM_THRESHOLD_")
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs = [subprocess.Popen(dask + ["--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)]
    address = f"tcp://127.0.0.1:{port}"
    try:
        for _ in range(2):
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                           "--no-dashboard", "--host", "127.0.0.1"], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT))
        from dask.distributed import Client

        deadline = time.monotonic() + 60
        while True:  # the scheduler and both workers are up
            try:
                with Client(address, timeout=5) as c:
                    if len(c.scheduler_info()["workers"]) == 2:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the dask cluster did not start within 60 s"
            time.sleep(0.5)
        ds, ranking = sweep("memphis", BASE, n1=["grid-ties"], cases_file=cases, at="00:01:00", out_dir=tmp_path,
                            scheduler=address)
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    assert list(ds.case.values) == list(ds_local.case.values)
    for v in ds.data_vars:
        np.testing.assert_array_equal(ds[v].values, ds_local[v].values, err_msg=v)
    assert ranking == rank_local


@pytest.mark.slow
def test_api_sweep_and_cli_sweep_give_the_same_kpis(tmp_path):
    """The same cases through ``POST /sweeps`` and through :func:`twin.sweep.sweep` (the CLI's path)."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from tests.api.conftest import READ, WRITE, make_settings, wait_for

    base = {"scenario": {"name": "same", "site": "memphis", "horizon": 120}}
    cases = [{"name": "trip two", "events": [{"at": 30, "do": "trip", "target": "southaven/titan350-0[12]"}]},
             {"name": "bess out", "events": [{"at": 30, "do": "fail", "target": "colossus2/megapack"}]}]
    with TestClient(create_app(make_settings(tmp_path / "home", live_period_s=3600.0))) as client:
        r = client.post("/sweeps", json={"base": base, "at": 30, "cases": cases}, headers=WRITE)
        assert r.status_code == 202, r.text
        sid = r.json()["id"]
        assert wait_for(client, f"/sweeps/{sid}", timeout_s=240)["status"] == "done"
        api = {c["case"]: c["kpis"] for c in client.get(f"/sweeps/{sid}/kpis", headers=READ).json()["cases"]}
    toml = "".join(f'[[cases]]\nname = "{c["name"]}"\n[[cases.events]]\nat = 30\ndo = "{c["events"][0]["do"]}"\n'
                   f'target = "{c["events"][0]["target"]}"\n' for c in cases)
    (tmp_path / "cases.toml").write_text(toml)
    ds, _ = sweep("memphis", base, cases_file=tmp_path / "cases.toml", at=30, out_dir=tmp_path / "cli", n_workers=1)
    assert sorted(api) == sorted(ds.case.values)
    for case, kpis in api.items():
        row = ds.sel(case=case)
        for key in ("unserved_energy_mwh", "gpu_hours_lost", "loading_max_pct", "vm_min_pu", "t_gpu_max_c", "fuel_mmbtu",
                    "bess_soc_min", "pue"):
            assert float(row[key]) == pytest.approx(kpis[key], rel=1e-9, abs=1e-9), (case, key)
        for isl, f in kpis["f_min_hz"].items():
            assert float(row.f_min_hz.sel(island=isl)) == pytest.approx(f, rel=1e-9, abs=1e-9), (case, isl)


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
