"""The run catalog: create/update/list/delete, and interrupted runs marked failed at restart."""

from __future__ import annotations

import re

from twin.catalog import RUN_ID_PATTERN, Catalog, new_run_id


def test_lifecycle(tmp_path):
    cat = Catalog(tmp_path / "c.sqlite")
    rid = new_run_id()
    assert re.match(RUN_ID_PATTERN, rid)
    cat.create(run_id=rid, site="memphis", scenario="x", scenario_doc={"a": 1})
    cat.update(rid, status="running", progress=0.5, kpis={"pue": 1.2})
    r = cat.get(rid)
    assert (r.status, r.progress, r.kpis, r.scenario_doc) == ("running", 0.5, {"pue": 1.2}, {"a": 1})
    other = new_run_id()
    cat.create(run_id=other, site="memphis", scenario="y", scenario_doc={}, status="done")
    # a new process (a restart) opens the same file: interrupted runs become failed, others untouched
    again = Catalog(tmp_path / "c.sqlite")
    assert again.fail_interrupted() == [rid]
    assert again.get(rid).status == "failed" and "interrupted" in again.get(rid).error
    assert again.get(other).status == "done"
    assert {x.id for x in again.list()} == {rid, other}
    again.delete(rid)
    assert again.get(rid) is None


def test_pid_recorded_with_its_start_time_and_reuse_told_apart(tmp_path):
    import os
    import subprocess
    import sys

    from twin.catalog import process_alive, process_start

    cat = Catalog(tmp_path / "c.sqlite")
    rid = new_run_id()
    cat.create(run_id=rid, site="memphis", scenario="x", scenario_doc={})
    cat.update(rid, status="running", pid=os.getpid())
    rec = cat.get(rid)
    assert rec.pid_start == process_start(os.getpid()) and rec.process_alive()
    # the same pid, held by a process that started at another time (what a reuse after a crash looks like)
    cat.update(rid, pid=os.getpid(), pid_start=rec.pid_start.rsplit(":", 1)[0] + ":1")
    assert not cat.get(rid).process_alive() and process_alive(os.getpid())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert process_start(dead.pid) is None and not process_alive(dead.pid)


def test_older_catalog_gains_the_new_column(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the first schema, without pid_start
        db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, kind TEXT NOT NULL DEFAULT 'run', parent TEXT, site TEXT NOT NULL, "
                   "scenario TEXT NOT NULL, scenario_json TEXT NOT NULL, status TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0, "
                   "eta_s REAL, created REAL NOT NULL, started REAL, finished REAL, error TEXT, store TEXT, kpis_json TEXT, pid INTEGER)")
        db.execute("INSERT INTO runs (id, site, scenario, scenario_json, status, created, pid) VALUES ('run-1', 'm', 's', '{}', 'running', 0, 1)")
    cat = Catalog(path)
    assert cat.get("run-1").pid_start is None and cat.get("run-1").status == "running"
    cat.update("run-1", pid_start="x")
    assert cat.get("run-1").pid_start == "x"


def test_unusable_directory_is_a_clear_error(tmp_path):
    import pytest

    from twin.catalog import CatalogUnavailable

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CatalogUnavailable) as info:
        Catalog(blocker / "home" / "c.sqlite")
    assert str(blocker / "home") in str(info.value)
