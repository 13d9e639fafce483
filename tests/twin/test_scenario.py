"""Scenario documents and files: validation with field paths, events resolved against a site."""

from __future__ import annotations

import numpy as np
import pytest

from sites import load_site
from twin.scenario import ScenarioError, load_scenario, parse_time_s, resolve_events
from twin.weather import DAILY_RANGE_FRACTION, AmbientProfile, design_day_c


def doc(**events):
    return {"scenario": {"name": "t", "horizon": "02:00:00"}, "events": [events] if events else []}


@pytest.fixture(scope="module")
def memphis():
    return load_site("memphis")


def test_time_parsing():
    assert parse_time_s("14:00:00") == 50400 and parse_time_s("01:30") == 90 and parse_time_s(12.5) == 12.5
    for bad in ("25:61:00", "noon", -1):
        with pytest.raises(ValueError):
            parse_time_s(bad)


def test_glob_count_is_seeded(memphis):
    d = doc(at="00:10:00", do="trip", target="southaven/titan350-*", count=3)
    a = resolve_events(load_scenario(d), memphis)
    b = resolve_events(load_scenario(d), memphis)
    assert [e.target for e in a] == [e.target for e in b] and len(a) == 3
    assert all(e.t_s == 600 and e.kind == "turbines" for e in a)


def test_glob_without_count_takes_all(memphis):
    ev = resolve_events(load_scenario(doc(at=60, do="fail", target="colossus2/chiller-00[1-9]")), memphis)
    assert len(ev) == 9 and {e.kind for e in ev} == {"chillers"}


@pytest.mark.parametrize(
    "event,path,words",
    [
        (dict(at="00:10:00", do="trip", target="southaven/titan999"), "events[0].target", "matches no component"),
        (dict(at="1:99:00", do="trip", target="southaven/titan350-01"), "events[0].at", "below 60"),
        (dict(at="00:10:00", do="explode", target="southaven/titan350-01"), "events[0].do", "expected 'trip'"),
        (dict(at="00:10:00", do="trip", target="southaven/titan350-*", count=99), "events[0].count", "matches only 27"),
        (dict(at="00:10:00", do="derate", target="southaven/titan350-01"), "events[0]", "derate needs value"),
        (dict(at="00:10:00", do="derate", target="southaven/titan350-01", value=1.5), "events[0]", "between 0 and 1"),
        (dict(at="03:00:00", do="trip", target="southaven/titan350-01"), "", "not before the horizon"),
        (dict(at="00:10:00", do="start", target="colossus2/chiller-001"), "events[0].do", "cannot start chillers"),
        (dict(at="00:10:00", do="trip", target="titan350-01"), "events[0].target", "expected 'site/component-id'"),
    ],
)
def test_bad_events(memphis, event, path, words):
    with pytest.raises(ScenarioError) as info:
        resolve_events(load_scenario(doc(**event)), memphis)
    msg = str(info.value)
    assert words in msg, msg
    if path:
        assert f"{path}:" in msg or f"{path}." in msg, msg


def test_design_day_matches_ashrae_profile():
    hours = np.arange(1, 25) * 3600.0
    np.testing.assert_allclose(design_day_c("memphis-0.4pct", hours), 35.6 - DAILY_RANGE_FRACTION * 10.0)
    assert design_day_c("memphis-july-1980", np.array([15 * 3600.0]))[0] == pytest.approx(42.2)
    sc = load_scenario({"scenario": {"name": "t", "start": "2026-07-15T14:00:00"}})
    amb = AmbientProfile(sc.weather, start_s_of_day=14 * 3600)
    assert amb(np.array([3600.0]))[0] == pytest.approx(35.6)


def test_profile_file(tmp_path):
    f = tmp_path / "amb.csv"
    f.write_text("time,t_amb_c\n00:00:00,20\n01:00:00,30\n")
    sc = load_scenario({"scenario": {"name": "t"}, "weather": {"profile": str(f)}})
    assert AmbientProfile(sc.weather)(np.array([1800.0]))[0] == pytest.approx(25.0)
    f.write_text("when,temp\n")
    with pytest.raises(ScenarioError, match="expected a header 'time,t_amb_c'"):
        AmbientProfile(load_scenario({"scenario": {"name": "t"}, "weather": {"profile": str(f)}}).weather)
