"""Figures of a run: power by source, frequency per island, batteries, temperatures and throttling.

Each function takes the results Dataset (:func:`twin.recorder.open_results`) and returns a matplotlib
Figure; :func:`plot_run` writes them all as PNGs. Long runs are reduced to 1-min means (and min/max
for frequency) before plotting, so a year plots as fast as a day.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

__all__ = ["plot_run", "fig_power", "fig_frequency", "fig_bess", "fig_thermal"]


def _coarsen(da: xr.DataArray, how: str = "mean") -> xr.DataArray:
    n = da.sizes.get("time", 0)
    if n <= 3600 * 6:
        return da
    w = max(n // 2000, 1)
    c = da.coarsen(time=w, boundary="trim")
    return getattr(c, how)()


def _island_members(ds: xr.Dataset, dim: str) -> dict[str, list[str]]:
    """Map component names to islands from the dataset attribute written by the engine."""
    import json

    raw = ds.attrs.get("island_members")
    if not raw:
        return {}
    members = json.loads(raw) if isinstance(raw, str) else raw
    return {isl: comp.get(dim, []) for isl, comp in members.items()}


def fig_power(ds: xr.Dataset) -> plt.Figure:
    """Stacked power by source per island, with the served load."""
    islands = [str(i) for i in ds.island.values]
    fig, axes = plt.subplots(len(islands), 1, figsize=(11, 3.2 * len(islands)), sharex=True, squeeze=False)
    turb = _island_members(ds, "turbine")
    bess = _island_members(ds, "bess")
    grid = _island_members(ds, "grid_tie")
    halls = _island_members(ds, "hall")
    for ax, isl in zip(axes[:, 0], islands):
        t = _coarsen(ds.t_amb_c).time.values
        parts, labels = [], []
        if turb.get(isl):
            parts.append(_coarsen(ds.p_turbine_mw.sel(turbine=turb[isl]).sum("turbine")).values)
            labels.append("turbines")
        if grid.get(isl):
            parts.append(_coarsen(ds.p_grid_mw.sel(grid_tie=grid[isl]).sum("grid_tie")).values)
            labels.append("grid import")
        if bess.get(isl):
            parts.append(_coarsen(ds.p_bess_mw.sel(bess=bess[isl]).sum("bess")).clip(min=0).values)
            labels.append("BESS discharge")
        if parts:
            ax.stackplot(t, *parts, labels=labels, alpha=0.75)
        if halls.get(isl):
            it = _coarsen(ds.p_it_mw.sel(hall=halls[isl]).sum("hall"))
            cool = _coarsen(ds.p_cooling_mw.sel(hall=halls[isl]).sum("hall"))
            ax.plot(t, it.values, "k-", lw=1, label="IT load")
            ax.plot(t, (it + cool).values, "k--", lw=1, label="IT + cooling")
        if "p_unserved_mw" in ds and float(ds.p_unserved_mw.sel(island=isl).max()) > 0:
            ax.plot(t, _coarsen(ds.p_unserved_mw.sel(island=isl)).values, "r-", lw=1.2, label="unserved")
        ax.set_ylabel("MW")
        ax.set_title(isl, loc="left", fontsize=10)
        ax.legend(loc="upper left", fontsize=7, ncol=3)
        ax.grid(alpha=0.3)
    fig.suptitle(f"Power by source — {ds.attrs.get('title', '')}")
    fig.tight_layout()
    return fig


def _first_event_s(ds: xr.Dataset) -> float | None:
    import json

    from .scenario import parse_time_s

    doc = ds.attrs.get("scenario_doc")
    if not doc:
        return None
    events = (json.loads(doc) if isinstance(doc, str) else doc).get("events") or []
    return min(parse_time_s(e["at"]) for e in events) if events else None


def fig_frequency(ds: xr.Dataset) -> plt.Figure:
    """Frequency per island over the run, and at 1-s resolution around the first event."""
    t_ev = _first_event_s(ds)
    fig, axes = plt.subplots(2 if t_ev is not None else 1, 1, figsize=(11, 7.5 if t_ev is not None else 3.8), squeeze=False)
    ax = axes[0, 0]
    for isl in ds.island.values:
        f = ds.f_hz.sel(island=isl)
        if f.sizes["time"] > 3600 * 6:
            lo, mid, hi = _coarsen(f, "min"), _coarsen(f, "mean"), _coarsen(f, "max")
            ax.fill_between(mid.time.values, lo.values, hi.values, alpha=0.25)
            ax.plot(mid.time.values, mid.values, lw=1, label=str(isl))
        else:
            ax.plot(f.time.values, f.values, lw=1, label=str(isl))
    ax.set_title("Frequency per island (band: min/max)")
    if t_ev is not None:
        t0 = ds.time.values[0] + np.timedelta64(int(t_ev), "s")
        window = ds.f_hz.sel(time=slice(t0 - np.timedelta64(30, "s"), t0 + np.timedelta64(180, "s")))
        zx = axes[1, 0]
        for isl in window.island.values:
            zx.plot((window.time.values - t0) / np.timedelta64(1, "s"), window.sel(island=isl).values, lw=1.2, label=str(isl))
        zx.axvline(0, color="k", ls="--", lw=0.8)
        zx.set_xlabel("seconds after the first event")
        zx.set_title("Around the first event (1-s values)")
    for a in axes[:, 0]:
        a.axhline(59.3, color="r", ls=":", lw=1)
        a.set_ylabel("Hz")
        a.legend(fontsize=8)
        a.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def fig_bess(ds: xr.Dataset) -> plt.Figure:
    """Battery power and state of charge."""
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 5.5), sharex=True)
    for b in ds.bess.values:
        a1.plot(_coarsen(ds.p_bess_mw.sel(bess=b)).time.values, _coarsen(ds.p_bess_mw.sel(bess=b)).values, lw=1, label=str(b))
        a2.plot(_coarsen(ds.soc_bess.sel(bess=b)).time.values, 100 * _coarsen(ds.soc_bess.sel(bess=b)).values, lw=1, label=str(b))
    a1.set_ylabel("MW (+ discharge)")
    a2.set_ylabel("SoC %")
    a1.legend(fontsize=8)
    for a in (a1, a2):
        a.grid(alpha=0.3)
    a1.set_title("Batteries")
    fig.tight_layout()
    return fig


def fig_thermal(ds: xr.Dataset) -> plt.Figure:
    """GPU and coolant temperatures per hall, ambient, and throttling."""
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    for h in ds.hall.values:
        tg = _coarsen(ds.t_gpu_c.sel(hall=h), "max")
        a1.plot(tg.time.values, tg.values, lw=1, label=f"{h} GPU")
    tc = _coarsen(ds.t_coolant_c, "max").max("hall")
    a1.plot(tc.time.values, tc.values, "b--", lw=1, label="coolant (max over halls)")
    ta = _coarsen(ds.t_amb_c)
    a1.plot(ta.time.values, ta.values, "k:", lw=1.2, label="ambient")
    a1.set_ylabel("°C")
    a1.legend(fontsize=6, ncol=4)
    thr = _coarsen(ds.throttle, "min")
    for h in ds.hall.values:
        a2.plot(thr.time.values, thr.sel(hall=h).values, lw=1)
    a2.set_ylabel("GPU clock factor")
    a2.set_ylim(-0.05, 1.05)
    for a in (a1, a2):
        a.grid(alpha=0.3)
    a1.set_title("Temperatures and throttling")
    fig.tight_layout()
    return fig


def plot_run(ds: xr.Dataset, out_dir: str | Path) -> list[Path]:
    """Write every figure of a run as PNG into ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = ["p_turbine_mw", "p_grid_mw", "p_bess_mw", "soc_bess", "p_it_mw", "p_cooling_mw", "p_unserved_mw",
             "f_hz", "t_gpu_c", "t_coolant_c", "t_amb_c", "throttle"]
    ds = ds[[v for v in names if v in ds]].load()  # one read of what the figures use, not one per panel
    paths = []
    for name, fn in (("power", fig_power), ("frequency", fig_frequency), ("bess", fig_bess), ("thermal", fig_thermal)):
        fig = fn(ds)
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
