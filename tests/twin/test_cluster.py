"""A real dask cluster: ``dask scheduler`` and two ``dask worker`` processes on loopback run a sweep
given to ``twin sweep --scheduler``, with the numbers of the same sweep on a LocalCluster."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from twin.cli import app

ROOT = Path(__file__).resolve().parents[2]
BASE = ('[scenario]\nname = "cluster"\nsite = "memphis"\nstart = "2026-07-15T14:30:00"\nhorizon = "00:03:00"\n'
        '[weather]\ndesign_day = "memphis-0.4pct"\n[workload]\nseed = 3\n')
#: two trips, and a case whose workload trace does not exist (a recorded failure on every cluster)
CASES = ('[[cases]]\nname = "two trips"\n[[cases.events]]\nat = "00:01:00"\ndo = "trip"\ntarget = "southaven/titan350-*"\n'
         'count = 2\n[[cases]]\nname = "bad trace"\n[cases.workload]\ntrace = "no-such-trace.csv"\n')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sweep(tmp: Path, out: str, *extra: str) -> tuple[xr.Dataset, list[str]]:
    res = CliRunner().invoke(app, ["sweep", "memphis", "--scenario", str(tmp / "base.toml"), "--n-1", "grid-ties",
                                   "--cases", str(tmp / "cases.toml"), "--at", "00:01:00", "--out", str(tmp / out), *extra])
    assert res.exit_code == 0, res.output
    with xr.open_dataset(tmp / out / "kpis.nc", engine="h5netcdf") as ds:
        return ds.load(), json.loads((tmp / out / "ranking.json").read_text())


def _cases_run_here() -> int:
    from twin.sweep import _site

    info = _site.cache_info()
    return info.hits + info.misses


@pytest.mark.slow
def test_external_cluster_gives_the_local_cluster_numbers(tmp_path):
    (tmp_path / "base.toml").write_text(BASE)
    (tmp_path / "cases.toml").write_text(CASES)
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}  # as the LocalCluster's workers
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    dask = [sys.executable, "-m", "dask"]
    # no nanny: each worker is one process (with the environment above); both exit if the scheduler goes away
    commands = [dask + ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard", "--idle-timeout", "300"]]
    commands += [dask + ["worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                         "--death-timeout", "60", "--name", f"w{i}"] for i in range(2)]
    procs = []
    try:
        for cmd in commands:
            procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True))
        from dask.distributed import Client

        deadline = time.monotonic() + 90
        while True:  # the scheduler and both workers are up
            try:
                with Client(address, timeout=5) as c:
                    if len(c.scheduler_info()["workers"]) == 2:
                        break
            except OSError:
                pass
            assert all(p.poll() is None for p in procs), "a dask process exited during start-up"
            assert time.monotonic() < deadline, "the dask cluster did not start within 90 s"
            time.sleep(0.5)
        ds, ranking = _sweep(tmp_path, "external", "--scheduler", address)
        with Client(address, timeout=5) as c:  # every case ran on the external workers (one site look-up per case)
            ran = c.run(_cases_run_here)
        assert sum(ran.values()) == 5, ran
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
    local, local_ranking = _sweep(tmp_path, "local", "--workers", "1")
    assert list(ds.case.values) == list(local.case.values) == ["base", "open colossus1/mlgw-63",
                                                               "open colossus2/mlgw-service", "two trips", "bad trace"]
    assert list(ds.status.values) == ["done"] * 4 + ["failed"] and "workload.trace" in str(ds.error.values[-1])
    for v in local.data_vars:
        np.testing.assert_array_equal(ds[v].values, local[v].values, err_msg=v)
    assert ranking == local_ranking
