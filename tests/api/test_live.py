"""The live twin: GET /live/state, POST /live/telemetry, POST /live/whatif, and GET /metrics."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from api.main import create_app

from .conftest import READ, WRITE, make_settings


def _state(c) -> dict:
    r = c.get("/live/state", headers=READ)
    assert r.status_code == 200
    return r.json()


def test_state_steps_in_real_time(live_ready):
    a = _state(live_ready)
    time.sleep(0.7)  # the test settings step every 0.2 s
    b = _state(live_ready)
    assert b["time_s"] > a["time_s"]
    assert set(a["islands"]) == {"colossus1", "colossus2+southaven", "colossus2/service"}
    isl = a["islands"]["colossus2+southaven"]
    assert 59.0 < isl["f_hz"] < 61.0 and isl["grid_tied"] is False
    # power balance of the island: turbines + batteries + grid = load + losses + unserved (within a step)
    supply = isl["p_turbine_mw"] + isl["p_bess_mw"] + isl["p_grid_mw"]
    assert supply == pytest.approx(isl["p_load_mw"] + isl["p_loss_mw"] - isl["p_unserved_mw"], rel=0.05)
    assert isl["n1_margin_frac"] < isl["reserve_margin_frac"]
    assert len(a["turbines"]) == 39 and len(a["halls"]) == 13


def test_telemetry_is_held_and_shown(live_ready):
    r = live_ready.post("/live/telemetry", headers=WRITE,
                        json={"p_it_mw": {"colossus1/h1": 12.5}, "t_amb_c": 38.0, "units": {"southaven/titan350-27": "online"}})
    assert r.status_code == 200, r.text
    assert "start southaven/titan350-27" in r.json()["applied"]
    time.sleep(0.6)
    s = _state(live_ready)
    assert s["halls"]["colossus1/h1"]["p_it_mw"] == pytest.approx(12.5)
    assert s["t_amb_c"] == pytest.approx(38.0)
    assert s["turbines"]["southaven/titan350-27"]["status"] in ("starting", "online")


@pytest.mark.parametrize("body,field", [
    ({"p_it_mw": {"colossus1/h99": 10}}, "p_it_mw.colossus1/h99"),
    ({"p_it_mw": {"colossus1/h1": -5}}, "p_it_mw.colossus1/h1"),
    ({"units": {"southaven/nothing": "offline"}}, "units.southaven/nothing"),
    ({"units": {"southaven/titan350-01": "broken"}}, "units.southaven/titan350-01"),
    ({"t_amb_c": 99}, "t_amb_c"),
    ({"pressure": 1}, "pressure"),
])
def test_bad_telemetry_is_422(live_ready, body, field):
    r = live_ready.post("/live/telemetry", headers=WRITE, json=body)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


def test_whatif_from_the_live_state(live_ready):
    base = live_ready.post("/live/whatif", headers=WRITE, json={"horizon": 60})
    trip = live_ready.post("/live/whatif", headers=WRITE,
                           json={"horizon": "00:01:00", "events": [{"at": 5, "do": "trip", "target": "southaven/titan350-0[1-3]"}]})
    assert base.status_code == 200 and trip.status_code == 200, trip.text
    b, t = base.json(), trip.json()
    assert t["horizon_s"] == 60 and t["from_time_s"] > 0
    isl = "colossus2+southaven"
    assert t["kpis"]["f_min_hz"][isl] < b["kpis"]["f_min_hz"][isl]
    assert t["kpis"]["horizon_h"] == pytest.approx(60 / 3600)


def test_whatif_with_a_split_from_the_live_state(live_ready):
    """A what-if that cuts a hall off: the live engine's copy gets an island slot for it (Engine.plan_events) and
    the hall's load is unserved."""
    r = live_ready.post("/live/whatif", headers=WRITE,
                        json={"horizon": 30, "events": [{"at": 5, "do": "trip", "target": "colossus1/cable-h1"}]})
    assert r.status_code == 200, r.text
    k = r.json()["kpis"]
    assert k["unserved_energy_mwh"] > 0 and "colossus1/hall-h1" in k["f_min_hz"] and k["f_min_hz"]["colossus1/hall-h1"] is None


@pytest.mark.parametrize("body,code", [
    ({"horizon": 3600}, 422),  # over the 600 s cap of the test settings
    ({"horizon": 60, "events": [{"at": 5, "do": "trip", "target": "memphis/none"}]}, 422),
    ({"horizon": 60, "events": [{"at": 90, "do": "trip", "target": "southaven/titan350-01"}]}, 422),
    ({"horizon": "soon"}, 422),
])
def test_bad_whatif(live_ready, body, code):
    r = live_ready.post("/live/whatif", headers=WRITE, json=body)
    assert r.status_code == code, r.text
    assert r.json()["errors"]


def test_live_auth(live_ready):
    assert live_ready.get("/live/state").status_code == 401
    assert live_ready.post("/live/telemetry", json={}, headers=READ).status_code == 403
    assert live_ready.post("/live/whatif", json={}, headers=READ).status_code == 403


def test_metrics(live_ready, finished_run):
    live_ready.get("/live/state", headers=READ)
    # the finished-runs counter is bumped by the pool's watcher just after the catalog says "done"
    t_end = time.monotonic() + 30
    while 'twin_runs_finished_total{status="done"}' not in live_ready.get("/metrics", headers=READ).text:
        assert time.monotonic() < t_end, "the finished run never reached the metrics"
        time.sleep(0.2)
    r = live_ready.get("/metrics", headers=READ)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for line in ('twin_live_up 1.0', 'twin_live_frequency_hertz{island="colossus2+southaven"}',
                 'twin_live_power_megawatts{island="colossus1",source="grid"}', 'twin_live_bess_soc_ratio{bess="colossus1/megapack"}',
                 'twin_live_temperature_celsius{hall="colossus1/h1",node="gpu"}', 'twin_live_reserve_margin_ratio{island="colossus1"}',
                 'twin_live_n1_margin_ratio{island="colossus2+southaven"}', 'twin_runs_finished_total{status="done"}',
                 'twin_http_requests_total{method="GET",route="/live/state",status="200"}',
                 'twin_http_request_duration_seconds_bucket{le="0.05",route="/live/state"}'):
        assert line in text, line
    assert live_ready.get("/metrics").status_code == 401


def test_live_disabled_is_503(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, live_enabled=False))) as c:
        r = c.get("/live/state", headers=READ)
        assert r.status_code == 503 and "disabled" in r.json()["detail"]
        assert c.post("/live/whatif", json={"horizon": 60}, headers=WRITE).status_code == 503
        assert c.get("/healthz").json()["live"] == "disabled"
        assert "twin_live_up 0.0" in c.get("/metrics", headers=READ).text


def test_auth_disabled_and_no_tokens(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, live_enabled=False, auth_disabled=True))) as c:
        assert c.get("/sites").status_code == 200
    with TestClient(create_app(make_settings(tmp_path, live_enabled=False, read_tokens="", write_tokens=""))) as c:
        assert c.get("/sites", headers=READ).status_code == 401  # secure by default: no token is valid
