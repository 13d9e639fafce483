"""The topology processor: any line, transformer or grid-tie switching runs, splits and merges included.

A test site (tests/data/split_site.toml: two generating buses joined by a bus tie, a hall on each, a
feeder) is split and re-merged: every island balances every step, each part swings on its own
inertia (taken from the site file), a part without a source reports its load as unserved, and a
re-close outside the synchronisation window is refused and logged while one inside it merges at the
inertia-weighted frequency. Then the sweeps: every branch and grid tie of every reference site, and
random N-2 switching cases on ``memphis:full-build``, all complete.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from sites import list_sites, load_site
from twin.engine import Engine
from twin.frequency import F0_HZ
from twin.kpi import KpiAccumulator
from twin.plant import BE_ISLAND, TU_ISLAND
from twin.scenario import load_scenario, resolve_events
from twin.state import SI_DF
from twin.sweep import expand_cases, run_case, sample_cases
from twin.topology import SYNC_DF_HZ

PAIR = Path(__file__).parents[1] / "data" / "split_site.toml"
MINI = Path(__file__).parents[1] / "data" / "minimal_site.toml"
STEADY = {"seed": 3, "swing_frac": 0.0, "checkpoint_duration_s": 0.0}  # no workload swings: frequencies settle
#: H·S of one gt20 unit of the test site, from its file: H = 3 s on 20 MW / pf 0.9 [MW·s]
HS_UNIT = 3.0 * 20.0 / 0.9


def _engine(path, events, horizon, **kw):
    site = load_site(path)
    sc = load_scenario({"scenario": {"name": "topology", "site": str(path), "start": "2026-07-15T14:30:00",
                                     "horizon": horizon}, "weather": {"t_amb_c": 15.0}, "workload": STEADY,
                        "events": events})
    return Engine(site, sc, resolve_events(sc, site), **kw)


def _run(eng):
    """The segments, each with the island of every unit and battery while it ran."""
    out = []
    for seg in eng.segments():
        out.append((seg, eng.plant.turb[:, TU_ISLAND].astype(int), eng.plant.bess[:, BE_ISLAND].astype(int)))
    return out


def _island(eng, name):
    return eng.plant.names["island"].index(name)


SPLIT_MERGE = [{"at": 60, "do": "open", "target": "pair/bus-tie"}, {"at": 62, "do": "close", "target": "pair/bus-tie"},
               {"at": 240, "do": "close", "target": "pair/bus-tie"}]


@pytest.fixture(scope="module")
def split_merge():
    eng = _engine(PAIR, SPLIT_MERGE, 300, record_substeps=True)
    return eng, _run(eng)


def test_a_split_gives_each_part_a_slot_named_after_its_bus(split_merge):
    eng, _ = split_merge
    assert eng.plant.names["island"] == ["pair", "pair/west"]  # east keeps the site's slot: more inertia
    assert eng.provenance()["island_parts"] == {"pair/west": ["pair/west", "pair/hall-w-bus", "pair/feeder"]}
    kinds = [(e["t_s"], e["kind"]) for e in eng.event_log if e["source"] == "topology"]
    assert kinds == [(60.0, "island-split"), (62.0, "sync-refused"), (240.0, "island-merge")]


def test_every_island_balances_every_step_through_split_and_merge(split_merge):
    """Per island: units' electrical output (load flow) + batteries = served load + losses every step (≤ 0.01 MW),
    and mechanical + battery + kinetic power = load + losses every sub-step (the kernel)."""
    eng, segs = split_merge
    worst_lf = worst_sub = 0.0
    for seg, tu, be in segs:
        for i in range(eng.plant.n_island):
            gen = seg["p_turbine_mw"][:, tu == i].sum(axis=1) + seg["p_bess_mw"][:, be == i].sum(axis=1)
            worst_lf = max(worst_lf, float(np.abs(gen - seg["p_load_island_mw"][:, i] - seg["p_loss_mw"][:, i]).max()))
        gap = seg["p_mech_sub_mw"] + seg["p_bess_sub_mw"] + seg["p_kinetic_sub_mw"] - seg["p_load_sub_mw"]
        worst_sub = max(worst_sub, float(np.abs(gap).max()))
    assert worst_lf <= 0.01 and worst_sub <= 1e-6
    # while split, both islands carry load and units; merged, the west slot is empty and dark
    split = next(s for s, _, _ in segs if len(s["f_hz"]) and s["island_live"].all())
    assert (split["p_load_island_mw"] > 1.0).all() and (split["p_mech_mw"] > 1.0).all()
    merged = segs[-1][0]
    west = _island(eng, "pair/west")
    assert not merged["island_live"][west] and np.all(merged["p_load_island_mw"][:, west] == 0.0)
    assert np.all(segs[-1][1] == 0) and np.all(merged["p_unserved_mw"] == 0.0)


def test_each_part_swings_on_its_own_inertia(split_merge):
    """First sub-step after the split: RoCoF = f0·(P_gen − P_load)/(2·H·S) with each part's H·S from the site file
    (west: one unit, east: two; the battery has no virtual inertia)."""
    eng, segs = split_merge
    k = next(j for j, (s, _, _) in enumerate(segs) if s["island_live"].all())
    before, after = segs[k - 1][0], segs[k][0]
    h = 1.0 / eng.n_sub
    for name, hs in (("pair/west", HS_UNIT), ("pair", 2 * HS_UNIT)):
        i = _island(eng, name)
        f_prev = before["f_sub_hz"][-1, -1, 0]  # the island as one, just before the split
        rocof = (after["f_sub_hz"][0, 0, i] - f_prev) / h
        p_acc = after["p_mech_sub_mw"][0, 0, i] + after["p_bess_sub_mw"][0, 0, i] - after["p_load_sub_mw"][0, 0, i]
        assert abs(p_acc) > 0.5  # each part starts out of balance
        assert rocof == pytest.approx(F0_HZ * p_acc / (2.0 * hs), rel=1e-3)
    assert after["f_hz"][-1, _island(eng, "pair/west")] > F0_HZ > after["f_hz"][-1, _island(eng, "pair")]


def test_reclose_outside_the_window_is_refused_inside_it_merges():
    """Driven event by event: a close 2 s after the split is refused (logged with both frequencies, the tie stays
    open); 178 s later, with the islands within 0.1 Hz, it merges at their inertia-weighted frequency."""
    eng = _engine(PAIR, SPLIT_MERGE, 300)
    west, east = _island(eng, "pair/west"), _island(eng, "pair")
    for ev in eng.events:
        eng.advance(int(ev.t_s - eng.k))
        df = eng.s_isl[[west, east], SI_DF].copy()
        eng.apply_event(ev)
        if ev.t_s == 62:
            refused = eng.event_log[-1]
            assert refused["kind"] == "sync-refused" and refused["value"] == pytest.approx(abs(df[0] - df[1]), abs=1e-6)
            assert refused["value"] > SYNC_DF_HZ and "stays open" in refused["message"]
            assert eng.island_slots()["pair/west"] and eng.s_isl[west, SI_DF] == df[0]  # nothing moved
        if ev.t_s == 240:
            assert abs(df[0] - df[1]) <= SYNC_DF_HZ
            assert eng.event_log[-1]["kind"] == "island-merge"
            assert eng.s_isl[east, SI_DF] == pytest.approx((1 * df[0] + 2 * df[1]) / 3, abs=1e-12)  # 1 unit vs 2
            assert eng.island_slots()["pair/west"] == [] and len(eng.island_slots()["pair"]) == 5
    eng.advance(10)


def test_a_part_left_without_source_is_dark_and_its_load_unserved():
    """Cutting the feeder (2 MW) and the west hall off: their loads are unserved while cut off, the KPIs say how
    much, their islands report no frequency; re-closing the hall's cable brings it back."""
    events = [{"at": 30, "do": "trip", "target": "pair/cable-feeder"}, {"at": 30, "do": "trip", "target": "pair/cable-w"},
              {"at": 90, "do": "close", "target": "pair/cable-w"}]
    eng = _engine(PAIR, events, 120)
    site = eng.site
    kpi = KpiAccumulator(eng.plant, 1.0, t_ref_s=30.0, site=site)
    segs = []
    for seg, tu, be in _run(eng):
        kpi.update(seg)
        segs.append(seg)
    out = kpi.result(eng.event_log)
    feeder, hall = _island(eng, "pair/feeder"), _island(eng, "pair/hall-w-bus")
    p_un = np.concatenate([s["p_unserved_mw"] for s in segs])
    shed = np.concatenate([s["p_shed_mw"] for s in segs])[:, 0]
    p_it = np.concatenate([s["p_it_mw"] for s in segs])[:, 0]
    assert np.all(p_un[:30] == 0.0) and np.allclose(p_un[30:, feeder], 2.0)
    assert np.all(p_it[30:90] == 0.0) and np.allclose(p_un[30:90, hall], shed[30:90]) and shed[30:90].min() > 1.0
    assert np.all(p_it[90:] > 1.0) and np.all(p_un[90:, hall] == 0.0)  # re-energised
    expected = (2.0 * 90 + shed[30:90].sum()) / 3600.0
    assert out["unserved_energy_mwh"] == pytest.approx(expected, rel=1e-9)
    assert out["f_min_hz"]["pair/feeder"] is None and out["f_min_hz"]["pair/hall-w-bus"] is None
    kinds = [e["kind"] for e in eng.event_log if e["source"] == "topology"]
    assert kinds.count("de-energised") == 2 and kinds.count("re-energised") == 1


