"""Slices of a run's results: one variable, some entities, a time window, an optional aggregation step.

Times (``start``, ``end``) are ISO 8601 date-times, ``HH:MM:SS`` from the scenario start, or seconds
from the start. ``every`` [s] aggregates consecutive samples (mean, min or max) into one. Finished runs
are immutable, so their opened datasets are kept in a small cache.
"""

from __future__ import annotations

import csv
import io
import math
import threading
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr

from sites import InputError
from twin.recorder import STORE_NAME, open_results
from twin.scenario import parse_time_s
from twin.variables import VARIABLES

__all__ = ["SeriesTooLarge", "NoResults", "open_run", "select", "to_json", "to_csv", "to_netcdf", "known_variables"]


class SeriesTooLarge(Exception):
    """The slice would exceed the configured number of values."""


class NoResults(Exception):
    """The run has no stored results (yet)."""


_cache: OrderedDict[tuple, xr.Dataset] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_SIZE = 16
#: Variables of finished runs kept in memory (for repeated slices), up to this many bytes in all.
_LOADED_BYTES = 256 * 2**20
_loaded: OrderedDict[tuple, xr.DataArray] = OrderedDict()


def known_variables() -> list[str]:
    """Every name a series may ask for: full-rate variables and their per-minute min/max."""
    return list(VARIABLES) + [f"{v}_{s}" for v in VARIABLES for s in ("min", "max")]


def open_run(store: str | None, *, immutable: bool) -> xr.Dataset:
    """Open a run's results (cached when the run is finished)."""
    if not store or not (Path(store) / STORE_NAME).exists():
        raise NoResults("this run has no stored results")
    key = (store,)
    if immutable:
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
    try:
        ds = open_results(store)
    except Exception as exc:  # a store without a first block yet, or damaged by a crash
        raise NoResults(f"the results cannot be read ({type(exc).__name__})") from None
    if immutable:
        with _cache_lock:
            _cache[key] = ds
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return ds


#: Dates a slice may name: those of the results' nanosecond timestamps.
_DATE_RANGE = (datetime(1678, 1, 1), datetime(2261, 12, 31))


def _time(value: str, t0: np.datetime64, field: str) -> np.datetime64:
    if _is_number(value) or ":" in value and "-" not in value and "T" not in value:
        try:
            offset = parse_time_s(float(value) if _is_number(value) else value)
        except ValueError as exc:
            raise InputError("query", [(field, str(exc))]) from None
        return t0 + np.timedelta64(int(round(offset * 1e9)), "ns")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise InputError("query", [(field, f"expected an ISO 8601 date-time, 'HH:MM:SS' or seconds from the start, got {value!r}")]) from None
    if dt.tzinfo is not None:
        dt = dt.replace(tzinfo=None) - (dt.utcoffset() or 0)
    if not _DATE_RANGE[0] <= dt <= _DATE_RANGE[1]:
        raise InputError("query", [(field, f"expected a date from {_DATE_RANGE[0]:%Y-%m-%d} to {_DATE_RANGE[1]:%Y-%m-%d}, got {value!r}")])
    return np.datetime64(dt, "ns")


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _variable(ds: xr.Dataset, var: str, key: tuple | None) -> xr.DataArray:
    """``ds[var]``; for a finished run (``key`` given) loaded once and kept while memory allows."""
    if key is None:
        return ds[var]
    with _cache_lock:
        if key in _loaded:
            _loaded.move_to_end(key)
            return _loaded[key]
    da = ds[var]
    if da.nbytes > _LOADED_BYTES // 4:
        return da
    da = da.load()
    with _cache_lock:
        _loaded[key] = da
        while sum(x.nbytes for x in _loaded.values()) > _LOADED_BYTES:
            _loaded.popitem(last=False)
    return da


