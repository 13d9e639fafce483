"""What the engineer's page needs from the API, without a browser: the page and its files without a token,
presets, the token's scope, a run's report, and telemetry/what-if markers in the live state."""

from __future__ import annotations

import re
import time

import pytest

from api.routes.page import STATIC_DIR
from twin.scenario import list_scenarios, load_scenario

from .conftest import READ, WRITE


def test_page_and_files_need_no_token_but_data_does(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/app.js">' in r.text
    for p in STATIC_DIR.iterdir():
        r = client.get(f"/ui/{p.name}")
        assert r.status_code == 200 and r.content == p.read_bytes(), p.name
    assert client.get("/ui/app.js").headers["content-type"].startswith("text/javascript")  # modules need a JS type
    assert client.get("/ui/../main.py").status_code in (401, 404)
    assert client.get("/scenarios").status_code == 401
    assert client.get("/auth/scope").status_code == 401


def test_page_fetches_nothing_from_outside():
    """No CDN, no remote font or script: the only absolute URL in the page's files is the SVG namespace."""
    for p in STATIC_DIR.iterdir():
        urls = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s\"'`)]*", p.read_text(), flags=re.I)
        assert all(u.startswith("http://www.w3.org/2000/svg") for u in urls), (p.name, urls)


def test_presets_are_the_shipped_scenarios(client):
    data = client.get("/scenarios", headers=READ).json()
    assert [p["name"] for p in data["data"]] == list_scenarios() and data["count"] == len(list_scenarios())
    one = client.get("/scenarios/colossus1-tie-open", headers=READ).json()
    sc = load_scenario("colossus1-tie-open")
    assert one["doc"]["events"] == [e.model_dump(mode="json") for e in sc.events]
    assert one["site"] == sc.scenario.site and one["description"] == sc.scenario.description
    r = client.get("/scenarios/no-such-preset", headers=READ)
    assert r.status_code == 404 and "colossus1-tie-open" in r.json()["detail"]


@pytest.mark.parametrize("headers, scope", [(READ, "read"), (WRITE, "write")])
def test_token_scope(client, headers, scope):
    assert client.get("/auth/scope", headers=headers).json() == {"scope": scope}


def test_report_of_a_finished_run(client, finished_run):
    r = client.get(f"/runs/{finished_run}/report", headers=READ)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/markdown")
    kpis = client.get(f"/runs/{finished_run}/kpis", headers=READ).json()["kpis"]
    text = r.text
    assert text.startswith("# trip-test on memphis")
    assert f"{kpis['loading_max_pct']:,.1f}" in text  # the KPI table holds the run's KPIs
    assert "southaven/titan350-01" in text  # the scenario event, in the sequence of events
    assert client.get(f"/runs/{finished_run}/report", headers=READ).text == text  # written once, served again
    assert client.get("/runs/run-20000101-000000-000000/report", headers=READ).status_code == 404


def test_report_of_an_unfinished_run_is_409(client):
    from .conftest import scenario

    r = client.post("/runs", json=scenario("report-early", 600), headers=WRITE)
    run_id = r.json()["id"]
    r = client.get(f"/runs/{run_id}/report", headers=READ)
    assert r.status_code in (409, 200)  # 200 only if the run finished in between
    if r.status_code == 409:
        assert "once it is done" in r.json()["detail"]
    client.delete(f"/runs/{run_id}", headers=WRITE)


def test_live_state_lists_telemetry_and_whatif_events(live_ready):
    client = live_ready
    r = client.post("/live/telemetry", json={"t_amb_c": 31.25}, headers=WRITE)
    assert r.status_code == 200
    at = r.json()["time_s"]
    t_end = time.monotonic() + 10
    while True:
        events = client.get("/live/state", headers=READ).json()["events"]
        mine = [e for e in events if e["source"] == "telemetry" and e["time_s"] == at]
        if mine:
            break
        assert time.monotonic() < t_end, events
        time.sleep(0.1)
    assert mine[0]["message"] == "t_amb_c"
    r = client.post("/live/whatif", json={"horizon": 20, "events": [{"at": 5, "do": "trip", "target": "southaven/titan350-01"}]},
                    headers=WRITE)
    assert r.status_code == 200, r.text
    t_end = time.monotonic() + 10
    while not any(e["source"] == "whatif" and "1 event" in e["message"] for e in client.get("/live/state", headers=READ).json()["events"]):
        assert time.monotonic() < t_end
        time.sleep(0.1)
