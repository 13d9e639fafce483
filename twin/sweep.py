"""Sweeps: many cases of one base scenario (every N-1 contingency, a list of what-ifs) on dask.distributed.

Cases are independent and seeded by the base scenario, so a sweep gives the same numbers with one
worker or many. Each case runs the full engine but keeps only its KPIs (computed from the segments in
memory); the sweep's result is a KPI :class:`xarray.Dataset` with a ``case`` dimension, written as
netCDF and CSV, and a report ranking the worst cases first.

By default a :class:`dask.distributed.LocalCluster` is started (one single-threaded worker process per
core); pass ``scheduler="tcp://host:8786"`` to use an existing cluster (the workers need this package
and the same site files).
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import xarray as xr

from sites import load_site

from .scenario import ScenarioError, load_scenario, parse_time_s

__all__ = ["N1_KINDS", "expand_cases", "run_case", "sweep", "kpi_dataset", "rank_cases", "write_sweep_report"]

#: N-1 kinds → (site list, action).
N1_KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "turbines": (("turbines",), "trip"),
    "branches": (("lines", "transformers"), "trip"),
    "bess": (("bess",), "fail"),
    "chillers": (("chillers",), "fail"),
    "grid-ties": (("grid_ties",), "open"),
}


def expand_cases(site, base_doc: dict, n1: list[str] | None = None, at: str | float | None = None,
                 case_docs: list[dict] | None = None) -> list[tuple[str, dict]]:
    """(case name, scenario document) for the base case plus every N-1 contingency and listed case.

    ``at`` is the contingency time (default: 15:00 if within the horizon, else a tenth of it).
    """
    horizon = parse_time_s(base_doc["scenario"].get("horizon", "24:00:00"))
    if at is None:
        at = "15:00:00" if horizon > 15 * 3600 else horizon / 10.0
    if parse_time_s(at) >= horizon:
        raise ScenarioError("sweep", [("at", f"contingency time {at!r} is not before the horizon")])
    cases = [("base", base_doc)]
    for kind in n1 or []:
        if kind not in N1_KINDS:
            raise ScenarioError("sweep", [("n-1", f"unknown kind {kind!r}; expected one of {', '.join(N1_KINDS)}")])
        lists, action = N1_KINDS[kind]
        for lst in lists:
            for comp in getattr(site, lst):
                if lst == "turbines" and comp.state == "out":
                    continue
                doc = copy.deepcopy(base_doc)
                doc.setdefault("events", []).append({"at": at, "do": action, "target": comp.id})
                cases.append((f"{action} {comp.id}", doc))
    for i, extra in enumerate(case_docs or []):
        doc = copy.deepcopy(base_doc)
        doc.setdefault("events", []).extend(extra.get("events", []))
        for key in ("weather", "workload"):
            if key in extra:
                doc[key] = {**doc.get(key, {}), **extra[key]}
        cases.append((extra.get("name", f"case-{i + 1}"), doc))
    return cases


def run_case(site_name: str, name: str, doc: dict) -> dict[str, Any]:
    """Run one case in memory and return its KPIs (what a dask worker executes)."""
    from .engine import Engine
    from .kpi import KpiAccumulator
    from .scenario import resolve_events

    site = load_site(site_name)
    sc = load_scenario(doc, origin=f"case {name!r}")
    events = resolve_events(sc, site, origin=f"case {name!r}")
    t0 = time.perf_counter()
    eng = Engine(site, sc, events, reuse_outputs=True)  # each segment is reduced before the next
    kpi = KpiAccumulator(eng.plant, sc.scenario.step_s, t_ref_s=events[0].t_s if events else 0.0, site=site)
    for seg in eng.segments():
        kpi.update(seg)
    out = kpi.result()
    out["case"] = name
    out["wall_s"] = time.perf_counter() - t0
    return out


def kpi_dataset(results: list[dict[str, Any]], islands: list[str]) -> xr.Dataset:
    """KPIs of many cases as a Dataset with a ``case`` dimension (per-island KPIs gain ``island``)."""
    cases = [r["case"] for r in results]
    ds = xr.Dataset(coords={"case": cases, "island": islands})
    scalar = ["unserved_energy_mwh", "gpu_hours_lost", "loading_max_pct", "vm_min_pu", "vm_max_pu", "t_gpu_max_c",
              "t_coolant_max_c", "time_to_gpu_limit_s", "bess_soc_min", "turbine_starts", "fuel_mmbtu", "turbine_energy_mwh",
              "heat_rate_mmbtu_per_mwh", "co2_t", "nox_t", "pue"]
    units = {"unserved_energy_mwh": "MWh", "gpu_hours_lost": "h", "loading_max_pct": "percent", "vm_min_pu": "1",
             "vm_max_pu": "1", "t_gpu_max_c": "degC", "t_coolant_max_c": "degC", "time_to_gpu_limit_s": "s",
             "bess_soc_min": "1", "turbine_starts": "1", "fuel_mmbtu": "MMBtu", "turbine_energy_mwh": "MWh",
             "heat_rate_mmbtu_per_mwh": "MMBtu/MWh", "co2_t": "t", "nox_t": "t", "pue": "1",
             "f_min_hz": "Hz", "f_max_hz": "Hz", "rocof_max_hz_s": "Hz/s"}
    for k in scalar:
        ds[k] = ("case", np.array([np.nan if r.get(k) is None else float(r[k]) for r in results]), {"units": units[k]})
    for k in ("f_min_hz", "f_max_hz", "rocof_max_hz_s"):
        ds[k] = (("case", "island"), np.array([[np.nan if r[k].get(i) is None else r[k][i] for i in islands] for r in results]),
                 {"units": units[k]})
    return ds


def rank_cases(ds: xr.Dataset) -> list[str]:
    """Cases ordered worst first: unserved energy, then GPU-hours lost, then lowest frequency."""
    key = list(zip(-ds.unserved_energy_mwh.fillna(0).values, -ds.gpu_hours_lost.fillna(0).values,
                   ds.f_min_hz.min("island").fillna(60).values))
    order = sorted(range(ds.sizes["case"]), key=lambda i: key[i])
    return [str(ds.case.values[i]) for i in order]


def sweep(site_name: str, base: str | Path | dict, *, n1: list[str] | None = None, cases_file: str | Path | None = None,
          at: str | float | None = None, out_dir: str | Path, scheduler: str | None = None, n_workers: int | None = None,
          progress: Callable[[int, int], None] | None = None) -> tuple[xr.Dataset, list[str]]:
    """Run every case on dask.distributed; write ``kpis.nc``, ``kpis.csv``, ``ranking.json`` into ``out_dir``.

    Returns
    -------
    (Dataset, ranking)
        The KPI dataset (``case`` dimension) and the case names worst first.
    """
    from dask.distributed import Client, LocalCluster, as_completed

    base_sc = load_scenario(base)
    base_doc = base_sc.model_dump(mode="json")
    site = load_site(site_name)
    extra = None
    if cases_file is not None:
        from sites.inputs import read_toml

        extra = read_toml(Path(cases_file), ScenarioError).get("cases", [])
    cases = expand_cases(site, base_doc, n1, at, extra)
    for name, doc in cases:  # validate every case before any work is sent
        from .scenario import resolve_events

        resolve_events(load_scenario(doc, origin=f"case {name!r}"), site, origin=f"case {name!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        import os

        cluster = LocalCluster(n_workers=n_workers or max(os.cpu_count() or 1, 1), threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        futures = [client.submit(run_case, site.label, name, doc, key=f"case-{i}-{name}", pure=False) for i, (name, doc) in enumerate(cases)]
        results: dict[str, dict] = {}
        for done, fut in enumerate(as_completed(futures), start=1):
            r = fut.result()
            results[r["case"]] = r
            if progress:
                progress(done, len(futures))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    ordered = [results[name] for name, _ in cases]
    ds = kpi_dataset(ordered, [isl.name for isl in site.islands()])
    ds.attrs.update({"site": site.label, "base_scenario": base_sc.scenario.name, "cases": len(cases),
                     "n-1": ",".join(n1 or []), "contingency_at": str(at)})
    ds.to_netcdf(out_dir / "kpis.nc", engine="h5netcdf")
    ds.to_dataframe().reset_index().to_csv(out_dir / "kpis.csv", index=False)
    ranking = rank_cases(ds)
    (out_dir / "ranking.json").write_text(json.dumps(ranking, indent=2))
    return ds, ranking


def write_sweep_report(ds: xr.Dataset, ranking: list[str], out_dir: str | Path, top: int = 20) -> Path:
    """``report.md`` with the worst cases first and two figures (worst cases, frequency nadirs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    worst = ranking[:top]
    sel = ds.sel(case=worst)
    fig, axes = plt.subplots(1, 3, figsize=(15, max(3.0, 0.32 * len(worst) + 1)), sharey=True)
    y = np.arange(len(worst))[::-1]
    axes[0].barh(y, sel.unserved_energy_mwh.values, color="#c44e52")
    axes[0].set_xlabel("unserved energy [MWh]")
    axes[1].barh(y, sel.gpu_hours_lost.values, color="#8172b3")
    axes[1].set_xlabel("GPU-hours lost")
    axes[2].barh(y, 60.0 - sel.f_min_hz.min("island").values, color="#dd8452")
    axes[2].set_xlabel("frequency dip below 60 Hz [Hz]")
    axes[0].set_yticks(y, worst, fontsize=7)
    for a in axes:
        a.grid(alpha=0.3, axis="x")
    fig.suptitle(f"Worst {len(worst)} of {ds.sizes['case']} cases — {ds.attrs.get('base_scenario', '')} on {ds.attrs.get('site', '')}")
    fig.tight_layout()
    fig.savefig(fig_dir / "worst_cases.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 4))
    fmin = ds.f_min_hz.min("island").values
    ax.hist(fmin[np.isfinite(fmin)], bins=30, color="#4c72b0")
    ax.set_xlabel("minimum frequency over the run [Hz]")
    ax.set_ylabel("cases")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(fig_dir / "frequency_nadir.png", dpi=110)
    plt.close(fig)
    lines = [f"# Sweep: {ds.attrs.get('base_scenario', '')} on {ds.attrs.get('site', '')}", "",
             f"{ds.sizes['case']} cases (N-1: {ds.attrs.get('n-1') or 'none'}; contingency at {ds.attrs.get('contingency_at')}), worst first.", "",
             "| rank | case | unserved MWh | GPU·h lost | f min Hz | RoCoF Hz/s | max loading % | t GPU max °C |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r, case in enumerate(worst, start=1):
        row = ds.sel(case=case)
        lines.append(f"| {r} | {case} | {float(row.unserved_energy_mwh):.3f} | {float(row.gpu_hours_lost):,.0f} | "
                     f"{float(row.f_min_hz.min()):.3f} | {float(row.rocof_max_hz_s.max()):.3f} | "
                     f"{float(row.loading_max_pct):.1f} | {float(row.t_gpu_max_c):.1f} |")
    lines += ["", "![worst cases](figures/worst_cases.png)", "", "![frequency nadirs](figures/frequency_nadir.png)", "",
              "All KPIs: `kpis.nc` (xarray, `case` dimension) and `kpis.csv`.", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
