"""Figures of a run: power by source, frequency per island, batteries, temperatures and throttling.

:func:`plot_run` reads the store once, block by block, into a small reduced Dataset
(:func:`reduce_for_plots`: at most ~2,000 bins over the horizon, each with its mean, minimum and
maximum), so a year plots as fast as a day and in bounded memory; the frequency figure adds the
1-s values around the first event. Each ``fig_*`` function takes that reduced Dataset and returns a
matplotlib Figure.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from .recorder import bin_stats  # noqa: E402

__all__ = ["plot_run", "reduce_for_plots", "fig_power", "fig_frequency", "fig_bess", "fig_thermal", "PLOT_VARIABLES"]

#: What the figures show; a variable recorded only per minute is read from its 1-min mean/min/max.
PLOT_VARIABLES = ("p_turbine_mw", "p_grid_mw", "p_bess_mw", "soc_bess", "p_it_mw", "p_cooling_mw", "p_unserved_mw",
                  "f_hz", "f_min_hz", "f_max_hz", "t_gpu_c", "t_coolant_c", "t_amb_c", "throttle")
MAX_BINS = 2000
#: seconds of 1-s frequency shown before and after the first event
EVENT_WINDOW_S = (30, 180)


def reduce_for_plots(ds: xr.Dataset, max_bins: int = MAX_BINS, block: int = 21600) -> xr.Dataset:
    """Bin the plotted variables along time: ``X`` (mean), ``X_min`` and ``X_max`` per bin.

    Reads ``block`` steps at a time (a multiple of the bin width), so memory stays bounded for any
    horizon. Runs shorter than ``max_bins`` steps keep their full resolution. Variables recorded
    per minute only are binned from their 1-min mean/min/max onto the same bins (whole minutes when
    the full-rate bins are longer than a minute, else held over each minute). Attributes are kept.
    """
    out = xr.Dataset(attrs=ds.attrs)
    spm = 1
    if ds.sizes.get("time", 0) > 1 and ds.sizes.get("minute", 0) > 1:
        spm = max(1, int(round((ds.minute.values[1] - ds.minute.values[0]) / (ds.time.values[1] - ds.time.values[0]))))
    w_time = 1
    for dim in ("time", "minute"):
        names = [v for v in PLOT_VARIABLES if v in ds and ds[v].dims[:1] == (dim,)]
        if not names:
            continue
        n = ds.sizes[dim]
        w = max(1, -(-n // max_bins))
        if dim == "time" and w > 1 and "minute" in ds.dims:
            w = -(-w // spm) * spm  # whole minutes, so per-minute variables fall on the same bins
        if dim == "minute" and "time" in out.dims:
            w = max(1, w_time // spm)
        step = max(w, block // w * w)
        parts: dict[str, list] = {v: [] for v in names}
        for a in range(0, n, step):
            sl = {dim: slice(a, min(a + step, n))}
            for v in names:
                x = ds[v].isel(sl).values
                if dim == "minute" and f"{v}_min" in ds and f"{v}_max" in ds:  # 1-min mean, min and max
                    parts[v].append((bin_stats(x, w, "mean")[0], bin_stats(ds[f"{v}_min"].isel(sl).values, w, "min")[0],
                                     bin_stats(ds[f"{v}_max"].isel(sl).values, w, "max")[0]))
                else:
                    parts[v].append(tuple(bin_stats(x, w)))
        t = ds[dim].values[::w]
        for v in names:
            dims = ("time",) + ds[v].dims[1:]
            coords = {d: ds[d].values for d in ds[v].dims[1:]}
            for suffix, k in (("", 0), ("_min", 1), ("_max", 2)):
                da = xr.DataArray(np.concatenate([p[k] for p in parts[v]]), dims=dims, coords={"time": t, **coords},
                                  attrs=ds[v].attrs)
                if dim == "minute" and "time" in out.dims:
                    da = da.reindex(time=out.time.values, method="ffill")
                out[v + suffix] = da
        if dim == "time":
            w_time = w
    out.attrs["bin_s"] = float((out.time.values[1] - out.time.values[0]) / np.timedelta64(1, "s")) if out.sizes.get("time", 0) > 1 else 1.0
    return out


def _island_members(ds: xr.Dataset, dim: str) -> dict[str, list[str]]:
    """Map component names to islands from the dataset attribute written by the engine."""
    raw = ds.attrs.get("island_members")
    if not raw:
        return {}
    members = json.loads(raw) if isinstance(raw, str) else raw
    return {isl: comp.get(dim, []) for isl, comp in members.items()}


def _finish(fig: plt.Figure) -> plt.Figure:
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.06, top=0.92, hspace=0.3)
    return fig


def fig_power(r: xr.Dataset) -> plt.Figure:
    """Stacked power by source per island (bin means), with the served load."""
    islands = [str(i) for i in r.island.values]
    fig, axes = plt.subplots(len(islands), 1, figsize=(11, 3.2 * len(islands)), sharex=True, squeeze=False)
    turb, bess = _island_members(r, "turbine"), _island_members(r, "bess")
    grid, halls = _island_members(r, "grid_tie"), _island_members(r, "hall")
    t = r.time.values
    for ax, isl in zip(axes[:, 0], islands):
        parts, labels = [], []
        if turb.get(isl) and "p_turbine_mw" in r:
            parts.append(r.p_turbine_mw.sel(turbine=turb[isl]).sum("turbine").values)
            labels.append("turbines")
        if grid.get(isl) and "p_grid_mw" in r:
            parts.append(r.p_grid_mw.sel(grid_tie=grid[isl]).sum("grid_tie").values)
            labels.append("grid import")
        if bess.get(isl) and "p_bess_mw" in r:
            parts.append(r.p_bess_mw.sel(bess=bess[isl]).sum("bess").clip(min=0).values)
            labels.append("BESS discharge")
        if parts:
            ax.stackplot(t, *parts, labels=labels, alpha=0.75)
        if halls.get(isl) and "p_it_mw" in r:
            it = r.p_it_mw.sel(hall=halls[isl]).sum("hall").values
            ax.plot(t, it, "k-", lw=1, label="IT load")
            if "p_cooling_mw" in r:
                ax.plot(t, it + r.p_cooling_mw.sel(hall=halls[isl]).sum("hall").values, "k--", lw=1, label="IT + cooling")
        if "p_unserved_mw" in r and float(r.p_unserved_mw_max.sel(island=isl).max()) > 0:
            ax.plot(t, r.p_unserved_mw.sel(island=isl).values, "r-", lw=1.2, label="unserved")
        ax.set_ylabel("MW")
        ax.set_title(isl, loc="left", fontsize=10)
        if ax.get_legend_handles_labels()[0]:  # an island slot a split never used has nothing drawn
            ax.legend(loc="upper left", fontsize=7, ncol=3)
        ax.grid(alpha=0.3)
    fig.suptitle(f"Power by source — {r.attrs.get('title', '')}")
    return _finish(fig)


def _first_event_s(ds: xr.Dataset) -> float | None:
    from .scenario import parse_time_s

    doc = ds.attrs.get("scenario_doc")
    if not doc:
        return None
    events = (json.loads(doc) if isinstance(doc, str) else doc).get("events") or []
    return min(parse_time_s(e["at"]) for e in events) if events else None


def fig_frequency(r: xr.Dataset, window: xr.DataArray | xr.Dataset | None = None) -> plt.Figure:
    """Frequency per island over the run (band: min/max per bin, of the sub-step extremes where they are
    recorded) and, if given, 1-s values around an event.

    ``window``: ``f_hz`` at full rate with a ``t_rel_s`` coordinate (seconds after the event), or a
    dataset with ``f_hz`` and the per-step sub-step extremes ``f_min_hz``/``f_max_hz`` (drawn as a band).
    """
    fig, axes = plt.subplots(2 if window is not None else 1, 1, figsize=(11, 7.5 if window is not None else 3.8), squeeze=False)
    ax = axes[0, 0]
    sub_steps = "f_min_hz" in r and "f_max_hz" in r
    lo, hi = (r.f_min_hz_min, r.f_max_hz_max) if sub_steps and "f_min_hz_min" in r else (
        (r.f_min_hz, r.f_max_hz) if sub_steps else (r.get("f_hz_min"), r.get("f_hz_max")))
    banded = lo is not None and (sub_steps or r.attrs.get("bin_s", 1.0) > 1.0)
    for isl in r.island.values:
        if banded:
            ax.fill_between(r.time.values, lo.sel(island=isl).values, hi.sel(island=isl).values, alpha=0.25)
        ax.plot(r.time.values, r.f_hz.sel(island=isl).values, lw=1, label=str(isl))
    ax.set_title("Frequency per island" + (" (band: lowest and highest sub-step values)" if sub_steps else
                                           " (band: min/max)" if banded else ""))
    if window is not None:
        zx = axes[1, 0]
        f = window.f_hz if isinstance(window, xr.Dataset) else window
        for isl in f.island.values:
            line, = zx.plot(f.t_rel_s.values, f.sel(island=isl).values, lw=1.2, label=str(isl))
            if isinstance(window, xr.Dataset) and "f_min_hz" in window:
                zx.fill_between(f.t_rel_s.values, window.f_min_hz.sel(island=isl).values,
                                window.f_max_hz.sel(island=isl).values, color=line.get_color(), alpha=0.25)
        zx.axvline(0, color="k", ls="--", lw=0.8)
        zx.set_xlabel("seconds after the first event")
        zx.set_title("Around the first event (end-of-second values; band: sub-step min/max)"
                     if isinstance(window, xr.Dataset) and "f_min_hz" in window else "Around the first event (1-s values)")
    for a in axes[:, 0]:
        a.axhline(59.3, color="r", ls=":", lw=1)
        a.set_ylabel("Hz")
        a.legend(fontsize=8, loc="lower right")  # a fixed place: "best" costs a search over every line
        a.grid(alpha=0.3)
    return _finish(fig)


def fig_bess(r: xr.Dataset) -> plt.Figure:
    """Battery power and state of charge (bin means)."""
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 5.5), sharex=True)
    for b in r.bess.values:
        a1.plot(r.time.values, r.p_bess_mw.sel(bess=b).values, lw=1, label=str(b))
        a2.plot(r.time.values, 100 * r.soc_bess.sel(bess=b).values, lw=1, label=str(b))
    a1.set_ylabel("MW (+ discharge)")
    a2.set_ylabel("SoC %")
    a1.legend(fontsize=8, loc="upper right")
    for a in (a1, a2):
        a.grid(alpha=0.3)
    a1.set_title("Batteries")
    return _finish(fig)


def fig_thermal(r: xr.Dataset) -> plt.Figure:
    """GPU temperature per hall (bin maxima), hottest coolant loop, ambient, and throttling (bin minima)."""
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    t = r.time.values
    for h in r.hall.values:
        a1.plot(t, r.t_gpu_c_max.sel(hall=h).values, lw=1, label=f"{h} GPU")
    a1.plot(t, r.t_coolant_c_max.max("hall").values, "b--", lw=1, label="coolant (max over halls)")
    a1.plot(t, r.t_amb_c.values, "k:", lw=1.2, label="ambient")
    a1.set_ylabel("°C")
    a1.legend(fontsize=6, ncol=4, loc="center right")
    for h in r.hall.values:
        a2.plot(t, r.throttle_min.sel(hall=h).values, lw=1)
    a2.set_ylabel("GPU clock factor")
    a2.set_ylim(-0.05, 1.05)
    for a in (a1, a2):
        a.grid(alpha=0.3)
    a1.set_title("Temperatures and throttling")
    return _finish(fig)


def _event_window(ds: xr.Dataset) -> xr.Dataset | None:
    t_ev = _first_event_s(ds)
    if t_ev is None or "f_hz" not in ds or "time" not in ds.f_hz.dims:
        return None
    step_s = (ds.time.values[1] - ds.time.values[0]) / np.timedelta64(1, "s") if ds.sizes["time"] > 1 else 1.0
    k = int(round(t_ev / step_s))
    a, b = max(k - int(EVENT_WINDOW_S[0] / step_s), 0), min(k + int(EVENT_WINDOW_S[1] / step_s) + 1, ds.sizes["time"])
    if a >= b:
        return None
    names = [v for v in ("f_hz", "f_min_hz", "f_max_hz") if v in ds and "time" in ds[v].dims]
    w = ds[names].isel(time=slice(a, b)).load()
    return w.assign_coords(t_rel_s=("time", (np.arange(a, b) - k) * step_s))


def plot_run(ds: xr.Dataset, out_dir: str | Path, dpi: int = 100) -> list[Path]:
    """Write every figure of a run as PNG into ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    r = reduce_for_plots(ds)
    figures = (("power", lambda: fig_power(r)), ("frequency", lambda: fig_frequency(r, _event_window(ds))),
               ("bess", lambda: fig_bess(r)), ("thermal", lambda: fig_thermal(r)))
    # a site without batteries or halls (southaven) has nothing to draw in those figures
    has = {"bess": r.sizes.get("bess", 0) > 0, "thermal": r.sizes.get("hall", 0) > 0}
    paths = []
    for name, make in ((n, m) for n, m in figures if has.get(n, True)):
        fig = make()
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        paths.append(path)
    return paths
