"""POST/GET/DELETE /runs and the KPI and series endpoints, with every error case."""

from __future__ import annotations

import io
import json

import pytest

from .conftest import READ, WRITE, scenario, wait_for


def test_run_lifecycle(client, finished_run, home):
    j = client.get(f"/runs/{finished_run}", headers=READ).json()
    assert j["status"] == "done" and j["progress_pct"] == 100.0 and j["eta_s"] == 0.0
    assert j["scenario"] == "trip-test" and j["site"] == "memphis" and j["has_results"]
    assert j["scenario_doc"]["events"][0]["target"] == "southaven/titan350-01"
    assert (home / finished_run / "results.zarr").is_dir()
    listed = client.get("/runs", headers=READ).json()["data"]
    assert finished_run in [r["id"] for r in listed]
    assert all(r["status"] == "done" for r in client.get("/runs?status=done", headers=READ).json()["data"])


def test_kpis_of_a_finished_run(client, finished_run, home):
    r = client.get(f"/runs/{finished_run}/kpis", headers=READ)
    assert r.status_code == 200
    kpis = r.json()["kpis"]
    assert kpis == json.loads((home / finished_run / "kpis.json").read_text())
    assert kpis["f_min_hz"]["colossus2+southaven"] < 60.0  # the trip dips the islanded microgrid
    assert kpis["horizon_h"] == pytest.approx(600 / 3600)


def test_events_of_a_finished_run(client, finished_run, home):
    """GET /runs/{id}/events: the scenario's trip first, then what followed, as events.csv holds them."""
    r = client.get(f"/runs/{finished_run}/events", headers=READ)
    assert r.status_code == 200, r.text
    ev = r.json()["events"]
    assert ev[0]["source"] == "scenario" and ev[0]["kind"] == "trip" and ev[0]["component"] == "southaven/titan350-01"
    assert [e["t_s"] for e in ev] == sorted(e["t_s"] for e in ev)
    assert len(ev) == len((home / finished_run / "events.csv").read_text().strip().splitlines()) - 1
    assert client.get("/runs/run-00000000-000000-000000/events", headers=READ).status_code == 404


def test_series_json_slice(client, finished_run):
    r = client.get(f"/runs/{finished_run}/series", headers=READ,
                   params={"var": "f_hz", "entity": "colossus2+southaven", "start": "00:01:50", "end": 130})
    assert r.status_code == 200
    j = r.json()
    assert j["units"] == "Hz" and j["dims"] == ["time", "island"]
    assert j["time"][0] == "2026-07-15T00:01:50.000" and j["time"][-1] == "2026-07-15T00:02:10.000"
    f = j["series"]["colossus2+southaven"]
    assert len(f) == 21 and all(59.0 < x < 61.0 for x in f)
    assert min(f[10:]) < min(f[:10])  # the trip at 02:00 pulls the frequency below its swings before


