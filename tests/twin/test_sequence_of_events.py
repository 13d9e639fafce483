"""The sequence of events: what a what-if causes, time-stamped to the sub-step, in order.

Colossus 1 loses its MLGW tie: its import-cap Megapack yard covers what the 12 SMT-130s cannot until
its state of charge reaches the floor, and only then does under-frequency load shedding act.
"""

from __future__ import annotations

import numpy as np
import pytest

from sites import load_site
from twin.engine import Engine
from twin.scenario import load_scenario, resolve_events


@pytest.fixture(scope="module")
def tie_open():
    site = load_site("colossus1")
    sc = load_scenario({"scenario": {"name": "c1-tie-open", "site": "colossus1", "start": "2026-07-15T00:00:00",
                                     "horizon": "16:00:00"},
                        "weather": {"design_day": "memphis-0.4pct"},
                        "events": [{"at": "01:00:00", "do": "open", "target": "colossus1/mlgw-63"}]})
    eng = Engine(site, sc, resolve_events(sc, site), reuse_outputs=False)
    segs = list(eng.segments())
    soc = np.concatenate([s["soc_bess"][:, 0] for s in segs])
    p_bess = np.concatenate([s["p_bess_mw"][:, 0] for s in segs])
    return eng, soc, p_bess


def test_megapack_supports_the_island_until_its_soc_floor(tie_open):
    """The opening itself is a 150 MW step on a small island: the first UFLS stages trip within a fraction
    of a second, before the yard has ramped (its 0.2 s response), and are restored once it carries the
    deficit. From then on the yard discharges until its state of charge reaches the floor, and load is
    shed for good only then."""
    eng, soc, p_bess = tie_open
    log = eng.event_log
    assert log[0]["source"] == "scenario" and log[0]["kind"] == "open" and log[0]["t_s"] == 3600.0
    transient = [e for e in log if e["kind"] == "ufls-trip" and e["t_s"] < 3601.0]
    assert transient and max(int(e["component"].split()[1]) for e in transient) <= 2
    restored = [e for e in log if e["kind"] == "ufls-restore" and e["t_s"] < 3600.0 + 3600.0]
    assert len(restored) == len(transient)  # both back within the hour
    yard = eng.site.bess[0]
    floor_band = yard.soc_min_frac + 0.05  # power derates to zero over the last 5 % of SoC
    at_floor = int(np.argmax(soc <= floor_band + 0.02))
    assert at_floor > 3600 + 3 * 3600  # hours of support
    support = p_bess[3660:at_floor]
    assert np.mean(support > 0.0) > 0.99 and support.mean() > 50.0  # it carries the deficit all along
    deep = [e for e in log if e["kind"] == "ufls-trip" and int(e["component"].split()[1]) >= 3]
    assert deep and min(e["t_s"] for e in deep) >= at_floor  # deeper shedding only with the yard near empty
    assert soc[-1] <= floor_band and soc.min() >= yard.soc_min_frac - 1e-6


def test_no_restore_cycling_at_the_battery_floor(tie_open):
    """Near its floor the yard can no longer hold a restored stage: restoration counts only the power a battery can
    hold for twin.dispatch.RESERVE_HOLD_S from the energy above its derate band, so no stage comes back only to trip
    again seconds later (it did every ~5 min before, for hours)."""
    eng, soc, _p = tie_open
    log = eng.event_log
    for e in log:
        if e["kind"] != "ufls-restore":
            continue
        again = [x for x in log if x["kind"] == "ufls-trip" and x["component"] == e["component"]
                 and e["t_s"] < x["t_s"] <= e["t_s"] + 60.0]
        assert not again, (e, again)
    yard = eng.site.bess[0]
    at_floor = int(np.argmax(soc <= yard.soc_min_frac + 0.05))
    assert sum(1 for e in log if e["kind"] == "ufls-restore" and e["t_s"] >= at_floor) <= 2


def test_events_are_ordered_and_stamped_to_the_sub_step(tie_open):
    """The log is in time order; relay trips carry the frequency they tripped at, at a sub-step time."""
    eng, _soc, _p = tie_open
    t = [e["t_s"] for e in eng.event_log]
    assert t == sorted(t)
    h = 1.0 / eng.n_sub
    for e in eng.event_log:
        if e["kind"] == "ufls-trip":
            assert e["unit"] == "Hz" and e["value"] < 59.3 + 1e-9  # below stage 1's set point
            assert abs(e["t_s"] / h - round(e["t_s"] / h)) < 1e-6  # on the 50 ms grid
            assert e["island"] == "colossus1" and e["component"].startswith("stage ")
