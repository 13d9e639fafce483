"""Stream run results into a Zarr store, block by block, as a CF-style xarray Dataset.

Memory stays bounded for any horizon: the engine hands over segments of any length, the recorder
copies them into preallocated blocks of ``block_steps`` steps and appends each full block to the store
along ``time``. Variables the scenario records per minute are reduced to their mean (``X``) and
extremes (``X_min``, ``X_max``) on the ``minute`` dimension instead.

Every variable carries ``units`` and ``long_name``; the global attributes carry the provenance (site,
scenario, code version, solver settings). Open a finished store with :func:`open_results`.
"""

from __future__ import annotations

import json
import shutil
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .variables import VARIABLES

__all__ = ["Recorder", "open_results", "STORE_NAME"]

STORE_NAME = "results.zarr"
_MINUTE_GROUP = "per_minute"


class Recorder:
    """Append-only writer of one run's results.

    Parameters
    ----------
    run_dir : Path
        The run directory; the store is ``run_dir/results.zarr``.
    coords : dict of str → list of str
        Names along each component dimension (``hall``, ``turbine``, ``bess``, ``grid_tie``,
        ``island``, ``bus``, ``branch``).
    full_rate, per_minute : list of str
        Variables to record at every step, and as per-minute min/mean/max.
    start : datetime
        Scenario start (the ``time`` origin).
    step_s : float
        Step [s].
    attrs : dict
        Global attributes (provenance).
    block_steps : int
        Steps buffered before a write; a multiple of the steps per minute.
    time_chunk : int
        Zarr chunk length along ``time``.
    """

    def __init__(self, run_dir: Path, coords: dict[str, list[str]], full_rate: list[str], per_minute: list[str],
                 start: datetime, step_s: float, attrs: dict[str, Any], block_steps: int = 21600, time_chunk: int = 3600):
        self.path = Path(run_dir) / STORE_NAME
        if self.path.exists():
            shutil.rmtree(self.path)
        self.coords = coords
        self.full_rate = list(full_rate)
        self.per_minute = list(per_minute)
        self.start = np.datetime64(start.replace(tzinfo=None), "ns")
        self.step_s = step_s
        self.spm = max(int(round(60.0 / step_s)), 1)
        self.block = max(block_steps // self.spm, 1) * self.spm
        self.time_chunk = min(time_chunk, self.block)
        self.attrs = {k: _attr(v) for k, v in attrs.items()}
        names = self.full_rate + self.per_minute
        self._buf = {v: np.empty((self.block,) + self._shape(v), dtype=np.float32) for v in names}
        self._fill = 0  # steps in the buffer
        self._written = 0  # steps already in the store
        self._written_min = 0
        self._first = True

    def _shape(self, var: str) -> tuple[int, ...]:
        return tuple(len(self.coords[d]) for d in VARIABLES[var][0][1:])

    @property
    def n_steps(self) -> int:
        """Steps recorded so far (written and buffered)."""
        return self._written + self._fill

    def append(self, data: dict[str, np.ndarray]) -> None:
        """Add a segment: ``data[var]`` has shape (steps, …) for every recorded variable."""
        n = len(next(iter(data.values())))
        i = 0
        while i < n:
            take = min(n - i, self.block - self._fill)
            for v, buf in self._buf.items():
                buf[self._fill:self._fill + take] = data[v][i:i + take]
            self._fill += take
            i += take
            if self._fill == self.block:
                self._flush()

    def _times(self, first_step: int, n: int, every: int = 1) -> np.ndarray:
        step_ns = np.timedelta64(int(round(self.step_s * every * 1e9)), "ns")
        return self.start + (first_step // every) * step_ns + np.arange(n) * step_ns

    def _flush(self) -> None:
        n = self._fill
        if n == 0:
            return
        coords = {d: self.coords[d] for d in self.coords}
        full = xr.Dataset(coords={**coords, "time": self._times(self._written, n)})
        for v in self.full_rate:
            dims, units, long_name = VARIABLES[v]
            full[v] = (dims, self._buf[v][:n].copy(), {"units": units, "long_name": long_name})
        full.attrs.update(self.attrs)  # appends rewrite the group's attributes: keep them on every block
        encoding = None
        if self._first:
            origin = str(self.start.astype("datetime64[s]")).replace("T", " ")
            encoding = {"time": {"units": f"seconds since {origin}", "dtype": "float64", "chunks": (self.time_chunk,)}}
            for v in self.full_rate:
                encoding[v] = {"chunks": (self.time_chunk,) + self._buf[v].shape[1:]}
        self._write(full, None, encoding)
        if self.per_minute:
            m = -(-n // self.spm)  # a partial last minute is reduced over what is there
            mins = xr.Dataset(coords={**coords, "minute": self._times(self._written, m, self.spm)})
            for v in self.per_minute:
                dims, units, long_name = VARIABLES[v]
                x = self._buf[v][:n]
                pad = m * self.spm - n
                if pad:
                    x = np.concatenate([x, np.full((pad,) + x.shape[1:], np.nan, np.float32)])
                x = x.reshape((m, self.spm) + x.shape[1:])
                mdims = ("minute",) + dims[1:]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mins[v] = (mdims, np.nanmean(x, axis=1), {"units": units, "long_name": f"{long_name}, 1-min mean"})
                    mins[f"{v}_min"] = (mdims, np.nanmin(x, axis=1), {"units": units, "long_name": f"{long_name}, 1-min minimum"})
                    mins[f"{v}_max"] = (mdims, np.nanmax(x, axis=1), {"units": units, "long_name": f"{long_name}, 1-min maximum"})
            menc = None
            if self._first:
                origin = str(self.start.astype("datetime64[s]")).replace("T", " ")
                menc = {"minute": {"units": f"seconds since {origin}", "dtype": "float64"}}
            self._write(mins, _MINUTE_GROUP, menc)
            self._written_min += m
        self._written += n
        self._fill = 0
        self._first = False

    def _write(self, ds: xr.Dataset, group: str | None, encoding) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self._first:
                ds.to_zarr(self.path, group=group, mode="w" if group is None else "a", encoding=encoding, consolidated=False)
            else:
                dim = "time" if group is None else "minute"
                ds.drop_vars([d for d in self.coords]).to_zarr(self.path, group=group, mode="a", append_dim=dim, consolidated=False)

    def close(self, extra_attrs: dict[str, Any] | None = None) -> Path:
        """Flush what is buffered and write the final attributes. Returns the store path."""
        self._flush()
        if extra_attrs:
            import zarr

            self.attrs.update({k: _attr(v) for k, v in extra_attrs.items()})
            zarr.open_group(str(self.path), mode="a").attrs.update(self.attrs)
        return self.path


def _attr(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return json.dumps(v, default=str)


def open_results(run_dir: str | Path) -> xr.Dataset:
    """Open a run's results: full-rate variables and, where recorded, the per-minute ones."""
    path = Path(run_dir)
    if path.name != STORE_NAME:
        path = path / STORE_NAME
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = xr.open_zarr(path, consolidated=False)
        try:
            mins = xr.open_zarr(path, group=_MINUTE_GROUP, consolidated=False)
        except (FileNotFoundError, KeyError, OSError, ValueError):
            mins = None
    if mins is not None and len(mins.data_vars):
        ds = ds.merge(mins, combine_attrs="override")
    return ds