def test_series_iso_times_every_and_csv(client, finished_run):
    r = client.get(f"/runs/{finished_run}/series", headers=READ,
                   params={"var": "p_turbine_mw", "entity": ["southaven/titan350-01", "southaven/titan350-02"],
                           "start": "2026-07-15T00:00:00", "end": "2026-07-15T00:09:59", "every": 60, "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = r.text.strip().splitlines()
    assert rows[0] == "time,southaven/titan350-01,southaven/titan350-02"
    assert len(rows) == 1 + 10
    last = rows[-1].split(",")
    assert float(last[1]) == 0.0 and float(last[2]) > 0.0  # unit 01 tripped at 02:00


def test_series_netcdf_download(client, finished_run):
    import xarray as xr

    r = client.get(f"/runs/{finished_run}/series", headers=READ, params={"var": "soc_bess", "end": 59, "format": "netcdf"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-netcdf"
    assert "attachment" in r.headers["content-disposition"]
    ds = xr.open_dataset(io.BytesIO(r.content), engine="h5netcdf")
    assert ds["soc_bess"].shape == (60, 3) and ds["soc_bess"].attrs["units"] == "1"


@pytest.mark.parametrize("params,code,field", [
    ({"var": "nope"}, 422, "var"),
    ({"var": "f_hz", "entity": "colossus9"}, 422, "entity"),
    ({"var": "t_amb_c", "entity": "colossus1"}, 422, "entity"),
    ({"var": "f_hz", "start": "yesterday"}, 422, "start"),
    ({"var": "f_hz", "start": 100, "end": 50}, 422, "end"),
    ({"var": "f_hz", "every": -1}, 422, "query.every"),
    ({"var": "f_hz", "format": "xlsx"}, 422, "query.format"),
    ({}, 422, "query.var"),
])
def test_series_errors(client, finished_run, params, code, field):
    r = client.get(f"/runs/{finished_run}/series", headers=READ, params=params)
    assert r.status_code == code, r.text
    if field:
        assert field in [e["field"] for e in r.json()["errors"]]


def test_series_over_the_point_cap_is_413(tmp_path):
    from fastapi.testclient import TestClient

    from api.main import create_app

    from .conftest import make_settings

    app = create_app(make_settings(tmp_path, max_series_points=100, live_enabled=False))
    with TestClient(app) as c:
        rid = c.post("/runs", json=scenario("cap", 60), headers=WRITE).json()["id"]
        assert wait_for(c, f"/runs/{rid}")["status"] == "done"
        r = c.get(f"/runs/{rid}/series", headers=READ, params={"var": "f_hz"})
        assert r.status_code == 413 and "cap" in r.json()["detail"]
        assert c.get(f"/runs/{rid}/series", headers=READ, params={"var": "f_hz", "every": 10}).status_code == 200


@pytest.mark.parametrize("body,field", [
    ({"scenario": {}}, "scenario.name"),
    ({"scenario": {"name": "x"}, "wheather": {}}, "wheather"),
    ({"scenario": {"name": "Bad Name"}}, "scenario.name"),
    ({"scenario": {"name": "x", "horizon": "25:61:00"}}, "scenario.horizon"),
    ({"scenario": {"name": "x", "horizon": 7 * 3600}}, "scenario.horizon"),  # over the 6 h cap
    ({"scenario": {"name": "x", "site": "/etc/passwd"}}, "scenario.site"),
    ({"scenario": {"name": "x", "horizon": 60}, "weather": {"profile": "/etc/passwd"}}, "weather.profile"),
    ({"scenario": {"name": "x", "horizon": 60}, "events": [{"at": 5, "do": "trip", "target": "memphis/none"}]}, "events[0].target"),
    ({"scenario": {"name": "x", "horizon": 60}, "events": [{"at": 99, "do": "trip", "target": "southaven/titan350-01"}]}, None),
    ({"scenario": {"name": "x", "horizon": 60}, "events": [{"at": 5, "do": "start", "target": "colossus1/megapack"}]}, "events[0].do"),
    ([1, 2], "(body)"),
])
def test_invalid_scenarios_are_422_with_field_paths(client, body, field):
    r = client.post("/runs", json=body, headers=WRITE)
    assert r.status_code == 422, r.text
    j = r.json()
    assert j["errors"], j
    if field:
        assert field in [e["field"] for e in j["errors"]], j


def test_malformed_json_and_oversized_body(client):
    r = client.post("/runs", content=b"{not json", headers={**WRITE, "content-type": "application/json"})
    assert r.status_code == 422
    big = scenario("big", 60, scenario={"name": "big", "description": "x" * 70_000})
    assert client.post("/runs", json=big, headers=WRITE).status_code == 413


def test_write_routes_need_a_write_token(client, finished_run):
    assert client.post("/runs", json=scenario()).status_code == 401
    assert client.post("/runs", json=scenario(), headers=READ).status_code == 403
    assert client.delete(f"/runs/{finished_run}", headers=READ).status_code == 403
    assert client.get(f"/runs/{finished_run}").status_code == 401


def test_unknown_and_invalid_ids(client):
    assert client.get("/runs/run-20990101-000000-abcdef", headers=READ).status_code == 404
    assert client.get("/runs/run-20990101-000000-abcdef/kpis", headers=READ).status_code == 404
    assert client.get("/runs/run-20990101-000000-abcdef/series?var=f_hz", headers=READ).status_code == 404
    assert client.delete("/runs/run-20990101-000000-abcdef", headers=WRITE).status_code == 404
    for bad in ("..%2F..%2Fetc", "catalog.sqlite", "run-1", "RUN-20990101-000000-abcdef"):
        assert client.get(f"/runs/{bad}", headers=READ).status_code in (404, 422)
        assert client.delete(f"/runs/{bad}", headers=WRITE).status_code in (404, 405, 422)


def test_kpis_of_an_unfinished_run_are_409_and_delete_cancels(client, home):
    r = client.post("/runs", json=scenario("long", 6 * 3600), headers=WRITE)
    assert r.status_code == 202 and r.headers["location"] == f"/runs/{r.json()['id']}"
    rid = r.json()["id"]
    assert client.get(f"/runs/{rid}/kpis", headers=READ).status_code == 409
    wait_for(client, f"/runs/{rid}", done=lambda j: j["status"] == "running")
    assert client.delete(f"/runs/{rid}", headers=WRITE).status_code == 204
    assert client.get(f"/runs/{rid}", headers=READ).status_code == 404
    assert not (home / rid).exists()


def test_delete_a_finished_run(client, home):
    rid = client.post("/runs", json=scenario("to-delete", 30), headers=WRITE).json()["id"]
    assert wait_for(client, f"/runs/{rid}")["status"] == "done"
    assert (home / rid).is_dir()
    assert client.delete(f"/runs/{rid}", headers=WRITE).status_code == 204
    assert not (home / rid).exists()
    assert client.get(f"/runs/{rid}", headers=READ).status_code == 404


def test_queue_cap_and_a_killed_worker(tmp_path):
    import os
    import signal

    from fastapi.testclient import TestClient

    from api.main import create_app

    from .conftest import make_settings

    app = create_app(make_settings(tmp_path, max_queued=1, live_enabled=False))
    with TestClient(app) as c:
        first = c.post("/runs", json=scenario("a", 6 * 3600), headers=WRITE).json()["id"]
        running = wait_for(c, f"/runs/{first}", done=lambda j: j["status"] == "running")
        assert running["started"] is not None
        second = c.post("/runs", json=scenario("b", 60), headers=WRITE)
        assert second.status_code == 202
        third = c.post("/runs", json=scenario("c", 60), headers=WRITE)
        assert third.status_code == 429 and third.headers["retry-after"]
        pid = app.state.services.catalog.get(first).pid
        os.kill(pid, signal.SIGKILL)  # a worker dying without a word
        j = wait_for(c, f"/runs/{first}")
        assert j["status"] == "failed" and "SIGKILL" in j["error"]
        assert json.loads((tmp_path / first / "status.json").read_text())["status"] == "failed"
        assert wait_for(c, f"/runs/{second.json()['id']}")["status"] == "done"  # the pool goes on
