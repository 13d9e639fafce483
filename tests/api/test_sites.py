"""GET /sites, /sites/{id}, /sites/{id}/network and the auth rules on them."""

from __future__ import annotations

import pytest

from .conftest import READ, WRITE


def test_list_sites(client):
    r = client.get("/sites", headers=READ)
    assert r.status_code == 200
    ids = [s["id"] for s in r.json()["data"]]
    assert {"memphis", "colossus1", "colossus1:sub22", "southaven"} <= set(ids)
    assert r.json()["count"] == len(ids)


def test_site_islands_match_the_nominal_point(client):
    r = client.get("/sites/colossus1", headers=READ)
    assert r.status_code == 200
    j = r.json()
    assert j["kind"] == "site" and j["components"]["turbines"] == 12
    isl = j["islands"][0]
    assert isl["grid_tied"] and isl["p_grid_limit_mw"] == 150.0
    # same definition as `twin show`: (derated turbines + grid limit - load) / load
    assert isl["margin_pct"] == pytest.approx(100 * (isl["p_derated_mw"] + isl["p_grid_limit_mw"] - isl["p_load_mw"]) / isl["p_load_mw"])


def test_network(client):
    r = client.get("/sites/memphis/network", headers=WRITE)  # a write token reads too
    assert r.status_code == 200
    j = r.json()
    buses = {b["id"] for b in j["buses"]}
    assert len(buses) == 34
    for br in j["branches"]:
        ends = (br["from_bus"], br["to_bus"]) if br["type"] == "line" else (br["hv_bus"], br["lv_bus"])
        assert set(ends) <= buses
    kinds = {u["type"] for u in j["units"]}
    assert kinds == {"turbine", "bess", "grid_tie"}
    assert all(u["bus"] in buses for u in j["units"] + j["loads"])
    assert "provenance" not in j["units"][0]


# ("/sites/.." itself is normalised to "/" by the client, which is the page; escaped, the server refuses it by pattern)
@pytest.mark.parametrize("site_id,code", [("nowhere", 404), ("memphis:nope", 404), ("%2E%2E", 422), ("x..y", 422), ("Memphis", 422), ("memphis:a:b", 422), ("a%2F..%2Fetc", 404)])
def test_unknown_or_invalid_site(client, site_id, code):
    r = client.get(f"/sites/{site_id}", headers=READ)
    assert r.status_code == code
    assert "detail" in r.json()


def test_site_routes_need_a_token(client):
    assert client.get("/sites").status_code == 401
    assert client.get("/sites").headers["www-authenticate"] == "Bearer"
    assert client.get("/sites", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/sites", headers={"Authorization": "Basic cmVhZA=="}).status_code == 401
    assert client.get("/sites", headers={"Authorization": "Bearer grafana"}).status_code == 200


def test_health_and_docs_are_open(client):
    h = client.get("/healthz")
    assert h.status_code == 200 and h.json()["status"] == "ok"
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/runs", "/runs/{run_id}/series", "/sweeps", "/live/state", "/live/whatif", "/metrics"} <= set(paths)


def test_unknown_route_is_404_with_a_problem(client):
    r = client.get("/nothing-here", headers=READ)
    assert r.status_code == 404 and r.json()["detail"]
