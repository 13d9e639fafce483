"""Dispatch that holds its limits (issue 11): commitment rules from the site file and the grid-tie import limit.

The small sites here are written so that every number can be checked by hand: ideal-governor units without
derating, a hall of 1,000 racks (20 kW idle, 80 kW peak), short nearly lossless cables, and the chillers on an
island of their own behind a second tie, so that the island under test carries only its hall.
"""

from __future__ import annotations

import numpy as np
import pytest

from sites import load_site
from twin.dispatch import COMMIT_DWELL_S, TIE_MARGIN_FRAC, TIE_SHED_BLOCK
from twin.engine import Engine
from twin.kpi import KpiAccumulator
from twin.protection import CAP_MIN
from twin.scenario import load_scenario, resolve_events

SITE = """
[site]
id = "lab"
name = "Dispatch test site"

[weather]
design_t_amb_c = 30.0
assumption = "test"

[turbine_models.ideal]
id = "ideal"
p_iso_mw = 20.0
derate_per_c = 0.0
p_min_frac = 0.25
ramp_frac_per_min = 30.0
droop_pct = 5.0
governor = "ideal"
start_time_s = 120.0
heat_rate_btu_per_kwh = 9000.0
heat_rate_basis = "hhv"
heat_rate_rise_per_c = 0.0025
h_s = 5.0
co2_kg_per_mmbtu = 53.06
nox_kg_per_mmbtu = 0.01
nox_below_min_kg_per_mmbtu = 0.03
vn_kv = 13.8
pf = 1.0
assumption = "test: 20 MW ideal-governor units, no derating, 25 % minimum load, 2-min start"

[[buses]]
id = "gen"
vn_kv = 13.8
kind = "gen"
assumption = "test"

[[buses]]
id = "hall-bus"
vn_kv = 13.8
assumption = "test"

[[buses]]
id = "aux"
vn_kv = 13.8
assumption = "test"

[[lines]]
id = "feeder"
from_bus = "gen"
to_bus = "hall-bus"
length_km = 0.05
r_ohm_per_km = 0.001
x_ohm_per_km = 0.01
max_i_ka = 20.0
parallel = 4
assumption = "test: short, nearly lossless"

[[turbines]]
id = "gt"
model = "ideal"
bus = "gen"
assumption = "test"
@TURBINE@

[[halls]]
id = "hall"
bus = "hall-bus"
gpu_type = "test"
gpu_count = 64000
gpus_per_rack = 64
rack_p_peak_kw = 80.0
rack_p_idle_kw = 20.0
gpu_tdp_kw = 0.9
liquid_frac = 0.8
pf = 1.0
cooling_plant = "plant"
assumption = "test: 1,000 racks, 20 MW idle, 80 MW peak"

[[cooling_plants]]
id = "plant"
t_chw_c = 25.0
cdu_count = 60
cdu_q_mw = 1.5
tcs_volume_m3 = 100.0
fws_volume_m3 = 3000.0
pump_frac = 0.0
fan_frac = 0.0
assumption = "test"

[[chillers]]
id = "ch"
plant = "plant"
count = 60
bus = "aux"
q_ref_mw = 2.0
cop_ref = 3.1
pf = 1.0
assumption = "test: on an island of their own"

[[grid_ties]]
id = "aux-tie"
bus = "aux"
import_limit_mw = 100.0
assumption = "test"
@TIE@
"""

TIE = """
[[grid_ties]]
id = "utility"
bus = "gen"
import_limit_mw = {limit}
limit_action = "{action}"
limit_delay_s = {delay}
assumption = "test"
"""


FIXED = 'count = 4\nonline_count = 3\ncommitment = "fixed"'


def engine(tmp_path, turbine: str = FIXED, tie: str = "", events=None, horizon=1800,
           control=None) -> Engine:
    path = tmp_path / "lab.toml"
    path.write_text(SITE.replace("@TURBINE@", turbine).replace("@TIE@", tie))
    site = load_site(path)
    sc = load_scenario({
        "scenario": {"name": "lab", "site": str(path), "horizon": horizon},
        "weather": {"t_amb_c": 30.0},
        "workload": {"swing_frac": 0.0, "checkpoint_duration_s": 0.0, "gpu_power_frac": 0.8},
        "control": control or {},
        "events": events or [],
    })
    return Engine(site, sc, resolve_events(sc, site))


