"""Reports an engineer can forward: a Markdown summary with the KPI table and the run's figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["kpi_rows", "write_run_report", "read_events", "EVENTS_FILE", "MAX_REPORT_EVENTS"]

#: The run's sequence of events, written by :func:`twin.runner.run` beside the store.
EVENTS_FILE = "events.csv"
#: Events listed in report.md (all are in events.csv).
MAX_REPORT_EVENTS = 60


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def kpi_rows(kpis: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(KPI, value, unit) rows; per-island KPIs become one row per island."""
    rows: list[tuple[str, str, str]] = []
    spec = [
        ("unserved_energy_mwh", "unserved energy", "MWh", 3),
        ("gpu_hours_lost", "GPU-hours lost", "GPU·h", 0),
        ("f_min_hz", "minimum frequency", "Hz", 3),
        ("f_max_hz", "maximum frequency", "Hz", 3),
        ("rocof_max_hz_s", "max RoCoF (100 ms)", "Hz/s", 3),
        ("rocof_500ms_max_hz_s", "max RoCoF (500 ms)", "Hz/s", 3),
        ("loading_max_pct", "max branch loading", "%", 1),
        ("vm_min_pu", "min voltage", "pu", 4),
        ("vm_max_pu", "max voltage", "pu", 4),
        ("t_gpu_max_c", "max GPU temperature", "°C", 1),
        ("t_coolant_max_c", "max coolant temperature", "°C", 1),
        ("time_to_gpu_limit_s", "time to GPU limit", "s", 0),
        ("bess_soc_min", "min BESS SoC", "-", 3),
        ("turbine_starts", "turbine starts", "-", 0),
        ("relay_trips", "relay trips (UFLS, RoCoF, ride-through, chillers, UPS transfers, blackouts)", "-", 0),
        ("cascade_depth", "relay trips after the first event", "-", 0),
        ("tie_limit_violation_mwh", "import above tie limits", "MWh", 3),
        ("fuel_mmbtu", "fuel (HHV)", "MMBtu", 0),
        ("turbine_energy_mwh", "turbine energy", "MWh", 0),
        ("heat_rate_mmbtu_per_mwh", "turbine heat rate (HHV)", "MMBtu/MWh", 3),
        ("co2_t", "CO2", "t", 1),
        ("nox_t", "NOx", "t", 3),
        ("pue", "PUE", "-", 3),
    ]
    for key, label, unit, digits in spec:
        v = kpis.get(key)
        if isinstance(v, dict):
            for isl, x in v.items():
                rows.append((f"{label} ({isl})", _fmt(x, digits), unit))
        else:
            rows.append((label, _fmt(v, digits), unit))
    for p in kpis.get("permits", []):
        share = p.get("nox_share_of_prorated_limit")
        if share is not None:
            rows.append((f"NOx vs permit {p['permit']} (pro rata)", f"{100 * share:.1f}", "%"))
    return rows


def write_run_report(run_dir: str | Path, kpis: dict[str, Any], figures: list[Path], title: str, scenario_doc: dict) -> Path:
    """Write ``report.md`` into the run directory, linking the figures."""
    run_dir = Path(run_dir)
    lines = [f"# {title}", ""]
    desc = scenario_doc.get("scenario", {}).get("description")
    if desc:
        lines += [desc, ""]
    events = scenario_doc.get("events") or []
    if events:
        lines += ["Events:", ""] + [f"- {e['at']}: {e['do']} `{e['target']}`" + (f" × {e['count']}" if e.get("count") else "")
                                     + (f" (value {e['value']})" if e.get("value") is not None else "") for e in events] + [""]
    lines += ["| KPI | value | unit |", "|---|---:|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in kpi_rows(kpis)]
    lines += [""]
    seq = read_events(run_dir)
    if seq:
        auto = [e for e in seq if e["source"] != "scenario"]
        lines += [f"## Sequence of events ({len(seq)}: {len(seq) - len(auto)} from the scenario, {len(auto)} that followed)",
                  "", "| time | source | what |", "|---|---|---|"]
        lines += [f"| {_clock(float(e['t_s']))} | {e['source']} | {e['message']} |" for e in seq[:MAX_REPORT_EVENTS]]
        if len(seq) > MAX_REPORT_EVENTS:
            lines += [f"| … | | {len(seq) - MAX_REPORT_EVENTS} more in `{EVENTS_FILE}` |"]
        lines += [""]
    for f in figures:
        lines += [f"![{f.stem}]({Path(f).relative_to(run_dir) if Path(f).is_relative_to(run_dir) else f})", ""]
    lines += ["KPIs as JSON: `kpis.json`; time series: `results.zarr` (xarray.open_zarr).", ""]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines))
    (run_dir / "kpis.json").write_text(json.dumps(kpis, indent=2, default=str))
    return path


def _clock(t_s: float) -> str:
    """Seconds from the start as ``HH:MM:SS.mmm``."""
    h, rem = divmod(t_s, 3600.0)
    m, s = divmod(rem, 60.0)
    return f"{int(h):02d}:{int(m):02d}:{s:06.3f}"


def read_events(run_dir: str | Path) -> list[dict[str, str]]:
    """The run's sequence of events (``events.csv``), oldest first; empty when the run wrote none."""
    import csv

    path = Path(run_dir) / EVENTS_FILE
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
