"""The recorder streams blocks to Zarr and reads back exactly what was appended, with CF attributes."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from twin.recorder import Recorder, open_results
from twin.variables import VARIABLES

COORDS = {"hall": ["a", "b"], "turbine": ["t1"], "bess": ["b1"], "grid_tie": ["g"], "island": ["i1", "i2"],
          "bus": ["x", "y", "z"], "branch": ["l1", "l2"]}


def _segment(n0: int, n: int) -> dict[str, np.ndarray]:
    out = {}
    for v, (dims, _u, _l) in VARIABLES.items():
        shape = (n,) + tuple(len(COORDS[d]) for d in dims[1:])
        base = np.arange(n0, n0 + n, dtype=np.float64).reshape((-1,) + (1,) * (len(shape) - 1))
        out[v] = (base * np.ones(shape) + 0.25).astype(np.float32)
    return out


@pytest.mark.parametrize("segments", [[1000, 5000, 123, 4000], [7200], [59]])
def test_round_trip_and_per_minute(tmp_path, segments):
    full = [v for v in VARIABLES if v not in ("vm_pu", "loading_pct")]
    rec = Recorder(tmp_path, COORDS, full, ["vm_pu", "loading_pct"], datetime(2026, 7, 15, 14), 1.0,
                   {"site": "test", "solver": {"tol": 1e-8}}, block_steps=3600)
    n = 0
    for s in segments:
        rec.append(_segment(n, s))
        n += s
    rec.close({"status": "done"})
    ds = open_results(tmp_path)
    assert ds.sizes["time"] == n
    np.testing.assert_array_equal(ds.p_it_mw.values[:, 1], np.arange(n) + 0.25)
    assert str(ds.time.values[0])[:19] == "2026-07-15T14:00:00"
    assert (ds.time.diff("time") == np.timedelta64(1, "s")).all()
    # per-minute mean/min/max of a ramp 0..n-1 (+0.25), the last minute partial
    m = -(-n // 60)
    assert ds.sizes["minute"] == m
    np.testing.assert_allclose(ds.vm_pu_min.values[:, 0], np.arange(m) * 60 + 0.25)
    np.testing.assert_allclose(ds.vm_pu_max.values[:, 0], np.minimum(np.arange(m) * 60 + 59, n - 1) + 0.25)
    np.testing.assert_allclose(ds.vm_pu.values[0, 0], (min(n, 60) - 1) / 2 + 0.25, rtol=1e-6)
    for v in full:
        assert ds[v].attrs["units"] == VARIABLES[v][1] and ds[v].attrs["long_name"]
        assert ds[v].dtype == np.float32
    assert ds.attrs["site"] == "test" and ds.attrs["status"] == "done"


def test_recorder_memory_is_bounded(tmp_path):
    rec = Recorder(tmp_path, COORDS, list(VARIABLES), [], datetime(2026, 1, 1), 1.0, {}, block_steps=600)
    assert all(b.shape[0] == 600 for b in rec._buf.values())
    rec.append(_segment(0, 5000))
    assert rec.n_steps == 5000 and rec._fill == 5000 % 600
