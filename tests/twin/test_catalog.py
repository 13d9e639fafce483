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
