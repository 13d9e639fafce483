"""Fixtures: one app with the live twin for the module-independent tests, tokens, and a finished run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from api.main import create_app

READ = {"Authorization": "Bearer read-token"}
WRITE = {"Authorization": "Bearer write-token"}


def make_settings(home: Path, **over) -> Settings:
    values = dict(home=home, read_tokens="read-token,grafana", write_tokens="write-token", workers=1,
                  max_horizon_s=6 * 3600, max_series_points=50_000, max_body_bytes=64_000, max_sweep_cases=5,
                  reap_interval_s=1.0, live_period_s=0.2, whatif_max_horizon_s=600)
    values.update(over)
    return Settings(**values)


# package scope: the app (worker pool, live twin stepping every 0.2 s) stops when the API tests are done,
# instead of running in the background through the rest of the session (benchmarks included)
@pytest.fixture(scope="package")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("twin-home")


@pytest.fixture(scope="package")
def client(home):
    """A running app (worker pool and live twin) shared by the tests."""
    app = create_app(make_settings(home))
    with TestClient(app) as c:
        yield c


def wait_for(client, url: str, done=lambda j: j["status"] not in ("queued", "running"), timeout_s: float = 120.0) -> dict:
    t_end = time.monotonic() + timeout_s
    while True:
        j = client.get(url, headers=READ).json()
        if done(j):
            return j
        if time.monotonic() > t_end:
            raise AssertionError(f"{url} still {j.get('status')} after {timeout_s} s: {j}")
        time.sleep(0.2)


def scenario(name: str = "api-test", horizon: float = 120, **extra) -> dict:
    doc = {"scenario": {"name": name, "site": "memphis", "horizon": horizon}}
    doc.update(extra)
    return doc


@pytest.fixture(scope="package")
def finished_run(client) -> str:
    """A 10-minute run on the reference campus with a Southaven trip at 02:00, finished."""
    body = scenario("trip-test", 600, events=[{"at": "00:02:00", "do": "trip", "target": "southaven/titan350-01"}])
    r = client.post("/runs", json=body, headers=WRITE)
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    j = wait_for(client, f"/runs/{run_id}")
    assert j["status"] == "done", j
    return run_id


@pytest.fixture(scope="package")
def live_ready(client):
    """Wait until the live twin has a state."""
    t_end = time.monotonic() + 120
    while client.get("/live/state", headers=READ).status_code != 200:
        assert time.monotonic() < t_end, client.get("/live/state", headers=READ).json()
        time.sleep(0.2)
    return client
