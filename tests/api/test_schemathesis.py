"""Property-based tests of the app against its own OpenAPI schema (schemathesis, bounded examples).

Checks: no server error, documented status codes, content types, headers and response schemas. The
write token is sent with every request, so the generated inputs reach the handlers.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance, not_a_server_error, response_headers_conformance, response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app  # noqa: E402

from .conftest import WRITE, make_settings  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    home = tmp_path_factory.mktemp("schemathesis-home")
    app = create_app(make_settings(home, max_horizon_s=120, max_queued=2, whatif_max_horizon_s=30, live_period_s=0.5))
    with TestClient(app):  # runs the lifespan: catalog, worker pool, live twin
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


# the live event stream never ends by itself (and cannot be read through the in-process client): tests/api/test_stream.py
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path="/live/stream")


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case):
    case.call_and_validate(headers=WRITE, checks=CHECKS)