def test_a_grid_tie_closes_only_within_the_window():
    """The minimal site's unit cannot hold the island when its tie opens: closing the tie 1 s later (far off 60 Hz)
    is refused and logged, the island blacks out, and a later close re-energises it from the grid. Colossus 1 rides
    through its tie opening (UFLS, Megapack): a close is refused exactly while it is more than 0.1 Hz off, and one
    once the PMS has brought it back resynchronises it."""
    events = [{"at": 20, "do": "open", "target": "mini/utility"}, {"at": 21, "do": "close", "target": "mini/utility"},
              {"at": 60, "do": "close", "target": "mini/utility"}]
    eng = _engine(MINI, events, 80)
    f = np.concatenate([s["f_hz"] for s, _, _ in _run(eng)])[:, 0]
    topo = [e for e in eng.event_log if e["source"] == "topology"]
    assert [(e["t_s"], e["kind"]) for e in topo] == [(21.0, "sync-refused"), (60.0, "re-energised")]
    assert topo[0]["value"] == pytest.approx(F0_HZ - f[20], abs=1e-6) and topo[0]["value"] > SYNC_DF_HZ
    assert np.all(f[:20] == F0_HZ) and np.all(f[21:60] < 57.5) and np.all(f[60:] == F0_HZ)
    # Colossus 1: each close is refused exactly when the island is more than 0.1 Hz off; by 120 s it is back in
    events = [{"at": 20, "do": "open", "target": "colossus1/mlgw-63"}, {"at": 21, "do": "close", "target": "colossus1/mlgw-63"},
              {"at": 120, "do": "close", "target": "colossus1/mlgw-63"}]
    eng = _engine("colossus1", events, 130)
    f = np.concatenate([s["f_hz"] for s, _, _ in _run(eng)])[:, 0]
    refused = {e["t_s"] for e in eng.event_log if e["kind"] == "sync-refused"}
    assert (21.0 in refused) == (abs(f[20] - F0_HZ) > SYNC_DF_HZ) and f[20] != F0_HZ
    closed_at = 120 if 21.0 in refused else 21
    assert 120.0 not in refused and abs(f[closed_at - 1] - F0_HZ) <= SYNC_DF_HZ and np.all(f[closed_at:] == F0_HZ)
    assert np.all(f[21:closed_at] != F0_HZ) and eng.state()["islands"]["colossus1"]["grid_tied"]


