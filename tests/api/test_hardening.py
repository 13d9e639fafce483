"""Every input a probe of the service turned into a 500 (or accepted and then mishandled) is a 4xx naming the field.

Also: auth before the body, 413 for chunked bodies, a bug answered as a 500 Problem on a connection
that stays usable, the two token schemes in OpenAPI, request ids, the generated token never printed.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from .conftest import READ, WRITE, scenario


def _post(client, url: str, raw: str, headers=WRITE):
    """POST a JSON text as is (NaN literals included: Python's json accepts them, as the server does)."""
    return client.post(url, content=raw.encode(), headers={**headers, "content-type": "application/json"})


def _fields(r) -> list[str]:
    return [e["field"] for e in r.json()["errors"]]


def _nested(depth: int) -> str:
    return '{"x": ' * depth + "1" + "}" * depth


BASE = '{"name": "h", "horizon": 60}'
RUN_CASES = [  # (body, field named in the answer)
    ('{"scenario": {"name": "h", "horizon": NaN}}', "scenario.horizon"),
    ('{"scenario": {"name": "h", "horizon": Infinity}}', "scenario.horizon"),
    ('{"scenario": {"name": "h", "horizon": true}}', "scenario.horizon"),
    ('{"scenario": {"name": "h", "horizon": 0.5}}', "scenario.horizon"),  # shorter than one step: was "done" with 0 steps
    ('{"scenario": {"name": "h", "horizon": 60, "step_s": 5e-324}}', "scenario.step_s"),
    ('{"scenario": {"name": "h", "horizon": 60, "step_s": 0.01}}', "scenario.step_s"),
    ('{"scenario": {"name": "h", "horizon": 60, "step_s": false}}', "scenario.step_s"),
    ('{"scenario": {"name": "h", "horizon": 60, "start": "1500-01-01T00:00:00"}}', "scenario.start"),  # was shifted silently
    ('{"scenario": {"name": "h", "horizon": 60, "start": "2300-01-01T00:00:00"}}', "scenario.start"),
    ('{"scenario": {"name": "h", "horizon": 60, "start": "2026-07-15T00:00:00+02:00"}}', "scenario.start"),
    ('{"scenario": ' + BASE + ', "events": [{"at": NaN, "do": "trip", "target": "southaven/titan350-01"}]}', "events[0].at"),
    ('{"scenario": ' + BASE + ', "events": [{"at": true, "do": "trip", "target": "southaven/titan350-01"}]}', "events[0].at"),
    ('{"scenario": ' + BASE + ', "record": {"per_minute": 5}}', "record.per_minute"),
    ('{"scenario": ' + BASE + ', "record": {"per_minute": null}}', "record.per_minute"),
    ('{"scenario": ' + BASE + ', "workload": {"seed": -1}}', "workload.seed"),
    ('{"scenario": ' + BASE + ', "workload": {"seed": 1.5}}', "workload.seed"),
    ('{"scenario": ' + BASE + ', "workload": {"swing_period_s": 1e-300}}', "workload.swing_period_s"),
    ('{"scenario": ' + BASE + ', "weather": {"t_amb_c": false}}', "weather.t_amb_c"),  # was 0 °C
    ('{"scenario": ' + BASE + ', "weather": {"t_amb_c": NaN}}', "weather.t_amb_c"),
]


@pytest.mark.parametrize("raw,field", RUN_CASES)
def test_bad_runs_are_422_naming_the_field(client, raw, field):
    r = _post(client, "/runs", raw)
    assert r.status_code == 422, r.text
    assert field in _fields(r), r.json()


def test_cost_admission_names_the_step(tmp_path):
    """A short step passes the horizon and step caps but not the estimated cost (ten times the steps, each costlier)."""
    from fastapi.testclient import TestClient

    from api.admission import estimated_cost_s
    from api.main import create_app
    from twin.scenario import load_scenario

    from .conftest import make_settings

    fine, costly = scenario("c", 3600), scenario("c", 3600)
    costly["scenario"]["step_s"] = 0.1
    a, b = estimated_cost_s(load_scenario(fine)), estimated_cost_s(load_scenario(costly))
    assert b > 10 * a
    app = create_app(make_settings(tmp_path, live_enabled=False, max_run_cost_s=(a + b) / 2))
    with TestClient(app) as c:
        r = c.post("/runs", json=costly, headers=WRITE)
        assert r.status_code == 422 and _fields(r) == ["scenario.step_s"] and "worker" in r.json()["errors"][0]["message"]
        assert c.post("/runs", json=fine, headers=WRITE).status_code == 202


SWEEP_CASES = [
    ('{"base": {"scenario": ' + BASE + '}, "at": -1}', "at"),
    ('{"base": {"scenario": ' + BASE + '}, "at": "noon"}', "at"),
    ('{"base": {"scenario": ' + BASE + '}, "at": NaN}', "at"),
    ('{"base": {"scenario": ' + BASE + '}, "cases": [{"name": "deep", "weather": ' + _nested(900) + '}]}', "cases[0].weather.x"),
    ('{"base": {"scenario": ' + BASE + '}, "cases": [{"name": "b", "weather": {"t_amb_c": true}}]}', "cases[0].weather.t_amb_c"),
    ('{"base": {"scenario": ' + BASE + '}, "cases": [{"name": "s", "workload": {"seed": -1}}]}', "cases[0].workload.seed"),
]


@pytest.mark.parametrize("raw,field", SWEEP_CASES)
def test_bad_sweeps_are_422_naming_the_field(client, raw, field):
    r = _post(client, "/sweeps", raw)
    assert r.status_code == 422, r.text
    assert field in _fields(r), r.json()


@pytest.mark.parametrize("raw,field", [
    ('{"horizon": NaN}', "horizon"),
    ('{"horizon": 0.5}', "horizon"),  # shorter than the live twin's step
    ('{"horizon": 60, "events": [{"at": NaN, "do": "trip", "target": "southaven/titan350-01"}]}', "events[0].at"),
])
def test_bad_whatifs_are_422_naming_the_field(live_ready, raw, field):
    r = _post(live_ready, "/live/whatif", raw)
    assert r.status_code == 422, r.text
    assert field in _fields(r), r.json()


@pytest.mark.parametrize("raw,field", [
    ('{"t_amb_c": false}', "t_amb_c"),
    ('{"p_it_mw": {"colossus1/h1": NaN}}', "p_it_mw.colossus1/h1"),
    ('{"p_it_mw": {"colossus1/h1": true}}', "p_it_mw.colossus1/h1"),
])
def test_bad_telemetry_is_422_naming_the_field(live_ready, raw, field):
    r = _post(live_ready, "/live/telemetry", raw)
    assert r.status_code == 422, r.text
    assert field in _fields(r), r.json()


@pytest.mark.parametrize("params,field", [
    ({"start": "1e12"}, "start"), ({"end": "1e12"}, "end"), ({"start": "nan"}, "start"), ({"end": "-inf"}, "end"),
    ({"start": "1500-01-01T00:00:00"}, "start"), ({"end": "9999-01-01T00:00:00"}, "end"),
])
def test_bad_series_times_are_422_naming_the_field(client, finished_run, params, field):
    r = client.get(f"/runs/{finished_run}/series", headers=READ, params={"var": "f_hz", **params})
    assert r.status_code == 422, r.text
    assert field in _fields(r), r.json()


def test_telemetry_batch_all_or_nothing(live_ready):
    r = live_ready.post("/live/telemetry/batch", headers=WRITE,
                        json=[{"p_it_mw": {"colossus1/h1": 11.0}}, {"p_it_mw": {"colossus1/h1": 12.0}, "t_amb_c": 33.0}])
    assert r.status_code == 200, r.text
    assert r.json()["applied"] == ["p_it_mw colossus1/h1", "p_it_mw colossus1/h1", "t_amb_c"]
    bad = live_ready.post("/live/telemetry/batch", headers=WRITE,
                          json=[{"t_amb_c": 20.0}, {"p_it_mw": {"colossus1/h99": 1.0}}])
    assert bad.status_code == 422 and _fields(bad) == ["[1].p_it_mw.colossus1/h99"]
    time.sleep(0.6)  # two live steps: the refused batch changed nothing
    assert live_ready.get("/live/state", headers=READ).json()["t_amb_c"] == pytest.approx(33.0)
    assert live_ready.post("/live/telemetry/batch", headers=WRITE, json=[]).status_code == 422


def test_auth_is_checked_before_the_body(client):
    r = _post(client, "/runs", "{not json", headers={})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert _post(client, "/runs", "{not json", headers=READ).status_code == 403
    assert _post(client, "/runs", "{not json").status_code == 422


def test_chunked_body_over_the_cap_is_413(client):
    def chunks():  # no Content-Length: the cap is enforced while the body streams in
        yield b'{"scenario": {"name": "big", "description": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}}'

    r = client.post("/runs", content=chunks(), headers={**WRITE, "content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert "limit" in r.json()["detail"]


def test_openapi_states_scopes_and_bounds(client):
    spec = client.get("/openapi.json").json()
    assert set(spec["components"]["securitySchemes"]) == {"readToken", "writeToken"}
    assert spec["paths"]["/runs"]["post"]["security"] == [{"writeToken": []}]
    assert spec["paths"]["/runs"]["get"]["security"] == [{"readToken": []}, {"writeToken": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    for code in ("401", "403", "422", "500", "503"):
        assert code in spec["paths"]["/runs"]["post"]["responses"], code
    header = spec["components"]["schemas"]["ScenarioHeader"]["properties"]
    assert header["step_s"]["minimum"] == 0.1 and header["step_s"]["maximum"] == 60


def test_request_ids(client):
    r = client.get("/healthz", headers={"X-Request-ID": "probe-42"})
    assert r.headers["x-request-id"] == "probe-42"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id\twith tab"}).headers["x-request-id"]
    assert generated != "bad id\twith tab" and len(generated) == 16


def test_health_reports_parts_without_paths(client, home):
    j = client.get("/healthz").json()
    assert j["status"] == "ok" and j["catalog"] == "ok" and j["workers_status"] == "ok" and j["problems"] == []
    assert str(home) not in json.dumps(j)


def test_health_is_503_when_the_live_twin_failed(client):
    live = client.app.state.services.live
    status, error = live.status, live.error
    live.status, live.error = "failed", "RuntimeError: injected"
    try:
        r = client.get("/healthz")
        assert r.status_code == 503 and r.json()["status"] == "degraded" and r.json()["live"] == "failed"
        assert any("injected" in p for p in r.json()["problems"])
    finally:
        live.status, live.error = status, error


def test_log_lines_have_time_level_and_request_id(capfd):
    import logging

    from api.logs import Formatter, request_id

    token = request_id.set("abc123")
    try:
        rec = logging.LogRecord("twin.api.access", logging.INFO, __file__, 1, "GET %s %d", ("/x", 200), None)
        rec.request_id = request_id.get()
        rec.status = 200
        text = Formatter("text").format(rec)
        doc = json.loads(Formatter("json").format(rec))
    finally:
        request_id.reset(token)
    assert text.endswith("INFO    twin.api.access [req=abc123] GET /x 200 status=200") and text[:4].isdigit() and "Z " in text
    assert doc["level"] == "INFO" and doc["request_id"] == "abc123" and doc["time"].endswith("Z") and doc["status"] == 200


def test_generated_token_is_stored_not_printed(tmp_path, monkeypatch, capsys):
    """``twin serve`` without TWIN_WRITE_TOKENS: the token goes to a 0600 file; stderr names the file only."""
    import uvicorn

    from api import cli
    from api.config import get_settings

    import os

    seen = {}
    keys = ("TWIN_HOME", "TWIN_WRITE_TOKENS", "TWIN_LIVE_ENABLED", "TWIN_LOG_LEVEL")  # serve sets them: restored after
    saved = {k: os.environ.pop(k, None) for k in keys}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    try:
        cli.serve(home=str(tmp_path), live=False)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
    token = (tmp_path / "write-token").read_text().strip()
    err = capsys.readouterr().err
    assert len(token) >= 24 and token not in err and str(tmp_path / "write-token") in err
    assert (tmp_path / "write-token").stat().st_mode & 0o077 == 0
    assert seen["http"] == "httptools" and seen["loop"] == "uvloop"


def _serve_in_thread(app):
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", http="httptools", loop="uvloop"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    t_end = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < t_end and t.is_alive(), "the server did not start"
        time.sleep(0.05)
    return server, t, port


def test_a_bug_is_a_500_problem_and_the_connection_stays_usable(tmp_path):
    """Two pipelined requests on one connection: the first hits a bug, the second is still answered."""
    from api.main import create_app

    from .conftest import make_settings

    app = create_app(make_settings(tmp_path, live_enabled=False))

    @app.get("/boom")
    def boom():
        raise RuntimeError("injected bug")

    server, thread, port = _serve_in_thread(app)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            req = b"GET /boom HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer read-token\r\n\r\n"
            sock.sendall(req + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while data.count(b"HTTP/1.1 ") < 2 or not data.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                assert chunk, f"the connection was closed after: {data!r}"
                data += chunk
        first, second = data.split(b"HTTP/1.1 ")[1:3]
        assert first.startswith(b"500") and b"RuntimeError" in first and b"application/problem+json" in first
        assert b"connection: close" not in first.lower()
        assert second.startswith(b"200")
    finally:
        server.should_exit = True
        thread.join(30)
