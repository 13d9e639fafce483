"""What-ifs (issue 5): directions that must hold, reference scenarios, sweeps, bad scenario files."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from typer.testing import CliRunner

from sites import load_site
from twin.cli import app
from sites.curves import chiller_curves
from twin.cooling import chiller_capacity_mw
from twin.engine import Engine
from twin.scenario import list_scenarios, load_scenario, resolve_events
from twin.sweep import expand_cases, rank_cases, run_case, sweep
from twin.turbines import derate_factor

PEAK = {"scenario": {"name": "peak", "site": "memphis", "start": "2026-07-15T14:30:00", "horizon": "00:30:00"},
        "weather": {"design_day": "memphis-0.4pct"}, "workload": {"seed": 3}}


def with_events(doc, *events):
    d = copy.deepcopy(doc)
    d["events"] = list(events)
    return d


def segments(doc):
    site = load_site(doc["scenario"]["site"])
    sc = load_scenario(doc)
    eng = Engine(site, sc, resolve_events(sc, site))
    segs = list(eng.segments())
    return eng, {k: np.concatenate([s[k] for s in segs]) for k in segs[0] if np.ndim(segs[0][k]) >= 1}


def test_tripping_more_units_never_lowers_unserved_energy():
    units = [f"southaven/titan350-{i:02d}" for i in range(1, 16)]
    results = []
    for n in (0, 4, 8, 11, 13):
        doc = with_events(PEAK, *[{"at": "00:05:00", "do": "trip", "target": u} for u in units[:n]])
        results.append(run_case("memphis", f"{n} trips", doc))
    unserved = [r["unserved_energy_mwh"] for r in results]
    assert all(b >= a - 1e-9 for a, b in zip(unserved, unserved[1:])), unserved
    # (the frequency nadir need not be monotonic: GPU power capping below 59.7 Hz changes the load)
    assert unserved[-1] > 0  # 13 of 15 units lost: the island must shed load


@pytest.mark.parametrize("curve", sorted(chiller_curves()))
def test_hotter_never_raises_turbine_or_chiller_capacity(curve):
    capft, _e, _p, r_chw, r_amb = chiller_curves()[curve]
    temps = np.arange(-10.0, 55.0, 0.5)
    for a in (0.006, 0.008, 0.010):
        k = np.array([derate_factor(t, a) for t in temps])
        assert np.all(np.diff(k) <= 0)
    for t_chw in (6.67, 10.0, 25.0):
        cap = np.array([chiller_capacity_mw(1.0, capft, t_chw, t, r_chw, r_amb) for t in temps])
        # capacity may rise slightly below 25 °C on the York curve (its valid range starts at 23.9 °C, clamped)
        assert np.all(np.diff(cap[temps >= 32.0]) <= 1e-12)


def test_hotter_day_runs_hotter_and_derates_turbines():
    cool = run_case("memphis", "design", copy.deepcopy(PEAK))
    hot_doc = copy.deepcopy(PEAK)
    hot_doc["weather"] = {"design_day": "memphis-july-1980"}
    hot = run_case("memphis", "heat wave", hot_doc)
    assert hot["t_gpu_max_c"] >= cool["t_gpu_max_c"]
    assert hot["pue"] > cool["pue"]  # chillers at lower COP


def test_bess_soc_falls_while_covering_a_deficit():
    eng, s = segments(with_events(PEAK, {"at": "00:05:00", "do": "open", "target": "colossus1/mlgw-63"}))
    b = eng.plant.names["bess"].index("colossus1/megapack")
    p, soc = s["p_bess_mw"][:, b], s["soc_bess"][:, b]
    covering = p[1:] > 1.0
    assert covering.sum() > 600
    assert np.all(np.diff(soc)[covering] < 0)
    assert s["f_hz"][:, 0].min() < 60.0  # colossus1 islanded after the tie opened


def test_chiller_failure_never_lowers_gpu_temperature():
    base = copy.deepcopy(PEAK)
    base["weather"] = {"design_day": "memphis-july-1980"}
    base["scenario"]["horizon"] = "01:00:00"
    _, ok = segments(base)
    _, failed = segments(with_events(base, {"at": "00:05:00", "do": "fail", "target": "colossus2/chiller-*", "count": 20}))
    assert np.all(failed["t_gpu_c"] >= ok["t_gpu_c"] - 1e-6)
    assert failed["t_gpu_c"].max() > ok["t_gpu_c"].max()


@pytest.mark.parametrize("name", [n for n in list_scenarios() if n != "baseline-day"])
def test_reference_scenarios_are_sensible(name):
    doc = load_scenario(name).model_dump(mode="json")
    doc["scenario"]["start"] = "2026-07-15T14:00:00"
    doc["scenario"]["horizon"] = "02:00:00"
    for e in doc["events"]:  # bring the event into the shortened window
        e["at"] = "00:30:00"
    k = run_case("memphis", name, doc)
    for isl, f in k["f_min_hz"].items():
        assert 57.0 <= f <= 60.0 + 1e-9, (isl, f)
    assert 1.0 < k["pue"] < 1.6
    assert k["vm_min_pu"] > 0.9 and k["loading_max_pct"] < 100.0
    assert k["fuel_mmbtu"] > 0 and k["co2_t"] > 0
    if name == "colossus1-tie-open":
        assert k["f_min_hz"]["colossus1"] < 59.9  # islanding shows up as a frequency dip at Colossus 1


def test_sweep_same_numbers_with_one_or_two_workers(tmp_path):
    base = copy.deepcopy(PEAK)
    base["scenario"]["horizon"] = "00:05:00"
    site = load_site("memphis")
    cases = expand_cases(site, base, ["turbines"], at="00:01:00")
    assert len(cases) == 1 + len([t for t in site.turbines if t.state != "out"])
    listfile = tmp_path / "cases.toml"
    listfile.write_text('[[cases]]\nname = "two trips"\n[[cases.events]]\nat = "00:01:00"\ndo = "trip"\n'
                        'target = "southaven/titan350-*"\ncount = 2\n')
    (tmp_path / "base.toml").write_text(_toml(base))
    kw = dict(n1=["bess", "grid-ties"], cases_file=listfile, at="00:01:00")
    ds1, rank1 = sweep("memphis", tmp_path / "base.toml", out_dir=tmp_path / "w1", n_workers=1, **kw)
    ds2, rank2 = sweep("memphis", tmp_path / "base.toml", out_dir=tmp_path / "w2", n_workers=2, **kw)
    assert list(ds1.case.values) == ["base", "fail colossus1/megapack", "fail colossus2/megapack", "fail southaven/megapack",
                                     "open colossus1/mlgw-63", "open colossus2/mlgw-service", "two trips"]
    for v in ds1.data_vars:
        np.testing.assert_array_equal(ds1[v].values, ds2[v].values)
    assert rank1 == rank2 == rank_cases(ds1)
    assert (tmp_path / "w1" / "kpis.nc").exists() and (tmp_path / "w1" / "kpis.csv").exists()


def _toml(doc) -> str:
    s = doc["scenario"]
    return (f'[scenario]\nname = "{s["name"]}"\nsite = "{s["site"]}"\nstart = "{s["start"]}"\nhorizon = "{s["horizon"]}"\n'
            f'[weather]\ndesign_day = "{doc["weather"]["design_day"]}"\n[workload]\nseed = {doc["workload"]["seed"]}\n')


BAD = [
    ("unknown target", 'at = "00:01:00"\ndo = "trip"\ntarget = "southaven/titan999"', "events[0].target", "matches no component"),
    ("bad time", 'at = "1:75:00"\ndo = "trip"\ntarget = "southaven/titan350-01"', "events[0].at", "below 60"),
    ("unknown action", 'at = "00:01:00"\ndo = "detonate"\ntarget = "southaven/titan350-01"', "events[0].do", "expected 'trip'"),
    ("count too large", 'at = "00:01:00"\ndo = "fail"\ntarget = "colossus2/chiller-*"\ncount = 500', "events[0].count", "matches only 119"),
    ("derate without value", 'at = "00:01:00"\ndo = "derate"\ntarget = "southaven/titan350-01"', "events[0]", "derate needs value"),
    ("action on wrong kind", 'at = "00:01:00"\ndo = "start"\ntarget = "colossus1/megapack"', "events[0].do", "cannot start bess"),
    ("after the horizon", 'at = "02:00:00"\ndo = "trip"\ntarget = "southaven/titan350-01"', "", "not before the horizon"),
    ("unqualified target", 'at = "00:01:00"\ndo = "trip"\ntarget = "titan350-01"', "events[0].target", "expected 'site/component-id'"),
    ("unknown field", 'at = "00:01:00"\ndo = "trip"\ntarget = "southaven/titan350-01"\nwhen = 3', "events[0].when", "unknown field"),
]


@pytest.mark.parametrize("case,event,path,words", BAD, ids=[b[0] for b in BAD])
def test_bad_scenario_file(tmp_path, case, event, path, words):
    f = tmp_path / "bad.toml"
    f.write_text('[scenario]\nname = "bad"\nsite = "memphis"\nhorizon = "01:00:00"\n\n[[events]]\n' + event + "\n")
    result = CliRunner().invoke(app, ["run", "memphis", "--scenario", str(f), "--out", str(tmp_path / "run"), "--no-plots"])
    out = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert str(f) in out and words in out, out
    if path:
        assert path in out
