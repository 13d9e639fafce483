"""Restart safety of the catalog without a server: runs that no process will finish are reaped."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from api.workers import pid_alive, reap_interrupted, safe_run_dir
from twin.catalog import Catalog, new_run_id


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_reap_at_start_and_later(tmp_path):
    cat = Catalog(tmp_path / "catalog.sqlite")
    ids = {}
    for name, status, pid in (("done", "done", None), ("queued", "queued", None), ("dead", "running", _dead_pid()),
                              ("alive", "running", os.getpid())):
        rid = new_run_id()
        (tmp_path / rid).mkdir()
        cat.create(run_id=rid, site="memphis", scenario=name, scenario_doc={}, status=status, store=str(tmp_path / rid))
        if pid:
            cat.update(rid, pid=pid)
        ids[name] = rid
    sweep = new_run_id("sweep")
    cat.create(run_id=sweep, site="memphis", scenario="s", scenario_doc={}, kind="sweep", status="running")
    cat.update(ids["dead"], parent=sweep)

    later = reap_interrupted(cat, at_start=False)
    assert later == [ids["dead"]]  # queued runs may belong to a live server: only at start
    assert cat.get(ids["queued"]).status == "queued"
    reaped = reap_interrupted(cat, at_start=True)
    assert reaped == [ids["queued"]]
    assert cat.get(ids["done"]).status == "done"
    assert cat.get(ids["alive"]).status == "running"  # a live process (e.g. `twin run`) is left alone
    for name in ("queued", "dead"):
        rec = cat.get(ids[name])
        assert rec.status == "failed" and rec.error.startswith("interrupted") and rec.finished
        assert json.loads((tmp_path / ids[name] / "status.json").read_text())["status"] == "failed"
    assert cat.get(sweep).status == "failed" and "did not finish" in cat.get(sweep).error  # its only case was reaped


def test_pid_alive_and_safe_dirs(tmp_path):
    assert pid_alive(os.getpid()) and not pid_alive(_dead_pid()) and not pid_alive(None)
    assert safe_run_dir(str(tmp_path / "run-x"), tmp_path) == tmp_path / "run-x"
    assert safe_run_dir(str(tmp_path / ".." / "elsewhere"), tmp_path) is None
    assert safe_run_dir(str(tmp_path), tmp_path) is None
    assert safe_run_dir(None, tmp_path) is None


def test_a_reused_pid_does_not_keep_a_run_running(tmp_path):
    """The recorded pid is alive, but it is another process than the one that ran the run."""
    cat = Catalog(tmp_path / "catalog.sqlite")
    rid = new_run_id()
    cat.create(run_id=rid, site="memphis", scenario="x", scenario_doc={}, status="running", store=str(tmp_path / rid))
    cat.update(rid, pid=os.getpid(), pid_start="another-boot:1")
    assert reap_interrupted(cat, at_start=False) == [rid]
    rec = cat.get(rid)
    assert rec.status == "failed" and "another process" in rec.error


def test_restart_records_a_killed_sweep_from_its_case_folders(tmp_path):
    """A server killed mid-sweep leaves its cases ``queued``; at restart a case whose folder says it finished is
    done with its KPIs (its worker outlived the server), the others failed, and the sweep's folder gets the
    kpis.nc, failures.json and ranking.json its server would have written."""
    import xarray as xr

    cat = Catalog(tmp_path / "catalog.sqlite")
    sweep = new_run_id("sweep")
    sweep_dir = tmp_path / sweep
    sweep_dir.mkdir()
    cat.create(run_id=sweep, site="memphis", scenario="base", kind="sweep", status="running", store=str(sweep_dir),
               scenario_doc={"base": {"scenario": {"name": "base"}}, "n1": ["bess"], "at": 60})
    ids = {}
    for name, folder in (("finished", "done"), ("cut", "running"), ("never", None)):
        rid = ids[name] = new_run_id()
        cat.create(run_id=rid, site="memphis", scenario=name, scenario_doc={"scenario": {"name": name}}, parent=sweep,
                   store=str(sweep_dir / rid))
        if folder:
            (sweep_dir / rid).mkdir()
            (sweep_dir / rid / "status.json").write_text(json.dumps({"status": folder}))
    kpis = {"pue": 1.21, "unserved_energy_mwh": 0.5, "f_min_hz": {"colossus1": 59.9}}
    (sweep_dir / ids["finished"] / "kpis.json").write_text(json.dumps(kpis))
    (sweep_dir / ids["cut"] / "kpis.json").write_text(json.dumps(kpis))  # not done: its KPIs do not count

    reaped = reap_interrupted(cat, at_start=True)
    assert sorted(reaped) == sorted([ids["cut"], ids["never"]])
    done = cat.get(ids["finished"])
    assert done.status == "done" and done.kpis == kpis and done.error is None
    assert json.loads((sweep_dir / ids["finished"] / "status.json").read_text())["status"] == "done"
    for name in ("cut", "never"):
        assert cat.get(ids[name]).status == "failed"
    assert json.loads((sweep_dir / ids["cut"] / "status.json").read_text())["status"] == "failed"
    assert cat.get(sweep).status == "failed"
    failures = json.loads((sweep_dir / "failures.json").read_text())
    assert failures == {name: cat.get(ids[name]).error for name in ("cut", "never")}
    assert json.loads((sweep_dir / "ranking.json").read_text()) == ["finished"]
    with xr.open_dataset(sweep_dir / "kpis.nc", engine="h5netcdf") as ds:
        assert list(ds.case.values) == ["finished", "cut", "never"]
        assert list(ds.status.values) == ["done", "failed", "failed"]
        assert float(ds.pue.sel(case="finished")) == 1.21 and float(ds.f_min_hz.sel(case="finished", island="colossus1")) == 59.9
        assert ds.attrs["n-1"] == "bess" and ds.attrs["contingency_at"] == "60"
    assert [json.loads(line)["case"] for line in (sweep_dir / "cases.jsonl").read_text().splitlines()] == ["finished"]