def select(ds: xr.Dataset, var: str, entity: list[str] | None, start: str | None, end: str | None, every: float | None,
           agg: Literal["mean", "min", "max"], max_points: int, cache_key: tuple | None = None) -> xr.DataArray:
    """The requested slice as a DataArray (time first), checked against the caps.

    ``cache_key`` (the store of a finished run) keeps the variable in memory for later slices.
    """
    if var not in ds.data_vars:
        recorded = ", ".join(sorted(str(v) for v in ds.data_vars))
        raise InputError("query", [("var", f"{var!r} is not recorded in this run; recorded: {recorded}")])
    da = _variable(ds, var, None if cache_key is None else (*cache_key, var))
    tdim = da.dims[0]
    comp = da.dims[1] if da.ndim > 1 else None
    if entity:
        if comp is None:
            raise InputError("query", [("entity", f"{var} has no component dimension; omit entity")])
        names = [str(x) for x in ds[comp].values]
        unknown = [e for e in entity if e not in names]
        if unknown:
            shown = ", ".join(names[:20]) + (" …" if len(names) > 20 else "")
            raise InputError("query", [("entity", f"unknown {comp} {unknown[0]!r}; expected one of {shown}")])
        da = da.sel({comp: entity})
    times = ds[tdim].values
    if len(times) == 0:
        raise NoResults("no time steps stored yet")
    t0 = times[0]
    lo = _time(start, t0, "start") if start is not None else None
    hi = _time(end, t0, "end") if end is not None else None
    if lo is not None and hi is not None and hi < lo:
        raise InputError("query", [("end", "expected end ≥ start")])
    da = da.sel({tdim: slice(lo, hi)})
    if every is not None:
        step = float((times[1] - times[0]) / np.timedelta64(1, "s")) if len(times) > 1 else 1.0
        n = max(int(round(every / step)), 1)
        if n > 1 and da.sizes[tdim] > 0:
            co = da.coarsen({tdim: n}, boundary="trim", coord_func="min")
            da = getattr(co, agg)()
    points = int(np.prod([da.sizes[d] for d in da.dims])) if da.ndim else 1
    if points > max_points:
        raise SeriesTooLarge(f"the slice holds {points} values, over the cap of {max_points}; narrow start/end, pick entities or set every")
    return da.load()


def _times_iso(da: xr.DataArray) -> list[str]:
    return np.datetime_as_string(da[da.dims[0]].values, unit="ms").tolist()


def _columns(da: xr.DataArray, var: str) -> dict[str, np.ndarray]:
    if da.ndim == 1:
        return {var: da.values}
    comp = da.dims[1]
    return {str(name): da.isel({comp: i}).values for i, name in enumerate(da[comp].values)}


def to_json(da: xr.DataArray, run_id: str, var: str) -> bytes:
    """The slice as JSON bytes: ``time`` (ISO 8601) and one list per entity (NaN as null)."""
    import orjson

    cols = _columns(da, var)
    return orjson.dumps({
        "id": run_id, "var": var, "units": da.attrs.get("units"), "long_name": da.attrs.get("long_name"),
        "dims": list(da.dims), "time": _times_iso(da),
        "series": {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in cols.items()},
    }, option=orjson.OPT_SERIALIZE_NUMPY)


def to_csv(da: xr.DataArray, var: str) -> str:
    cols = _columns(da, var)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["time", *cols])
    arrays = [v.astype(float) for v in cols.values()]
    for i, t in enumerate(_times_iso(da)):
        w.writerow([t, *("" if not math.isfinite(a[i]) else repr(float(a[i])) for a in arrays)])
    return buf.getvalue()


def to_netcdf(da: xr.DataArray, ds: xr.Dataset, var: str) -> bytes:
    out = da.to_dataset(name=var)
    out.attrs.update({k: v for k, v in ds.attrs.items() if isinstance(v, (str, int, float))})
    for v in out.variables.values():
        v.encoding = {}
    return out.to_netcdf(engine="h5netcdf")
