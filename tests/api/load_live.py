"""Bounded load test on loopback: GET /live/state and a 1-hour series slice while a run executes.

Starts the real server (uvicorn, live twin on), finishes a 2-hour run for the series slice, keeps a
24-hour run executing in the worker pool, then drives keep-alive HTTP/1.1 connections from asyncio
(a minimal client, so the load generator costs little of the 2 cores) for ``--seconds`` per endpoint.
Prints requests per second and latency percentiles. Not a pass/fail test.

    python3 -m tests.api.load_live --seconds 20 --connections 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "load-token"


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


async def _drive(port: int, path: str, seconds: float, connections: int) -> dict:
    lat: list[float] = []
    errors: list[int] = []
    t0 = time.perf_counter()
    await asyncio.gather(*[_worker(port, path, t0 + seconds, lat, errors) for _ in range(connections)])
    wall = time.perf_counter() - t0
    q = statistics.quantiles(lat, n=100)
    return {"path": path, "requests": len(lat), "errors": len(errors), "rps": len(lat) / wall,
            "p50_ms": 1e3 * q[49], "p99_ms": 1e3 * q[98], "max_ms": 1e3 * max(lat)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="per endpoint (≤ 30)")
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()
    seconds = min(args.seconds, 30.0)
    home = Path(tempfile.mkdtemp(prefix="twin-load-"))
    port = _free_port()
    env = dict(os.environ, TWIN_HOME=str(home), TWIN_WRITE_TOKENS=TOKEN, PYTHONPATH=str(ROOT))
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host", "127.0.0.1",
                               "--port", str(port), "--log-level", "warning", "--no-access-log"], cwd=ROOT, env=env)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth, timeout=30) as c:
            t_end = time.monotonic() + 90
            while True:
                try:
                    if c.get("/live/state").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < t_end, "the live twin did not start"
                time.sleep(0.5)
            slice_run = c.post("/runs", json={"scenario": {"name": "load-slice", "horizon": "02:00:00"}}).json()["id"]
            while c.get(f"/runs/{slice_run}").json()["status"] in ("queued", "running"):
                time.sleep(0.5)
            busy = [c.post("/runs", json={"scenario": {"name": f"load-busy-{i}", "horizon": "24:00:00"}}).json()["id"] for i in range(3)]
            while c.get(f"/runs/{busy[0]}").json()["status"] != "running":
                time.sleep(0.2)
            series = f"/runs/{slice_run}/series?var=f_hz&start=00:30:00&end=01:29:59"
            assert len(c.get(series).json()["time"]) == 3600
            results = [asyncio.run(_drive(port, "/live/state", seconds, args.connections)),
                       asyncio.run(_drive(port, series, seconds, args.connections))]
            running = c.get(f"/runs/{busy[0]}").json()
            state = c.get("/live/state").json()
        print(f"run executing during the test: {busy[0]} ({running['status']}, {running['progress_pct']:.0f} %); "
              f"live twin lag {state['lag_steps']} steps")
        for r in results:
            print(f"{r['path']:<70} {r['requests']:>6} req  {r['rps']:7.0f} req/s  p50 {r['p50_ms']:6.1f} ms  "
                  f"p99 {r['p99_ms']:6.1f} ms  max {r['max_ms']:6.1f} ms  errors {r['errors']}")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
