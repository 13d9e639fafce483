"""Bounded loopback load test of the API server: polling, a series slice, and 500 event-stream subscribers.

Starts the real server (uvicorn with httptools and uvloop, as ``twin serve`` runs it; live twin on),
then, with a minimal asyncio HTTP/1.1 client (keep-alive, so the load generator costs little of the
machine):

1. ``GET /live/state`` on ``--connections`` connections for ``--seconds``: requests/s and latency
   percentiles (goal: ≥ 5,000 req/s, p99 < 10 ms at 16 connections);
2. optionally (``--series``) a 1-hour series slice of a finished run, the same way, while a 24-hour run executes;
3. ``--subscribers`` clients on ``GET /live/stream`` for ``--window`` seconds while ``GET /live/state`` is
   polled on 4 connections: every subscriber must receive every state of the window (consecutive ids,
   the same ones for all); delivery lag = receive time − the state's ``wall_time`` (goal: p99 < 250 ms,
   polling p99 < 20 ms).

Only 127.0.0.1 is used; every loop is bounded in time. Not a pass/fail test: it prints the numbers.

    python -m benchmarks.load_api --seconds 20 --connections 16 --subscribers 500 --window 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "load-token"
_WALL = re.compile(rb'"wall_time":([0-9.eE+-]+)')


async def _worker(port: int, path: str, t_end: float, lat: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n").encode()
    try:
        while time.perf_counter() < t_end:
            tic = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            lat.append(time.perf_counter() - tic)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


def _summary(path: str, lat: list[float], errors: list[int], wall: float) -> dict:
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [float("nan")] * 99
    return {"path": path, "requests": len(lat), "errors": len(errors), "rps": len(lat) / wall,
            "p50_ms": 1e3 * q[49], "p99_ms": 1e3 * q[98], "max_ms": 1e3 * max(lat, default=float("nan"))}


async def _drive(port: int, path: str, seconds: float, connections: int) -> dict:
    lat: list[float] = []
    errors: list[int] = []
    t0 = time.perf_counter()
    await asyncio.gather(*[_worker(port, path, t0 + seconds, lat, errors) for _ in range(connections)])
    return _summary(path, lat, errors, time.perf_counter() - t0)


async def _subscriber(port: int, t_end: float, got: list[tuple[int, float, float]], ready: asyncio.Event | None) -> None:
    """One /live/stream client: (id, receive time, state wall time) of every state until ``t_end``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
    writer.write(f"GET /live/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    buf = b""
    try:
        while True:
            left = t_end - time.time()
            if left <= 0:
                return
            size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), left)
            size = int(size_line.strip(), 16)
            if size == 0:
                return
            buf += await reader.readexactly(size)
            await reader.readexactly(2)
            now = time.time()
            *frames, buf = buf.split(b"\n\n")
            for f in frames:
                if f.startswith(b"id: "):
                    sid = int(f[4:f.index(b"\n")])
                    m = _WALL.search(f)
                    got.append((sid, now, float(m.group(1)) if m else float("nan")))
    except (asyncio.TimeoutError, TimeoutError):
        return
    finally:
        writer.close()


