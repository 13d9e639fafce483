"""POST/GET/DELETE /sweeps: cases as runs of the worker pool, aggregated status and ranked KPIs."""

from __future__ import annotations

import pytest

from .conftest import READ, WRITE, scenario, wait_for


def test_sweep_of_listed_cases(client, home):
    body = {"base": scenario("sweep-base", 60), "at": 10,
            "cases": [{"name": "trip two", "events": [{"at": 10, "do": "trip", "target": "southaven/titan350-0[12]"}]},
                      {"name": "hot", "weather": {"t_amb_c": 42.0}}]}
    r = client.post("/sweeps", json=body, headers=WRITE)
    assert r.status_code == 202, r.text
    sid = r.json()["id"]
    assert sid.startswith("sweep-")
    j = wait_for(client, f"/sweeps/{sid}", timeout_s=180)
    assert j["status"] == "done" and j["progress_pct"] == 100.0, j
    assert [c["case"] for c in j["cases"]] == ["base", "trip two", "hot"] and j["counts"] == {"done": 3}
    for c in j["cases"]:
        assert (home / sid / c["run_id"] / "results.zarr").is_dir()
        run = client.get(f"/runs/{c['run_id']}", headers=READ).json()
        assert run["parent"] == sid
    k = client.get(f"/sweeps/{sid}/kpis", headers=READ).json()
    assert k["complete"] and len(k["cases"]) == 3
    assert k["ranking"][0] == "trip two"  # losing two units is the worst case
    by_case = {c["case"]: c["kpis"] for c in k["cases"]}
    assert by_case["trip two"]["f_min_hz"]["colossus2+southaven"] < by_case["base"]["f_min_hz"]["colossus2+southaven"]
    assert sid in [s["id"] for s in client.get("/sweeps", headers=READ).json()["data"]]
    assert sid not in [s["id"] for s in client.get("/runs", headers=READ).json()["data"]]
    assert client.delete(f"/sweeps/{sid}", headers=WRITE).status_code == 204
    assert not (home / sid).exists()
    assert client.get(f"/sweeps/{sid}", headers=READ).status_code == 404
    assert client.get(f"/runs/{j['cases'][0]['run_id']}", headers=READ).status_code == 404


@pytest.mark.parametrize("body,field", [
    ({"base": scenario("s", 60), "n1": ["turbines"]}, "n1"),  # 39 turbines > the cap of 5 cases
    ({"base": scenario("s", 60), "n1": ["everything"]}, "n1[0]"),
    ({"base": scenario("s", 60), "at": 120, "n1": ["bess"]}, "at"),
    ({"base": scenario("s", 60), "cases": [{"name": "x", "events": [{"at": 1, "do": "trip", "target": "memphis/none"}]}]}, "cases[0].events[0].target"),
    ({"base": scenario("s", 60), "cases": [{"name": "x", "weather": {"t_amb_c": 99}}]}, "cases[0].weather.t_amb_c"),
    ({"base": scenario("s", 60), "cases": [{"name": "a"}, {"name": "a"}]}, "cases"),
    ({"base": {"scenario": {"name": "s", "horizon": 9e9}}}, "base.scenario.horizon"),
])
def test_invalid_sweeps(client, body, field):
    r = client.post("/sweeps", json=body, headers=WRITE)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.json()


def test_sweep_auth_and_unknown_ids(client):
    body = {"base": scenario("s", 60)}
    assert client.post("/sweeps", json=body).status_code == 401
    assert client.post("/sweeps", json=body, headers=READ).status_code == 403
    assert client.get("/sweeps/sweep-20990101-000000-abcdef", headers=READ).status_code == 404
    assert client.get("/sweeps/sweep-20990101-000000-abcdef/kpis", headers=READ).status_code == 404
    assert client.delete("/sweeps/sweep-20990101-000000-abcdef", headers=WRITE).status_code == 404


def test_a_run_is_not_a_sweep(client, finished_run):
    assert client.get(f"/sweeps/{finished_run}", headers=READ).status_code == 404
