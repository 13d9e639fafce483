"""Every error of the API is an RFC 9457 problem: ``application/problem+json`` with ``type``, ``title``,
``status`` (the HTTP status), ``detail``, ``instance`` (the request path) and ``errors`` (field paths),
whichever layer answers (route, validation, token gate, body cap, router, last resort); the OpenAPI
document says so for every error response."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from .conftest import READ, WRITE, make_settings, scenario

MEDIA = "application/problem+json"
MEMBERS = {"type", "title", "status", "detail", "instance", "errors"}


def _problem(r, status: int, path: str, type_: str = "about:blank") -> dict:
    """The body of ``r`` after checking it is the problem of ``status`` at ``path``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == MEDIA, r.headers
    j = r.json()
    assert set(j) == MEMBERS, j
    assert j["status"] == status and j["instance"] == path and j["type"] == type_, j
    assert j["title"] and j["detail"], j
    return j


def test_422_names_the_fields(client):
    j = _problem(client.post("/runs", json={"scenario": {"name": "x", "horizon": 7 * 3600}}, headers=WRITE),
                 422, "/runs", "/problems/invalid-input")
    assert j["title"] == "Invalid input"
    assert [e["field"] for e in j["errors"]] == ["scenario.horizon"] and "cap" in j["errors"][0]["message"]
    j = _problem(client.post("/runs", json={"scenario": {}}, headers=WRITE), 422, "/runs", "/problems/invalid-input")
    assert j["detail"] == "the request does not match the schema" and "scenario.name" in [e["field"] for e in j["errors"]]
    j = _problem(client.get("/runs/run-20990101-000000-abcdef/series", headers=READ), 422,
                 "/runs/run-20990101-000000-abcdef/series", "/problems/invalid-input")
    assert "query.var" in [e["field"] for e in j["errors"]]


def test_404_401_403_are_about_blank_with_the_status_phrase(client):
    j = _problem(client.get("/runs/run-20990101-000000-abcdef", headers=READ), 404, "/runs/run-20990101-000000-abcdef")
    assert j["title"] == "Not Found" and j["detail"] == "no run 'run-20990101-000000-abcdef'" and j["errors"] == []
    _problem(client.get("/no/such/path", headers=READ), 404, "/no/such/path")
    r = client.get("/sites/memphis", headers={"Authorization": "Bearer wrong"})  # answered by the token gate
    j = _problem(r, 401, "/sites/memphis")
    assert j["title"] == "Unauthorized" and j["detail"] == "missing or unknown bearer token"
    assert r.headers["www-authenticate"] == "Bearer"
    j = _problem(client.post("/sweeps", json={"base": scenario()}, headers=READ), 403, "/sweeps")
    assert j["title"] == "Forbidden" and "write token" in j["detail"]


def test_405_lists_the_allowed_methods(client):
    r = client.put("/runs", json={}, headers=WRITE)
    j = _problem(r, 405, "/runs")
    assert j["title"] == "Method Not Allowed"
    assert r.headers["allow"] == "GET, POST"
    r = client.post("/sites/memphis", headers=WRITE)
    _problem(r, 405, "/sites/memphis")
    assert r.headers["allow"] == "GET"


def test_413_over_the_body_cap(client):
    big = scenario("big", 60, scenario={"name": "big", "description": "x" * 70_000})
    j = _problem(client.post("/runs", json=big, headers=WRITE), 413, "/runs")
    assert "limit" in j["detail"]


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """An app with two routes that fail: a bug, and a write the data directory refuses."""
    from api.main import create_app
    from twin.catalog import CatalogUnavailable

    app = create_app(make_settings(tmp_path_factory.mktemp("problems-home"), live_enabled=False))

    @app.get("/boom")
    def boom():
        raise RuntimeError("injected bug")

    @app.post("/refused")
    def refused():
        raise CatalogUnavailable("attempt to write a readonly database")

    with TestClient(app) as c:
        yield c


def test_500_and_503_have_their_types(broken):
    j = _problem(broken.get("/boom", headers=READ), 500, "/boom", "/problems/internal-error")
    assert j["title"] == "Internal error" and "RuntimeError" in j["detail"] and "injected" not in j["detail"]
    r = broken.post("/refused", headers=WRITE)
    j = _problem(r, 503, "/refused", "/problems/storage-unavailable")
    assert "read-only" in j["detail"] and r.headers["retry-after"] == "60"


def test_openapi_documents_every_error_as_a_problem(client):
    spec = client.get("/openapi.json").json()
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == MEMBERS - {"errors", "type"}
    assert set(problem["properties"]) == MEMBERS
    assert problem["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/FieldProblem"}
    seen = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for code, resp in op["responses"].items():
                if code[0] not in "45" or (path, code) == ("/healthz", "503"):  # the probe's 503 is its Health report
                    continue
                assert resp["content"] == {MEDIA: {"schema": {"$ref": "#/components/schemas/Problem"}}}, (path, method, code)
                seen += 1
    ops = spec["paths"]["/sweeps"]["post"]["responses"]
    assert {"401", "403", "413", "422", "429", "500", "503"} <= set(ops)
    assert seen > 50


def test_problem_types_resolve_to_their_documentation(client):
    """The ``type`` of an error body is a page that says what it means (no token needed); an unknown type is a 404 problem."""
    j = _problem(client.post("/runs", json={"scenario": {}}, headers=WRITE), 422, "/runs", "/problems/invalid-input")
    r = client.get(j["type"])  # no token
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text
    assert "Invalid input" in r.text and "422" in r.text
    for uri in ("/problems/storage-unavailable", "/problems/internal-error"):
        r = client.get(uri)
        assert r.status_code == 200 and ("503" in r.text if "storage" in uri else "500" in r.text)
    j = _problem(client.get("/problems/no-such-type", headers=READ), 404, "/problems/no-such-type")
    assert "/problems/invalid-input" in j["detail"]


@pytest.mark.parametrize("body,reason", [(b"{not json", "Expecting property name"), (b'{"scenario": {}', "Expecting ',' delimiter"),
                                         (b"\xff\xfe{}", "")])
def test_a_body_that_is_not_json_says_so(broken, body, reason):
    """Not a field at a number and 'jSON decode error', but the body as the field and what the parser expected where."""
    r = broken.post("/runs", content=body, headers={**WRITE, "content-type": "application/json"})
    j = _problem(r, 422, "/runs", "/problems/invalid-input")
    assert [e["field"] for e in j["errors"]] == ["(body)"], j
    message = j["errors"][0]["message"]
    assert message.startswith("expected JSON") and reason in message and "character" in message, message


@pytest.mark.parametrize("path", ["/", "/docs", "/openapi.json", "/ui/page.js"])
def test_405_on_a_path_left_out_of_the_openapi_document_lists_its_methods(broken, path):
    """The engineer's page and the documentation are not in the OpenAPI document; their 405 still says what
    they allow (RFC 9110 §15.5.6), not an empty Allow (which says: nothing)."""
    r = broken.post(path, headers=WRITE)
    _problem(r, 405, path)
    assert "GET" in r.headers["allow"].split(", "), r.headers