def run(eng: Engine) -> dict[str, np.ndarray]:
    segs = [{k: np.array(v, copy=True) for k, v in s.items() if k not in ("events", "n_events")} for s in eng.segments()]
    return {k: np.concatenate([s[k] for s in segs]) for k in segs[0]}


def kinds(eng: Engine, kind: str) -> list[dict]:
    return [e for e in eng.event_log if e["kind"] == kind]


# ---------------------------------------------------------------- commitment
# Islanded (no utility tie): the hall's 68.5 MW (20 MW idle + 0.8 of the 60 MW dynamic range, less the
# non-GPU share's rounding) on 20 MW units.

def online_at_end(eng: Engine) -> int:
    return sum(1 for v in eng.state()["turbines"].values() if v["status"] == "online")


def test_reserve_rule_starts_standby_units_online_after_their_start_time(tmp_path):
    """4 of 6 units online (80 MW) for ~68.5 MW: reserve 11.5 MW < the largest unit (20 MW), so the PMS starts one
    unit at once; it is online 120 s (its start time) later, and with 100 MW online the reserve (31.5 MW) suffices."""
    eng = engine(tmp_path, 'count = 6\nonline_count = 4\ncommitment = "reserve"', horizon=900)
    r = run(eng)
    load = r["p_load_island_mw"][5, 0]
    assert 60.0 < load < 80.0 - 1.0  # short of reserve with 4 units, enough with 5
    starts, online = kinds(eng, "unit-start"), kinds(eng, "unit-online")
    assert [e["component"] for e in starts] == ["lab/gt-05"] and starts[0]["t_s"] == 0.0
    assert [e["t_s"] for e in online] == [120.0]
    assert online_at_end(eng) == 5


def test_reserve_rule_with_a_stated_reserve_and_margin(tmp_path):
    """reserve_mw = 30 with a 20 % margin asks for 36 MW: 5 units leave 31.5 MW, so a second start follows once the
    first unit is online (one start at a time): starts at 0 s and 120 s, online at 120 s and 240 s."""
    eng = engine(tmp_path, 'count = 6\nonline_count = 4\ncommitment = "reserve"\nreserve_mw = 30.0\n'
                           'reserve_margin_frac = 0.2', horizon=900)
    run(eng)
    assert [e["t_s"] for e in kinds(eng, "unit-start")] == [0.0, 120.0]
    assert [e["t_s"] for e in kinds(eng, "unit-online")] == [120.0, 240.0]
    assert online_at_end(eng) == 6


def test_fixed_rule_holds_the_count_and_replaces_a_tripped_unit(tmp_path):
    """'fixed' starts nothing for reserve (4 online, 11.5 MW reserve); when a unit trips at 300 s a standby unit
    replaces it, online 120 s later."""
    eng = engine(tmp_path, 'count = 6\nonline_count = 4\ncommitment = "fixed"', horizon=900,
                 events=[{"at": 300, "do": "trip", "target": "lab/gt-01"}], control={"ufls": False})
    run(eng)
    assert [(e["component"], e["t_s"]) for e in kinds(eng, "unit-start")] == [("lab/gt-05", 300.0)]
    assert [e["t_s"] for e in kinds(eng, "unit-online")] == [420.0]
    assert online_at_end(eng) == 4 and not kinds(eng, "unit-stop")