def test_a_topology_change_costs_at_most_one_compilation_and_is_cached():
    events = [{"at": 10, "do": "open", "target": "pair/bus-tie"}]
    counts = []
    for _ in range(2):  # the second engine finds the split configuration in the cache
        eng = _engine(PAIR, events, 20)
        eng.advance(10)
        before = eng._net_cache.misses
        eng.apply_event(eng.events[0])
        eng.advance(10)
        counts.append(eng._net_cache.misses - before)
    assert counts[0] <= 1 and counts[1] == 0


def test_unplanned_switching_is_refused_with_a_message_or_planned_first():
    """An engine built without a switching has no slot for the island it would leave: applying it anyway is a clear
    ScenarioError; plan_events first (as a what-if does) widens the islands and it runs."""
    from twin.scenario import Event, ScenarioError

    eng = _engine(PAIR, [], 20)
    eng.advance(5)
    ev = Event(5.0, "trip", "lines", "pair/cable-feeder")
    with pytest.raises(ScenarioError, match="has no slot"):
        eng.apply_event(ev)
    eng.plan_events([ev])
    eng.apply_event(ev)
    seg = eng.advance(5)
    assert eng.plant.names["island"] == ["pair", "pair/feeder"] and seg["p_unserved_mw"].shape == (5, 2)
    assert np.allclose(seg["p_unserved_mw"][:, 1], 2.0)


