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
