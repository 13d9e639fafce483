"""POST/GET/DELETE /sweeps: cases run on dask by twin.sweep's executor (the CLI's), aggregated status,
ranked KPIs, recorded failures, cancellation and shutdown."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import xarray as xr
from fastapi.testclient import TestClient

from api.main import create_app
from twin.catalog import Catalog

from .conftest import READ, WRITE, make_settings, scenario, wait_for



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
        run = client.get(f"/runs/{c['run_id']}", headers=READ).json()
        assert run["parent"] == sid and run["status"] == "done" and run["has_results"]  # written by the dask worker
        assert (home / sid / c["run_id"] / "results.zarr").is_dir()
    f = client.get(f"/runs/{j['cases'][1]['run_id']}/series?var=f_hz&end=30", headers=READ)
    assert f.status_code == 200, f.text
    ev = client.get(f"/runs/{j['cases'][1]['run_id']}/events", headers=READ).json()["events"]
    assert [e["component"] for e in ev if e["source"] == "scenario"] == ["southaven/titan350-01", "southaven/titan350-02"]
    # the sweep's directory holds what `twin sweep` writes
    assert len((home / sid / "cases.jsonl").read_text().splitlines()) == 3
    ds = xr.open_dataset(home / sid / "kpis.nc", engine="h5netcdf")
    assert list(ds.case.values) == ["base", "trip two", "hot"] and (ds.status.values == "done").all()
    assert json.loads((home / sid / "failures.json").read_text()) == {}
    assert client.get("/healthz").json()["sweep_cluster"] == "local"
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
    ({"base": {"scenario": {"name": "s", "horizon": 9e9}}, "n1": ["bess"]}, "base.scenario.horizon"),
    ({"base": scenario("s", 60)}, "n1"),  # nothing to sweep
    ({"base": scenario("s", 60), "n1": ["bess"], "k": 3}, "k"),  # k and seed only with sample
    ({"base": scenario("s", 60), "n1": ["bess"], "seed": 3}, "seed"),
    ({"base": scenario("s", 60), "n1": ["bess"], "sample": 2, "k": 4}, "k"),  # 3 batteries: no N-4 case
    ({"base": scenario("s", 60), "sample": 0}, "sample"),
    ({"base": scenario("s", 60), "sample": 2, "cases": [{"name": "base"}]}, "cases"),
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


#: the base scenario of the API/CLI comparisons, as JSON and as the TOML file of `twin sweep`
SAME_BASE = {"scenario": {"name": "same", "site": "memphis", "start": "2026-07-15T14:00:00", "horizon": 120},
             "workload": {"seed": 5}}
SAME_BASE_TOML = ('[scenario]\nname = "same"\nsite = "memphis"\nstart = "2026-07-15T14:00:00"\n'
                  'horizon = 120\n[workload]\nseed = 5\n')


def _api_sweep(client, body: dict) -> tuple[list[str], dict[str, dict]]:
    """(case names in order, KPIs by case) of a sweep through ``POST /sweeps``, once done."""
    r = client.post("/sweeps", json=body, headers=WRITE)
    assert r.status_code == 202, r.text
    sid = r.json()["id"]
    j = wait_for(client, f"/sweeps/{sid}", timeout_s=240)
    assert j["status"] == "done", j
    kpis = {c["case"]: c["kpis"] for c in client.get(f"/sweeps/{sid}/kpis", headers=READ).json()["cases"]}
    return [c["case"] for c in j["cases"]], kpis


def _cli_sweep(tmp_path, *args: str) -> tuple[list[str], dict[str, dict]]:
    """(case names in order, records by case) of ``twin sweep memphis`` of :data:`SAME_BASE` with ``args``, on one worker."""
    from typer.testing import CliRunner

    from twin.cli import app

    (tmp_path / "base.toml").write_text(SAME_BASE_TOML)
    res = CliRunner().invoke(app, ["sweep", "memphis", "--scenario", str(tmp_path / "base.toml"), *args, "--workers", "1",
                                   "--out", str(tmp_path / "cli")])
    assert res.exit_code == 0, res.output
    with xr.open_dataset(tmp_path / "cli" / "kpis.nc", engine="h5netcdf") as ds:
        names = [str(c) for c in ds.case.values]
    return names, {r["case"]: r for r in map(json.loads, (tmp_path / "cli" / "cases.jsonl").read_text().splitlines())}


def _assert_same_kpis(api: dict[str, dict], cli: dict[str, dict]) -> None:
    assert sorted(api) == sorted(cli)
    for case, kpis in api.items():
        assert cli[case]["status"] == "done"
        assert set(kpis) == set(cli[case]) - {"case", "status", "error", "doc_hash", "wall_s", "cpu_s"}, case
        for key, value in kpis.items():  # the same executor on the same cases: equal, not close
            assert value == cli[case][key], (case, key, value, cli[case][key])


def test_api_sweep_and_cli_sweep_give_identical_kpis(client, tmp_path):
    """The same cases through ``POST /sweeps`` and through ``twin sweep`` (each on its own LocalCluster)."""
    cases = [{"name": "trip two", "events": [{"at": 30, "do": "trip", "target": "southaven/titan350-0[12]"}]},
             {"name": "bess out", "events": [{"at": 30, "do": "fail", "target": "colossus2/megapack"}]}]
    _, api = _api_sweep(client, {"base": SAME_BASE, "at": 30, "n1": ["grid-ties"], "cases": cases})
    (tmp_path / "cases.toml").write_text("".join(
        f'[[cases]]\nname = "{c["name"]}"\n[[cases.events]]\nat = 30\ndo = "{c["events"][0]["do"]}"\n'
        f'target = "{c["events"][0]["target"]}"\n' for c in cases))
    _, cli = _cli_sweep(tmp_path, "--n-1", "grid-ties", "--cases", str(tmp_path / "cases.toml"), "--at", "30")
    assert sorted(api) == sorted(["base", "open colossus1/mlgw-63", "open colossus2/mlgw-service", "trip two", "bess out"])
    _assert_same_kpis(api, cli)
    assert api["trip two"]["f_min_hz"] != api["base"]["f_min_hz"]  # the cases differ


def test_api_sweep_of_random_n_k_cases_is_the_cli_sweep(client, tmp_path):
    """``sample``/``k``/``seed`` draw the cases ``twin sweep --sample --k --seed`` draws (one function makes both),
    with the same KPIs; another seed draws other cases."""
    from sites import load_site
    from twin.sweep import generate_cases

    body = {"base": SAME_BASE, "at": 30, "n1": ["turbines", "bess", "grid-ties"], "sample": 3, "k": 2, "seed": 7}
    names, api = _api_sweep(client, body)
    cli_names, cli = _cli_sweep(tmp_path, "--n-1", "turbines,bess,grid-ties", "--sample", "3", "--k", "2", "--seed", "7",
                                "--at", "30")
    assert names == cli_names and names[0] == "base" and len(names) == 4, (names, cli_names)
    assert all(n.count(" + ") == 1 for n in names[1:])  # N-2: two components out in each drawn case
    _assert_same_kpis(api, cli)
    assert len({json.dumps(k["f_min_hz"], sort_keys=True) for k in api.values()}) > 1  # the cases differ
    other, _ = generate_cases(load_site("memphis"), SAME_BASE, ["turbines", "bess", "grid-ties"], 30, None, 3, 2, seed=8)
    assert [n for n, _ in other] != names


def test_generated_sweeps_over_the_cap_say_how_many_and_which_setting(client):
    r = client.post("/sweeps", json={"base": scenario("s", 60), "sample": 50, "k": 2}, headers=WRITE)
    assert r.status_code == 422, r.text
    (e,) = r.json()["errors"]
    assert e["field"] == "sample" and "51 cases" in e["message"] and "at most 5" in e["message"], e
    assert "TWIN_MAX_SWEEP_CASES" in e["message"], e
    r = client.post("/sweeps", json={"base": scenario("s", 60), "sample": 50, "k": 2, "n1": ["bess"]}, headers=WRITE)
    assert r.status_code == 202, r.text  # memphis has 3 batteries: all 3 pairs, within the cap
    client.delete(f"/sweeps/{r.json()['id']}", headers=WRITE)


def _long_sweep(client, name: str, n: int = 4, horizon: float = 3600) -> str:
    body = {"base": scenario(name, horizon), "at": 60,
            "cases": [{"name": f"hot {i}", "weather": {"t_amb_c": 30.0 + i}} for i in range(n - 1)]}
    r = client.post("/sweeps", json=body, headers=WRITE)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def test_cancel_a_case_then_delete_the_running_sweep(client, home):
    sid = _long_sweep(client, "sweep-cancel", n=5, horizon=6 * 3600)
    j = wait_for(client, f"/sweeps/{sid}", done=lambda j: j["status"] == "running", timeout_s=60)
    last = j["cases"][-1]
    assert client.delete(f"/runs/{last['run_id']}", headers=WRITE).status_code == 204  # one case, not yet run
    j = client.get(f"/sweeps/{sid}", headers=READ).json()
    assert last["run_id"] not in [c["run_id"] for c in j["cases"]] and len(j["cases"]) == 4
    t0 = time.monotonic()
    assert client.delete(f"/sweeps/{sid}", headers=WRITE).status_code == 204
    assert time.monotonic() - t0 < 30
    assert not (home / sid).exists() and client.get(f"/sweeps/{sid}", headers=READ).status_code == 404
    assert all(client.get(f"/runs/{c['run_id']}", headers=READ).status_code == 404 for c in j["cases"])
    assert client.get(f"/runs?parent={sid}", headers=READ).json()["count"] == 0


def test_shutdown_during_a_sweep_records_every_case(tmp_path):
    """Stopping the service mid-sweep: finished cases keep their KPIs, the others are failed with the reason,
    the sweep is failed, and its directory holds the KPIs of every case with its status."""
    home = tmp_path / "home"
    settings = make_settings(home, live_enabled=False, max_horizon_s=2 * 86400, max_sweep_cases=8)
    with TestClient(create_app(settings)) as c:
        sid = _long_sweep(c, "sweep-stop", n=8, horizon=86400)
        wait_for(c, f"/sweeps/{sid}", done=lambda j: j["counts"].get("done", 0) >= 1, timeout_s=180)
    cat = Catalog(home / "catalog.sqlite")
    cases = cat.list(parent=sid, limit=100)
    status = sorted(r.status for r in cases)
    assert status[0] == "done" and "failed" in status and set(status) <= {"done", "failed"}, status
    assert all("server shut down" in r.error for r in cases if r.status == "failed")
    assert all(r.kpis and r.kpis["f_min_hz"] for r in cases if r.status == "done")
    sweep = cat.get(sid)
    assert sweep.status == "failed" and sweep.finished is not None
    ds = xr.open_dataset(home / sid / "kpis.nc", engine="h5netcdf")
    assert sorted(ds.status.values) == status
    assert np.isfinite(ds.pue.values[ds.status.values == "done"]).all()
    assert np.isnan(ds.pue.values[ds.status.values == "failed"]).all()


def test_an_unreachable_scheduler_fails_the_sweep_with_the_reason(tmp_path):
    """TWIN_DASK_SCHEDULER names the cluster; when nothing answers there, every case fails saying why."""
    import socket

    import dask

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    settings = make_settings(tmp_path / "home", live_enabled=False, dask_scheduler=address)
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}), TestClient(create_app(settings)) as c:
        assert c.get("/healthz").json()["sweep_cluster"] == "external"
        r = c.post("/sweeps", json={"base": scenario("nowhere", 60), "n1": ["grid-ties"]}, headers=WRITE)
        assert r.status_code == 202, r.text
        j = wait_for(c, f"/sweeps/{r.json()['id']}", timeout_s=60)
    assert j["status"] == "failed" and j["counts"] == {"failed": 3}, j
    assert all("could not go on" in x["error"] and f"cannot reach a dask scheduler at '{address}'" in x["error"]
               for x in j["cases"]), j["cases"]


def _folder_status(store) -> str | None:
    path = store / "status.json"
    return json.loads(path.read_text())["status"] if path.exists() else None


def test_shutdown_while_cases_run_leaves_catalog_and_folders_agreeing(tmp_path):
    """A graceful stop while a case runs: a cancelled case that was past its last check still finishes, so
    every case must end up either done everywhere (catalog with KPIs, folder with its results, kpis.nc,
    not in failures.json) or interrupted everywhere (and then no folder says done)."""
    from sites import load_site

    from api.workers import SweepExecutor
    from twin.catalog import new_run_id
    from twin.sweep import expand_cases

    home = tmp_path / "home"
    cat = Catalog(home / "catalog.sqlite")
    executor = SweepExecutor(cat, home, n_workers=1)
    base = scenario("stop-agree", 2 * 3600)
    cases = expand_cases(load_site("memphis"), base, ["grid-ties", "bess"], at=1800)
    sid = new_run_id("sweep")
    cat.create(run_id=sid, kind="sweep", site="memphis", scenario="stop-agree", scenario_doc={"base": base}, store=str(home / sid))
    try:
        executor.submit(sid, "memphis", cases, home / sid, attrs={"base_scenario": "stop-agree"})
        t_end = time.monotonic() + 240
        while True:  # stop while a case runs, after at least one finished
            children = cat.list(parent=sid, limit=100)
            if any(r.status == "done" for r in children) and any(
                    r.status == "queued" and _folder_status(home / sid / r.id) == "running" for r in children):
                break
            assert time.monotonic() < t_end and not all(r.status == "done" for r in children), "no case seen running"
            time.sleep(0.005)
    finally:
        executor.shutdown()
    children = sorted(cat.list(parent=sid, limit=100), key=lambda r: r.created)
    assert len(children) == len(cases) == 6
    status = {r.scenario: r.status for r in children}
    assert "done" in status.values() and "failed" in status.values(), status
    failures = json.loads((home / sid / "failures.json").read_text())
    ds = xr.open_dataset(home / sid / "kpis.nc", engine="h5netcdf")
    for r in children:
        folder = home / sid / r.id
        assert str(ds.status.sel(case=r.scenario).values) == r.status, r.scenario
        if r.status == "done":
            assert _folder_status(folder) == "done" and r.scenario not in failures, r.scenario
            assert r.kpis == json.loads((folder / "kpis.json").read_text()) and (folder / "results.zarr").is_dir()
            assert float(ds.pue.sel(case=r.scenario)) == r.kpis["pue"]
        else:
            assert r.status == "failed" and "server shut down" in r.error, (r.scenario, r.error)
            assert failures[r.scenario] == r.error
            assert _folder_status(folder) in (None, "failed"), (r.scenario, _folder_status(folder))
            assert not (folder / "kpis.json").exists()
    ran = [json.loads(line)["case"] for line in (home / sid / "cases.jsonl").read_text().splitlines()]
    assert sorted(ran) == sorted(r.scenario for r in children if r.status == "done")
    assert cat.get(sid).status == "failed"