def test_reserve_rule_stops_surplus_units_and_honours_minimum_load(tmp_path):
    """At 10 % GPU power the hall draws ~26 MW: 6 online units would run at ~4.4 MW each, under their 5 MW (25 %)
    minimum load. After the 300 s dwell the PMS stops one (reserve left 120 − 20 − 26 ≥ 20 + 50 % of 20); five then
    carry ≥ 5 MW each and stay."""
    path = tmp_path / "lab.toml"
    path.write_text(SITE.replace("@TURBINE@", 'count = 6\ncommitment = "reserve"').replace("@TIE@", ""))
    site = load_site(path)
    sc = load_scenario({"scenario": {"name": "lab", "site": str(path), "horizon": 1500}, "weather": {"t_amb_c": 30.0},
                        "workload": {"swing_frac": 0.0, "checkpoint_duration_s": 0.0, "gpu_power_frac": 0.1}})
    eng = Engine(site, sc, resolve_events(sc, site))
    r = run(eng)
    load = r["p_load_island_mw"][5, 0]
    assert 6 * 4.0 < load < 6 * 5.0 - 0.5 and load > 5 * 5.0
    stops = kinds(eng, "unit-stop")
    assert len(stops) == 1 and abs(stops[0]["t_s"] - COMMIT_DWELL_S) <= 2.0
    assert online_at_end(eng) == 5
    tail = slice(-300, None)
    on = r["turbine_status"][tail] == 1
    assert np.all(r["p_mech_mw"][tail][on] >= 5.0 - 0.05)


def test_reserve_rule_on_a_grid_tied_island_counts_the_tie(tmp_path):
    """Tied, limit 40 MW (report): 2 units online give 40 + 40 − 68.5 = 11.5 MW of reserve < 20 MW: one start."""
    eng = engine(tmp_path, 'count = 6\nonline_count = 2\ncommitment = "reserve"', horizon=600,
                 tie=TIE.format(limit=40.0, action="report", delay=0.0))
    run(eng)
    assert [e["t_s"] for e in kinds(eng, "unit-start")] == [0.0]
    assert [e["t_s"] for e in kinds(eng, "unit-online")] == [120.0]


# ---------------------------------------------------------------- grid-tie limit
# Tied, limit 40 MW: three units carry 68.5 − 39.8 MW until two of them trip at 600 s (no replacement:
# auto_start off); then one 20 MW unit is left and the import would be 48.5 MW, 8.5 MW above the limit.
LIMIT, T_EV = 40.0, 600.0
TRIPS = [{"at": T_EV, "do": "trip", "target": "lab/gt-01"}, {"at": T_EV, "do": "trip", "target": "lab/gt-02"}]


def tie_run(tmp_path, action: str, delay: float, horizon=1500):
    eng = engine(tmp_path, tie=TIE.format(limit=LIMIT, action=action, delay=delay), events=TRIPS, horizon=horizon,
                 control={"auto_start": False})
    g = eng.plant.names["grid_tie"].index("lab/utility")
    kpi = KpiAccumulator(eng.plant, eng.step_s, site=eng.site)
    segs = []
    for s in eng.segments():
        kpi.update(s)
        segs.append({k: np.array(v, copy=True) for k, v in s.items() if k not in ("events", "n_events")})
    r = {k: np.concatenate([s[k] for s in segs]) for k in segs[0]}
    return eng, r, r["p_grid_mw"][:, g], kpi.result(eng.event_log), g


def test_report_counts_every_second_above_the_limit(tmp_path):
    """'report' does nothing but count: 900 s at 68.5 − 20 = 48.5 MW, i.e. 900 s and 900·8.5/3600 MWh over."""
    eng, r, imp, k, g = tie_run(tmp_path, "report", 0.0)
    it = r["p_it_mw"][T_EV.__int__() + 5, 0]
    assert np.all(imp[:600] <= LIMIT)
    over = it - 20.0 - LIMIT
    assert over > 5.0 and np.allclose(imp[601:] - LIMIT, over, atol=0.01)
    assert k["tie_limit_violation_s"]["lab/utility"] == 900.0
    assert k["tie_limit_violation_mwh"] == pytest.approx(900 * over / 3600, rel=1e-3)
    ex = kinds(eng, "tie-limit-exceeded")
    assert [e["t_s"] for e in ex] == [T_EV] and not kinds(eng, "tie-limit-cleared")


