"""The real server: uvicorn on 127.0.0.1 in its own process; a run end to end, then a kill during a run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api.workers import pid_alive
from twin.catalog import Catalog

READ = {"Authorization": "Bearer r"}
WRITE = {"Authorization": "Bearer w"}
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(home: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, TWIN_HOME=str(home), TWIN_READ_TOKENS="r", TWIN_WRITE_TOKENS="w", TWIN_LIVE_ENABLED="0",
               TWIN_REAP_INTERVAL_S="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env, start_new_session=True)
    t_end = time.monotonic() + 60
    while time.monotonic() < t_end:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, "the server exited"
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the server did not start")


def _wait(c: httpx.Client, url: str, cond, timeout_s: float = 120) -> dict:
    t_end = time.monotonic() + timeout_s
    while True:
        j = c.get(url, headers=READ).json()
        if cond(j):
            return j
        assert time.monotonic() < t_end, j
        time.sleep(0.2)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    proc = _start(tmp_path, port)
    yield tmp_path, port, proc
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            _kill_group(proc)


def test_run_over_http_then_kill_and_restart(server):
    home, port, proc = server
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=30) as c:
        # a short run, end to end
        r = c.post("/runs", headers=WRITE, json={"scenario": {"name": "http", "horizon": 300},
                                                   "events": [{"at": 60, "do": "trip", "target": "southaven/titan350-02"}]})
        assert r.status_code == 202, r.text
        done_id = r.json()["id"]
        j = _wait(c, f"/runs/{done_id}", lambda j: j["status"] not in ("queued", "running"))
        assert j["status"] == "done", j
        kpis = c.get(f"/runs/{done_id}/kpis", headers=READ).json()["kpis"]
        assert kpis["f_min_hz"]["colossus2+southaven"] < 60.0
        s = c.get(f"/runs/{done_id}/series", headers=READ, params={"var": "p_turbine_mw", "entity": "southaven/titan350-02"}).json()
        p = s["series"]["southaven/titan350-02"]
        assert len(p) == 300 and p[30] > 1.0 and p[-1] == 0.0
        assert c.get(f"/runs/{done_id}/series", headers=READ, params={"var": "f_hz", "format": "csv"}).text.startswith("time,")

        # a long run, killed with the server mid-way
        r = c.post("/runs", headers=WRITE, json={"scenario": {"name": "doomed", "horizon": 86400}})
        doomed = r.json()["id"]
        _wait(c, f"/runs/{doomed}", lambda j: j["status"] == "running" and j["progress_pct"] > 0)
        queued = c.post("/runs", headers=WRITE, json={"scenario": {"name": "waiting", "horizon": 60}}).json()["id"]
        assert c.get(f"/runs/{queued}", headers=READ).json()["status"] == "queued"
    os.kill(proc.pid, signal.SIGKILL)  # the server only: its run process must not outlive it
    proc.wait(10)
    run_pid = Catalog(home / "catalog.sqlite").get(doomed).pid
    t_end = time.monotonic() + 15
    while pid_alive(run_pid):  # the run process notices and stops, recording why
        assert time.monotonic() < t_end, "the run process outlived the server"
        time.sleep(0.1)

    proc2 = _start(home, port)
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            j = c.get(f"/runs/{doomed}", headers=READ).json()
            assert j["status"] == "failed" and j["error"], j
            assert "stopped" in j["error"]
            w = c.get(f"/runs/{queued}", headers=READ).json()
            assert w["status"] == "failed" and "before the run started" in w["error"]
            ok = c.get(f"/runs/{done_id}", headers=READ).json()
            assert ok["status"] == "done" and ok["has_results"]
            assert c.get(f"/runs/{done_id}/kpis", headers=READ).json()["kpis"] == kpis
            # the new server takes runs again
            r = c.post("/runs", headers=WRITE, json={"scenario": {"name": "after", "horizon": 30}})
            assert _wait(c, f"/runs/{r.json()['id']}", lambda j: j["status"] not in ("queued", "running"))["status"] == "done"
            assert c.delete(f"/runs/{doomed}", headers=WRITE).status_code == 204
            assert not (home / doomed).exists()
    finally:
        proc2.terminate()
        proc2.wait(30)