def test_twin_run_on_a_site_without_halls_with_a_split(tmp_path):
    """``twin run southaven`` (no halls) with a step-up transformer opened: the run, its figures and its report, no
    traceback; the unit bus cut off is its own island, dark (its units were on standby)."""
    from typer.testing import CliRunner

    from twin.cli import app

    sc = tmp_path / "gsu.toml"
    sc.write_text('[scenario]\nname = "gsu"\nsite = "southaven"\nstart = "2026-07-15T14:30:00"\nhorizon = 60\n'
                  '[weather]\ndesign_day = "memphis-0.4pct"\n[[events]]\nat = 30\ndo = "trip"\ntarget = "southaven/gsu-t5"\n')
    out = CliRunner().invoke(app, ["run", "southaven", "-s", str(sc), "-o", str(tmp_path / "run")])
    assert out.exit_code == 0, out.output
    assert "Traceback" not in out.output and (tmp_path / "run" / "report.md").exists()
    assert sorted(p.name for p in (tmp_path / "run" / "figures").glob("*.png")) == ["bess.png", "frequency.png", "power.png"]
    events = (tmp_path / "run" / "events.csv").read_text()
    assert "island-split,southaven/gen-t5" in events and "de-energised" in events


# ---------------------------------------------------------------------------------------------------- sweeps
BASE = {"scenario": {"name": "n-1", "start": "2026-07-15T14:30:00", "horizon": 60},
        "weather": {"design_day": "memphis-0.4pct"}, "workload": {"seed": 3}}
DETAILED = [n for n in list_sites() if n.endswith(":detailed")]


def _sweep_in_process(name, cases):
    """Each case as a sweep worker runs it (twin.sweep.run_case); the failures with their reasons."""
    return {c: r["error"] for c, d in cases if (r := run_case(name, c, d))["status"] != "done"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in DETAILED else n for n in list_sites()])
def test_n1_of_every_branch_and_grid_tie_completes(name):
    """Every line, transformer and grid tie of every reference site out at 30 s of a 60 s run, each case as a sweep
    worker runs it (the detailed variants, ≈ 250 cases each, take about 15 s each)."""
    doc = copy.deepcopy(BASE)
    doc["scenario"]["site"] = name
    cases = expand_cases(load_site(name), doc, ["branches", "grid-ties"], at=30)[1:]
    assert len(cases) == sum(len(getattr(load_site(name), k)) for k in ("lines", "transformers", "grid_ties"))
    assert _sweep_in_process(name, cases) == {}


def test_200_random_n2_switching_cases_complete():
    """200 seeded random pairs of branch and grid-tie outages on memphis:full-build (about 10 s)."""
    site = load_site("memphis:full-build")
    doc = copy.deepcopy(BASE)
    doc["scenario"]["site"] = "memphis:full-build"
    cases = sample_cases(site, doc, ["branches", "grid-ties"], 2, 200, seed=11, at=30)
    assert len({c for c, _ in cases}) == 200 and all(c.count(" + ") == 1 for c, _ in cases)
    assert _sweep_in_process("memphis:full-build", cases) == {}