def test_curtail_holds_the_import_after_the_delay(tmp_path):
    """'curtail', 30 s: 30 s above (reported), then GPU power is capped so that the import is 40·(1 − 0.5 %) MW while
    the IT keeps its idle power and at least CAP_MIN of its dynamic power."""
    eng, r, imp, k, g = tie_run(tmp_path, "curtail", 30.0)
    assert np.all(imp[600:630] > LIMIT + 5.0)
    assert np.all(imp[630:] <= LIMIT + 0.01) and np.allclose(imp[640:], LIMIT * (1 - TIE_MARGIN_FRAC), atol=0.05)
    assert k["tie_limit_violation_s"]["lab/utility"] == 30.0
    it = r["p_it_mw"][:, 0]
    assert np.allclose(it[640:], LIMIT * (1 - TIE_MARGIN_FRAC) + 20.0, atol=0.1)  # the one unit at 20 MW, plus the tie
    assert it[700] - 20.0 >= CAP_MIN * (it[500] - 20.0)  # idle 20 MW; dynamic cut by less than 1 − CAP_MIN
    assert r["throttle"][700, 0] < 0.9 and r["p_shed_mw"][700:].max() == 0.0  # capped, not shed
    cur = kinds(eng, "tie-curtail")
    assert cur[0]["t_s"] == 630.0 and cur[0]["value"] == pytest.approx(imp[629] - LIMIT * (1 - TIE_MARGIN_FRAC), abs=0.05)
    assert [e["t_s"] for e in kinds(eng, "tie-limit-exceeded")] == [T_EV]
    assert kinds(eng, "tie-limit-cleared")[0]["value"] == 30.0


def test_shed_sheds_blocks_while_above(tmp_path):
    """'shed', 20 s: from 620 s, ceil((48.5 − 39.8)/(5 % of 68.5)) = 3 blocks (15 % of IT) are shed; the PMS then
    sees the island's load without them (as after a UFLS stage) and its unit carries 0.85·68.5 − 39.8 MW, the
    import 39.8 MW; the shed IT counts as unserved, and comes back only with 3.4 MW of reserve (the unit has 1.6)."""
    eng, r, imp, k, g = tie_run(tmp_path, "shed", 20.0)
    demand = r["p_it_mw"][500, 0]
    n = int(np.ceil((demand - 20.0 - LIMIT * (1 - TIE_MARGIN_FRAC)) / (TIE_SHED_BLOCK * demand)))
    assert n == 3
    assert np.all(imp[600:620] > LIMIT + 5.0) and np.all(imp[620:] <= LIMIT + 0.01)
    assert np.allclose(imp[640:], LIMIT * (1 - TIE_MARGIN_FRAC), atol=0.05)
    assert np.allclose(r["p_mech_mw"][640:, 2], (1 - n * TIE_SHED_BLOCK) * demand - LIMIT * (1 - TIE_MARGIN_FRAC), atol=0.05)
    assert not kinds(eng, "tie-shed-restore")
    assert np.allclose(r["p_shed_mw"][630:, 0], n * TIE_SHED_BLOCK * demand, atol=0.05)
    sh = kinds(eng, "tie-shed")
    assert sh[0]["t_s"] == 620.0 and sum(e["value"] for e in sh) == pytest.approx(n * TIE_SHED_BLOCK * demand, abs=0.05)
    assert k["tie_limit_violation_s"]["lab/utility"] == 20.0


def test_trip_opens_the_tie_at_exceed_time_plus_delay(tmp_path):
    """'trip', 45 s: the import exceeds the limit from 600 s, so the tie opens at 645 s; the island then runs on its
    one unit (and sheds/blacks out: 20 MW for 68.5 MW), with no import."""
    eng, r, imp, k, g = tie_run(tmp_path, "trip", 45.0, horizon=900)
    trip = kinds(eng, "tie-trip")
    assert [(e["component"], e["t_s"], e["source"]) for e in trip] == [("lab/utility", 645.0, "protection")]
    assert np.all(imp[600:645] > LIMIT) and np.all(imp[645:] == 0.0)
    assert eng.state()["grid_ties"]["lab/utility"]["closed"] is False
    assert eng.state()["islands"]["lab"]["grid_tied"] is False
    assert r["f_min_hz"][646:, 0].min() < 59.3  # islanded: the frequency moves
    assert k["tie_limit_violation_s"]["lab/utility"] == 45.0