async def _streams(port: int, subscribers: int, window: float, poll_connections: int = 4) -> dict:
    """``subscribers`` streams open before the window, ``/live/state`` polled during it."""
    t_start = time.time() + 5.0 + subscribers / 200  # time to open every stream
    t_end = t_start + window
    got: list[list[tuple[int, float, float]]] = [[] for _ in range(subscribers)]
    tasks = []
    for i in range(subscribers):
        tasks.append(asyncio.create_task(_subscriber(port, t_end + 2.0, got[i], None)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    await asyncio.sleep(max(t_start - time.time(), 0))
    poll = await _drive(port, "/live/state", window, poll_connections)
    await asyncio.gather(*tasks, return_exceptions=True)
    # the window: states whose wall time falls in [t_start, t_end]
    per_sub = [[(sid, rx, wall) for sid, rx, wall in g if t_start <= wall <= t_end] for g in got]
    ids = [[sid for sid, _, _ in g] for g in per_sub]
    reference = max(ids, key=len)
    complete = sum(1 for x in ids if x == reference and x == list(range(x[0], x[0] + len(x))) if x)
    lags = [rx - wall for g in per_sub for _, rx, wall in g]
    q = statistics.quantiles(lags, n=100) if len(lags) > 1 else [float("nan")] * 99
    return {"subscribers": subscribers, "window_s": window, "states_in_window": len(reference),
            "complete_subscribers": complete, "lag_p50_ms": 1e3 * q[49], "lag_p99_ms": 1e3 * q[98],
            "lag_max_ms": 1e3 * max(lags, default=float("nan")), "poll": poll}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="per polled endpoint (≤ 60)")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--subscribers", type=int, default=500, help="event-stream clients (0: skip)")
    ap.add_argument("--window", type=float, default=60.0, help="seconds of states every subscriber must receive (≤ 120)")
    ap.add_argument("--series", action="store_true", help="also poll a series slice while a 24-hour run executes")
    ap.add_argument("--access-log", action="store_true", help="keep the access log on (it costs ~10-20 %% of the polling rate)")
    args = ap.parse_args()
    seconds, window = min(args.seconds, 60.0), min(args.window, 120.0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 4 * args.subscribers + 256), hard), hard))
    home = Path(tempfile.mkdtemp(prefix="twin-load-"))
    port = _free_port()
    env = dict(os.environ, TWIN_HOME=str(home), TWIN_WRITE_TOKENS=TOKEN, PYTHONPATH=str(ROOT),
               TWIN_ACCESS_LOG="1" if args.access_log else "0", TWIN_LOG_LEVEL="WARNING")
    from api.cli import UVICORN_OPTIONS

    opts = ["--http", UVICORN_OPTIONS["http"], "--loop", UVICORN_OPTIONS["loop"], "--no-access-log",
            "--timeout-graceful-shutdown", str(UVICORN_OPTIONS["timeout_graceful_shutdown"]), "--backlog", "4096"]
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host", "127.0.0.1",
                               "--port", str(port), "--log-level", "warning", *opts], cwd=ROOT, env=env)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    results = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth, timeout=30) as c:
            t_end = time.monotonic() + 120
            while True:
                try:
                    if c.get("/live/state").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < t_end, "the live twin did not start"
                time.sleep(0.5)
            cpu0, tic = _cpu_s(server.pid), time.perf_counter()
            results.append(asyncio.run(_drive(port, "/live/state", seconds, args.connections)))
            results[-1]["server_cpu_frac"] = (_cpu_s(server.pid) - cpu0) / (time.perf_counter() - tic)
            if args.series:
                slice_run = c.post("/runs", json={"scenario": {"name": "load-slice", "horizon": "02:00:00"}}).json()["id"]
                while c.get(f"/runs/{slice_run}").json()["status"] in ("queued", "running"):
                    time.sleep(0.5)
                c.post("/runs", json={"scenario": {"name": "load-busy", "horizon": "24:00:00"}})
                series = f"/runs/{slice_run}/series?var=f_hz&start=00:30:00&end=01:29:59"
                results.append(asyncio.run(_drive(port, series, seconds, args.connections)))
            streams = asyncio.run(_streams(port, args.subscribers, window)) if args.subscribers else None
            state = c.get("/live/state").json()
        print(f"server: uvicorn {UVICORN_OPTIONS['http']}/{UVICORN_OPTIONS['loop']}, access log {'on' if args.access_log else 'off'}; "
              f"live twin lag {state['lag_steps']} steps; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
        for r in results:
            cpu = f"  server CPU {100 * r['server_cpu_frac']:.0f} %" if "server_cpu_frac" in r else ""
            print(f"{r['path'][:60]:<60} {args.connections} conn {r['requests']:>7} req {r['rps']:7.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
                  f"p99 {r['p99_ms']:6.2f} ms  max {r['max_ms']:7.1f} ms  errors {r['errors']}{cpu}")
        if streams:
            p = streams.pop("poll")
            print(f"/live/stream: {streams['subscribers']} subscribers, {streams['window_s']:.0f} s window, {streams['states_in_window']} states; "
                  f"{streams['complete_subscribers']} received every one; delivery lag p50 {streams['lag_p50_ms']:.1f} ms "
                  f"p99 {streams['lag_p99_ms']:.1f} ms max {streams['lag_max_ms']:.1f} ms")
            print(f"  meanwhile /live/state on 4 conn: {p['rps']:.0f} req/s p50 {p['p50_ms']:.2f} ms p99 {p['p99_ms']:.2f} ms "
                  f"max {p['max_ms']:.1f} ms errors {p['errors']}")
            print(json.dumps({"streams": streams, "poll_during_streams": p}))
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
