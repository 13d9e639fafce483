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


# ---------------------------------------------------------------- crashes, pid reuse and a read-only disk
def _take_pid(pid: int) -> tuple[subprocess.Popen, str]:
    """An unrelated process holding ``pid``: the kernel's next pid is set to it (ns_last_pid, as root), else the
    catalog is pointed at an unrelated process (the same situation for the server). Returns (process, how)."""
    t_end = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < t_end:  # a zombie still holds it until reaped
        time.sleep(0.05)
    for _ in range(50):
        try:
            with open("/proc/sys/kernel/ns_last_pid", "w") as fh:
                fh.write(str(pid - 1))
        except OSError:
            break
        p = subprocess.Popen(["sleep", "120"])
        if p.pid == pid:
            return p, "reused"
        p.kill()
        p.wait()
    return subprocess.Popen(["sleep", "120"]), "pointed"


def test_kill_9_then_pid_reused_by_another_process(tmp_path):
    """Server and run process killed outright; the run's pid then belongs to an unrelated process at restart."""
    port = _free_port()
    proc = _start(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            rid = c.post("/runs", headers=WRITE, json={"scenario": {"name": "in-flight", "horizon": 86400}}).json()["id"]
            _wait(c, f"/runs/{rid}", lambda j: j["status"] == "running" and j["progress_pct"] > 0)
    finally:
        _kill_group(proc)  # server, forkserver and the run process, with no chance to record anything
    rec = Catalog(tmp_path / "catalog.sqlite").get(rid)
    assert rec.status == "running" and rec.pid and rec.pid_start
    t_end = time.monotonic() + 10
    while pid_alive(rec.pid):
        assert time.monotonic() < t_end
        time.sleep(0.05)
    holder, how = _take_pid(rec.pid)
    try:
        if how == "pointed":
            import sqlite3

            with sqlite3.connect(tmp_path / "catalog.sqlite") as db:  # the pid only: its start time stays the dead one's
                db.execute("UPDATE runs SET pid = ? WHERE id = ?", (holder.pid, rid))
        assert pid_alive(holder.pid)
        proc2 = _start(tmp_path, port)
        try:
            with httpx.Client(base_url=base, timeout=30) as c:
                j = c.get(f"/runs/{rid}", headers=READ).json()
                assert j["status"] == "failed", j
                assert "stopped before the run finished" in j["error"] and "another process" in j["error"], j
        finally:
            proc2.terminate()
            proc2.wait(30)
    finally:
        holder.kill()
        holder.wait()
    print(f"pid {rec.pid} {how} by an unrelated process")


def _unshare_ok() -> bool:
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_mounts = pytest.mark.skipif(not _unshare_ok(), reason="needs mount namespaces (unshare -m) to make a read-only file system")


def _serve_on_tmpfs(home: Path, port: int, *, read_only: bool = False) -> subprocess.Popen:
    """The server in its own mount namespace with TWIN_HOME on a fresh tmpfs (mounted read-only if asked)."""
    env = dict(os.environ, TWIN_HOME=str(home), TWIN_READ_TOKENS="r", TWIN_WRITE_TOKENS="w", TWIN_LIVE_ENABLED="0",
               TWIN_REAP_INTERVAL_S="1", PYTHONPATH=str(ROOT))
    ro = f" && mount -o remount,ro {home}" if read_only else ""
    cmd = (f"mount -t tmpfs -o size=256m tmpfs {home}{ro} && exec {sys.executable} -m uvicorn --factory api.main:create_app "
           f"--host 127.0.0.1 --port {port} --log-level warning")
    return subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", cmd], cwd=ROOT, env=env,
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@needs_mounts
def test_read_only_data_dir_at_start_names_the_path(tmp_path):
    home = tmp_path / "data"
    home.mkdir()
    proc = _serve_on_tmpfs(home, _free_port(), read_only=True)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    assert proc.returncode != 0
    assert str(home) in err and "Read-only file system" in err, err
    assert "Traceback" not in err and len(err.splitlines()) <= 6, err


@needs_mounts
def test_read_only_data_dir_at_runtime_reads_200_writes_503(tmp_path):
    """The data directory is remounted read-only under the running server (a real EROFS), then writable again."""
    home = tmp_path / "data"
    home.mkdir()
    port = _free_port()
    proc = _serve_on_tmpfs(home, port)
    base = f"http://127.0.0.1:{port}"

    def remount(mode: str) -> None:
        subprocess.run(["nsenter", "-t", str(proc.pid), "-m", "mount", "-o", f"remount,{mode}", str(home)], check=True)

    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            t_end = time.monotonic() + 60
            while True:
                try:
                    if c.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None and time.monotonic() < t_end, "the server did not start"
                time.sleep(0.2)
            rid = c.post("/runs", headers=WRITE, json={"scenario": {"name": "before", "horizon": 60}}).json()["id"]
            assert _wait(c, f"/runs/{rid}", lambda j: j["status"] not in ("queued", "running"))["status"] == "done"
            remount("ro")
            for url in (f"/runs/{rid}", "/runs", f"/runs/{rid}/kpis", f"/runs/{rid}/series?var=f_hz&end=10", "/sites", "/sweeps"):
                assert c.get(url, headers=READ).status_code == 200, url
            h = c.get("/healthz")
            assert h.status_code == 503 and h.json()["catalog"] == "read-only", h.json()
            for r in (c.post("/runs", headers=WRITE, json={"scenario": {"name": "during", "horizon": 60}}),
                      c.post("/sweeps", headers=WRITE, json={"base": {"scenario": {"name": "during", "horizon": 60}}, "n1": ["bess"]}),
                      c.delete(f"/runs/{rid}", headers=WRITE)):
                assert r.status_code == 503 and "read-only" in r.json()["detail"], r.text
                assert r.headers["content-type"] == "application/problem+json" and r.json()["type"] == "/problems/storage-unavailable"
                assert str(home) not in r.text
            remount("rw")
            assert c.get("/healthz").status_code == 200
            r = c.post("/runs", headers=WRITE, json={"scenario": {"name": "after", "horizon": 30}})
            assert r.status_code == 202 and _wait(c, f"/runs/{r.json()['id']}", lambda j: j["status"] not in ("queued", "running"))["status"] == "done"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            _kill_group(proc)


def test_sigterm_ends_open_streams_at_once(tmp_path):
    """A client following a run's stream does not hold the server's shutdown (no grace-period wait, no traceback)."""
    port = _free_port()
    env = dict(os.environ, TWIN_HOME=str(tmp_path), TWIN_READ_TOKENS="r", TWIN_WRITE_TOKENS="w", TWIN_LIVE_ENABLED="0",
               PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "info"], cwd=ROOT, env=env, start_new_session=True,
                            stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        t_end = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < t_end, "the server did not start"
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=30) as c:
            rid = c.post("/runs", headers=WRITE, json={"scenario": {"name": "followed", "horizon": 86400}}).json()["id"]
            with c.stream("GET", f"/runs/{rid}/stream", headers=READ) as s:
                lines = s.iter_lines()
                assert next(lines).startswith("retry")
                tic = time.monotonic()
                proc.terminate()
                for _ in lines:  # the server ends the stream itself
                    pass
            _, err = proc.communicate(timeout=30)
            took = time.monotonic() - tic
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    assert took < 4.0, took  # before the end of a 5 s grace period, were one configured
    assert "Traceback" not in err and "Finished server process" in err, err