# ---------------------------------------------------------------- the heat-wave day at Colossus 1
@pytest.fixture(scope="module")
def heatwave_c1():
    """Colossus 1 on the July-1980 heat-wave afternoon (42.2 °C), its Megapack failing at 12:30: the 12 SMT-130s
    (derated to ~155 MW) and the 150 MW firm MLGW import cannot carry ~320 MW. Run once as the site file says
    (curtail after 10 s) and once with the tie set to report only."""
    from twin.plant import GT_ACTION

    site = load_site("colossus1")
    sc = load_scenario({"scenario": {"name": "c1-heatwave", "site": "colossus1", "start": "2026-07-13T12:00:00",
                                     "horizon": "04:00:00"},
                        "weather": {"design_day": "memphis-july-1980"}, "workload": {"seed": 1},
                        "events": [{"at": "00:30:00", "do": "fail", "target": "colossus1/megapack"}]})
    out = {}
    for mode in ("curtail", "report"):
        eng = Engine(site, sc, resolve_events(sc, site))
        if mode == "report":
            eng.par.grid[:, GT_ACTION] = 0.0
        kpi = KpiAccumulator(eng.plant, eng.step_s, site=site)
        pg, thr = [], []
        for s in eng.segments():
            kpi.update(s)
            pg.append(s["p_grid_mw"][:, 0].copy())
            thr.append(s["throttle"].copy())
        out[mode] = (eng, np.concatenate(pg), np.concatenate(thr), kpi.result(eng.event_log))
    return out


def episodes(eng: Engine, n: int) -> np.ndarray:
    """Seconds inside a logged violation (from 'tie-limit-exceeded' to 'tie-limit-cleared' or the end)."""
    inside = np.zeros(n, bool)
    start = None
    for e in eng.event_log:
        if e["kind"] == "tie-limit-exceeded":
            start = int(e["t_s"])
        elif e["kind"] == "tie-limit-cleared" and start is not None:
            inside[start:int(e["t_s"])] = True
            start = None
    if start is not None:
        inside[start:] = True
    return inside


def test_heatwave_every_second_above_the_firm_limit_is_reported(heatwave_c1):
    """Reported only: every second the load flow puts the MLGW import above 150 MW is in the KPI (seconds and MWh,
    summed here from the import itself) and inside a violation in the sequence of events."""
    eng, pg, _thr, k = heatwave_c1["report"]
    over = pg - 150.0
    above = over > 1e-3
    assert above.sum() > 3600  # hours above the firm limit once the yard is gone
    assert k["tie_limit_violation_s"]["colossus1/mlgw-63"] == float(above.sum())
    assert k["tie_limit_violation_mwh"] == pytest.approx(over[above].sum() / 3600.0, rel=1e-9)
    assert k["tie_limit_violation_mwh"] > 20.0
    assert np.all(episodes(eng, len(pg))[above])
    assert np.all(pg[:1800] <= 150.0 + 1e-3)  # the yard held the import under the limit before it failed


def test_heatwave_curtailment_holds_the_limit_until_the_gpu_cap_floor(heatwave_c1):
    """As the site file says (curtail after 10 s): ten seconds into each violation the GPU cap takes over, and any
    second still above the limit is one where the cap is at its floor (CAP_MIN of the dynamic power) — and is still
    reported. The MWh above the limit fall well below the report-only run's."""
    eng, pg, thr, k = heatwave_c1["curtail"]
    _e, _pg, _t, k_report = heatwave_c1["report"]
    above = pg > 150.0 + 1e-3
    assert np.all(episodes(eng, len(pg))[above])
    starts = [int(e["t_s"]) for e in eng.event_log if e["kind"] == "tie-limit-exceeded"]
    grace = np.zeros(len(pg), bool)
    for t in starts:
        grace[t:t + 10] = True  # the delay
    late = above & ~grace
    assert np.all(thr[late].max(axis=1) <= CAP_MIN + 1e-6)
    assert k["tie_limit_violation_s"]["colossus1/mlgw-63"] == float(above.sum())
    assert k["tie_limit_violation_mwh"] < 0.25 * k_report["tie_limit_violation_mwh"]
    assert kinds(eng, "tie-curtail")[0]["t_s"] == starts[0] + 10.0
    assert k["gpu_hours_lost"] > 0.0 and k["unserved_energy_mwh"] == 0.0
