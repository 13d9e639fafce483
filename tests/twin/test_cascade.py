"""Protection with settings from the site file: a designed cascade checked by hand, the relay kernels
against hand values, and a UPS that carries a hall through a dark island.

The designed cascade (``tests/data/cascade_island.toml``): three units at full output with ideal governors
(no headroom: after a loss nothing answers but the rotors and the relays), so the frequency falls on
straight lines whose slopes the swing equation gives, ``RoCoF = f0·ΔP/(2·ΣH·S)`` (docs/physics.md §4).
The hand numbers below come from that formula, the relay windows and delays, and nothing from the engine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sites import load_site
from sites.schema import Protection
from twin import plant as pl
from twin import protection as pr
from twin import state as s
from twin.engine import Engine
from twin.scenario import load_scenario, resolve_events
from twin.stepping import _chiller_aggregates
from twin.turbines import STATUS_ONLINE

DATA = Path(__file__).parents[1] / "data"
CASCADE = DATA / "cascade_island.toml"
LAB = DATA / "analytic_site.toml"
H_SUB = 0.05  # the engine's sub-step at 1 s steps [s]
IMPLS = ["numba", "python"]


def impl(fn, which):
    return fn if which == "numba" else fn.py_func


# ---------------------------------------------------------------------------------------------- the cascade
def _cascade_events(horizon=8.0, t_trip=5.0, path=CASCADE):
    site = load_site(path)
    sc = load_scenario({"scenario": {"name": "cascade", "site": str(path), "horizon": horizon},
                        "weather": {"t_amb_c": 15.0},
                        "control": {"secondary": False, "gpu_capping": False, "ufls": True, "auto_start": False},
                        "events": [{"at": t_trip, "do": "trip", "target": "cascade/a"}]})
    eng = Engine(site, sc, resolve_events(sc, site))
    for _ in eng.segments():
        pass
    return site, eng


def _b_as_group(tmp_path):
    """The cascade site with B as a group of two identical 15 MW units (same ΣH·S and output as B): the kernel
    steps one and copies it; the relay must trip and log both."""
    text = CASCADE.read_text()
    model = text[text.index("[turbine_models.gt30]"):text.index("[turbine_models.gt100]")]
    text = text.replace("[turbine_models.gt100]", model.replace("gt30", "gt15").replace("30.0", "15.0") + "[turbine_models.gt100]")
    text = text.replace('id = "b"\nmodel = "gt30"', 'id = "b"\nmodel = "gt15"\ncount = 2')
    path = tmp_path / "cascade_group.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("group", [False, True], ids=["one-unit", "b-as-group-of-two"])
def test_designed_cascade_matches_the_hand_calculation(tmp_path, group):
    """Unit A (10 MW) trips at t0 = 5 s. With B (30 MW) and C (100 MW) left, H = 5 s each:

    1. RoCoF₁ = 60·10/(2·(150 + 500)) = 0.4615 Hz/s. B's relay (0.3 Hz/s over a 0.5 s window, delay 0.4 s):
       the window average of a ramp from flat reaches the setting at t0 + 0.3·0.5/RoCoF₁ = t0 + 0.325 s
       (pick-up); B trips 0.4 s later, t0 + 0.725 s.
    2. RoCoF₂ = 60·(10 + 30)/(2·500) = 2.4 Hz/s from f(t_B) = 60 − RoCoF₁·0.725 = 59.665 Hz: 59.3 Hz
       (UFLS stage 1) is reached 0.152 s later (pick-up) and stage 1 trips 0.15 s after that.

    Each event is in the log, in this order, within one sub-step (50 ms) of these times, with the measured
    quantity; the relay trips count in the KPIs; and the cascade goes on to take the island down.
    """
    site, eng = _cascade_events(path=_b_as_group(tmp_path) if group else CASCADE)
    prot = site.protection
    b_units = ["cascade/b-01", "cascade/b-02"] if group else ["cascade/b"]
    f0, t0 = 60.0, 5.0
    hs_b, hs_c = 5.0 * 30.0, 5.0 * 100.0
    rocof1 = f0 * 10.0 / (2.0 * (hs_b + hs_c))
    rocof2 = f0 * (10.0 + 30.0) / (2.0 * hs_c)
    t_pick_b = t0 + prot.turbine_rocof_hz_per_s * prot.turbine_rocof_window_s / rocof1
    t_trip_b = t_pick_b + prot.turbine_rocof_delay_s
    f_b = f0 - rocof1 * (t_trip_b - t0)
    t_pick_u = t_trip_b + (f_b - prot.ufls_f_hz[0]) / rocof2
    t_trip_u = t_pick_u + prot.ufls_delay_s
    assert prot.turbine_rocof_delay_s == 0.4 and prot.ufls_delay_s == 0.15  # the site file's settings are used

    log = [e for e in eng.event_log if e["source"] == "protection"]

    def first(kind, component):
        return next(i for i, e in enumerate(log) if e["kind"] == kind and e["component"] == component)

    steps = [("rocof-pickup", b_units[0], t_pick_b), ("rocof-trip", b_units[0], t_trip_b),
             ("ufls-pickup", "stage 1", t_pick_u), ("ufls-trip", "stage 1", t_trip_u)]
    rows = [first(kind, comp) for kind, comp, _ in steps]
    assert rows == sorted(rows)  # in order
    for row, (kind, comp, t_hand) in zip(rows, steps):
        assert log[row]["t_s"] == pytest.approx(t_hand, abs=H_SUB), (kind, log[row]["t_s"], t_hand)
    # the measured quantities: B's relay saw more than its setting, stage 1 a frequency below 59.3 Hz
    assert abs(log[rows[1]]["value"]) > prot.turbine_rocof_hz_per_s and log[rows[1]]["unit"] == "Hz/s"
    assert log[rows[3]]["value"] < prot.ufls_f_hz[0]
    # nothing tripped B or C before the RoCoF relay did; C is tripped only at the end (the island goes down)
    assert not any(e["kind"] in ("frequency-trip", "blackout") and e["t_s"] < t_trip_u for e in log)
    assert any(e["kind"] == "blackout" for e in log)
    status = dict(zip(eng.plant.names["turbine"], eng.st.turb[:, s.ST_STATUS]))
    assert all(status[b] == 3 for b in b_units)  # tripped
    b_trips = [e for e in log if e["kind"] == "rocof-trip"]
    assert sorted(e["component"] for e in b_trips) == b_units  # every unit of the group, logged once
    assert all(e["t_s"] == log[rows[1]]["t_s"] for e in b_trips)
    kpi = pr_kpis(eng)
    assert kpi["relay_trips"] >= 3 and kpi["cascade_depth"] == kpi["relay_trips"]


def test_ride_through_trips_the_units_and_the_island_goes_dark(tmp_path):
    """No RoCoF relay, a turbine under-frequency band (59.5 Hz, 0.5 s): after A trips the frequency falls at
    RoCoF₁ = 0.4615 Hz/s, crosses 59.5 Hz at t0 + 0.5/RoCoF₁ = t0 + 1.083 s, and B and C trip 0.5 s later
    (the band's time) — a unit-trip cascade that leaves the island without spinning mass: it goes dark on the
    next sub-step, before the 57 Hz backstop would have acted."""
    text = CASCADE.read_text().replace("rocof_relay = true\n", "").replace(
        "ufls_delay_s = 0.15\n", "ufls_delay_s = 0.15\nturbine_uf_bands = [[59.5, 0.5]]\n")
    path = tmp_path / "cascade_rt.toml"
    path.write_text(text)
    site, eng = _cascade_events(path=path)
    rocof1 = 60.0 * 10.0 / (2.0 * (150.0 + 500.0))
    t_trip = 5.0 + 0.5 / rocof1 + 0.5
    trips = [e for e in eng.event_log if e["kind"] == "frequency-trip"]
    assert sorted(e["component"] for e in trips) == ["cascade/b", "cascade/c"]
    for e in trips:
        assert e["t_s"] == pytest.approx(t_trip, abs=H_SUB) and 59.0 < e["value"] < 59.5
    dark = next(e for e in eng.event_log if e["kind"] == "blackout")
    assert dark["t_s"] == pytest.approx(trips[0]["t_s"] + H_SUB, abs=1e-6)
    assert not any(e["kind"] == "rocof-trip" for e in eng.event_log)


def test_inverter_rocof_trip_takes_the_yard_out(tmp_path):
    """A 5 MW grid-following yard with a RoCoF trip (0.3 Hz/s over 0.1 s, no delay) on the cascade island:
    A's loss gives RoCoF₁ = 0.4615 Hz/s, whose window average reaches 0.3 Hz/s at t0 + 0.3·0.1/RoCoF₁ =
    t0 + 0.065 s: the yard trips then (within a sub-step), is out of service and delivers nothing after."""
    text = CASCADE.read_text().replace("rocof_relay = true\n", "").replace(
        "ufls_delay_s = 0.15\n", "ufls_delay_s = 0.15\nbess_rocof_hz_per_s = 0.3\nbess_rocof_window_s = 0.1\n")
    text += ('\n[[bess]]\nid = "yard"\nbus = "gen"\nunits = 1\nunit_p_mw = 5.0\nunit_e_mwh = 10.0\nrte_frac = 0.9\n'
             'mode = "droop"\nrocof_relay = true\nassumption = "test"\n')
    path = tmp_path / "cascade_bess.toml"
    path.write_text(text)
    site, eng = _cascade_events(path=path, horizon=6.0)
    rocof1 = 60.0 * 10.0 / (2.0 * (150.0 + 500.0))
    trip = next(e for e in eng.event_log if e["kind"] == "rocof-trip")
    assert trip["component"] == "cascade/yard" and abs(trip["value"]) > 0.3
    assert trip["t_s"] == pytest.approx(5.0 + 0.3 * 0.1 / rocof1, abs=H_SUB)
    assert eng.st.bess[0, s.SB_OK] == 0.0 and eng.st.bess[0, s.SB_P] == 0.0


def pr_kpis(eng):
    from twin.kpi import event_kpis

    return event_kpis(eng.event_log, t_ref_s=5.0)


# ---------------------------------------------------------------------------------------------- relay kernels
@pytest.mark.parametrize("which", IMPLS)
def test_rocof_relay_picks_up_times_and_resets(which):
    """Setting 0.5 Hz/s, delay 0.2 s, 50 ms sub-steps: above the setting the 4th sub-step trips (4 × 0.05 =
    0.2 s); a sub-step back below resets it; at or below the setting (either sign) it never picks up."""
    step = impl(pr.rocof_relay_step, which)
    t = 0.0
    for n in range(1, 5):
        trip, t = step(-0.6, t, 0.5, 0.2, 0.05)
        assert trip == (n == 4) and t == pytest.approx(0.05 * n)
    assert step(0.3, 0.15, 0.5, 0.2, 0.05) == (False, 0.0)
    assert step(0.5, 0.0, 0.5, 0.2, 0.05) == (False, 0.0)
    assert step(0.51, 0.0, 0.5, 0.0, 0.05)[0]  # no delay: trips on the first sub-step


def _curve(bands, over=False):
    prot = Protection(turbine_of_bands=bands) if over else Protection(turbine_uf_bands=bands)
    return pl.protection_ctrl(prot), pl.CT_RT + 2 * (pl.RT_TU_OF if over else pl.RT_TU_UF) * pl.N_RT_BAND


@pytest.mark.parametrize("which", IMPLS)
def test_ride_through_integrators_per_band(which):
    """Bands (59.5 Hz, 1 s) and (58.0 Hz, 0.1 s): 59.0 Hz trips band 1 after 1 s (the 20th sub-step); 57.9 Hz
    picks up both bands on its first sub-step and trips band 2 on its second (0.1 s); coming back above a
    threshold resets that band's timer; an over-frequency curve does the same above its thresholds."""
    step = impl(pr.ride_through_step, which)
    ctrl, base = _curve([(59.5, 1.0), (58.0, 0.1)])
    tm = np.zeros(pl.N_RT_BAND)
    for n in range(1, 21):
        trip, pick = step(59.0, tm, ctrl, base, pl.N_RT_BAND, False, 0.05)
        assert pick == (0 if n == 1 else -1) and trip == (0 if n == 20 else -1)
    tm[:] = 0.0
    assert step(57.9, tm, ctrl, base, pl.N_RT_BAND, False, 0.05) == (-1, 1)  # both pick up: the severer is named
    assert step(57.9, tm, ctrl, base, pl.N_RT_BAND, False, 0.05) == (1, -1)
    step(59.2, tm, ctrl, base, pl.N_RT_BAND, False, 0.05)
    assert tm[1] == 0.0 and tm[0] == pytest.approx(0.15)
    step(59.6, tm, ctrl, base, pl.N_RT_BAND, False, 0.05)
    assert not tm.any()
    ctrl, base = _curve([(61.0, 0.5), (61.8, 0.0)], over=True)
    tm[:] = 0.0
    assert step(61.9, tm, ctrl, base, pl.N_RT_BAND, True, 0.05) == (1, 1)  # instantaneous band
    assert step(60.9, tm, ctrl, base, pl.N_RT_BAND, True, 0.05) == (-1, -1) and not tm.any()


def test_default_turbine_bands_follow_the_prc024_eastern_curves():
    """The default stepped curves are the PRC-024 Eastern Interconnection no-trip times at each threshold
    (t = 10^(1.7373·f − 100.116) s below 59.5 Hz, 10^(90.935 − 1.45713·f) s above 60.5 Hz), rounded."""
    p = Protection()
    for f, t in p.turbine_uf_bands:
        assert t == pytest.approx(10 ** (1.7373 * f - 100.116), rel=0.02)
    for f, t in p.turbine_of_bands[:-1]:
        assert t == pytest.approx(10 ** (90.935 - 1.45713 * f), rel=0.02)
    assert p.turbine_of_bands[-1] == (61.8, 0.0)  # instantaneous above 61.8 Hz


@pytest.mark.parametrize("which", IMPLS)
def test_ups_state_machine_and_served_fractions(which):
    """On battery at once when the input goes bad; back after ``retransfer_s`` of healthy input, the timer
    restarting on any bad sub-step. Served/drawn fractions: 30 % of IT behind a UPS with energy, 20 % behind
    an empty one, 10 % shed: on battery 0.3 + 0.5·0.9 = 0.75 served and 0.45 drawn; normal 0.9 and 0.9."""
    step = impl(pr.ups_step, which)
    assert step(False, 0.0, True, 1.0, 0.25) == (True, 0.0, True)
    assert step(False, 0.0, False, 1.0, 0.25) == (False, 0.0, False)
    on, t, ch = True, 0.0, False
    for _ in range(3):
        on, t, ch = step(on, t, False, 1.0, 0.25)
    assert on and t == pytest.approx(0.75) and not ch
    assert step(on, t, True, 1.0, 0.25) == (True, 0.0, False)  # a bad sub-step restarts the count
    assert step(on, t, False, 1.0, 0.25) == (False, 0.0, True)
    frac = impl(pr.ups_served_fraction, which)
    assert frac(True, 0.1, 0.3, 0.2) == pytest.approx((0.75, 0.45))
    assert frac(False, 0.1, 0.3, 0.2) == pytest.approx((0.9, 0.9))
    assert frac(True, 1.0, 1.0, 0.0) == pytest.approx((1.0, 0.0))  # a dark island: the UPS serves all


def test_chiller_restart_counts_down_only_on_a_live_healthy_island():
    """Two chillers tripped with 120 s to go, on islands 0 (live) and 1 (dark): after 100 s the first has 20 s
    left, the second still 120 s; after 20 more it restarts (logged); a step whose lowest frequency was below
    the trip setting does not count."""
    ctrl = pl.protection_ctrl()
    chiller = np.zeros((2, pl.CH_NCOL))
    chiller[1, pl.CH_ISLAND] = 1.0
    z = np.zeros((0, 1))
    par = s.Params(turb=z, gov=z, bess=z, hall=z, plant=z, chiller=chiller, grid=z, curves=np.zeros((1, 15)),
                   curve_ranges=np.zeros((1, 4)), ctrl=ctrl)
    ch = np.zeros((2, s.SC_NCOL))
    ch[:, s.SC_OK], ch[:, s.SC_RESTART_S] = 1.0, 120.0
    isl = np.zeros((2, s.SI_NCOL))
    isl[1, s.SI_BLACKOUT] = 1.0
    st = s.State(turb=z, gov=z, bess=z, hall=z, plant=z, chiller=ch, isl=isl, grid=z, ufls_timer=np.zeros((2, 5)),
                 ring=np.zeros((2, s.RING_N)))
    ev, n_ev = np.zeros((8, s.EV_NCOL)), np.zeros(1, np.int64)
    f_ok = np.array([60.0, 60.0])
    for k in range(100):
        down, restarted = pr.chiller_restarts(par, st, f_ok, 1.0, k + 1.0, ev, n_ev)
    assert ch[0, s.SC_RESTART_S] == pytest.approx(20.0) and ch[1, s.SC_RESTART_S] == 120.0 and down == 2
    pr.chiller_restarts(par, st, np.array([57.0, 60.0]), 1.0, 101.0, ev, n_ev)  # a dip: no count
    assert ch[0, s.SC_RESTART_S] == pytest.approx(20.0)
    for k in range(20):
        down, restarted = pr.chiller_restarts(par, st, f_ok, 1.0, 102.0 + k, ev, n_ev)
    assert restarted and down == 1 and ch[0, s.SC_RESTART_S] == 0.0
    assert n_ev[0] == 1 and ev[0, s.EV_CODE] == s.EV_CHILLER_RESTART and ev[0, s.EV_T_S] == 121.0


# ---------------------------------------------------------------------------------------------- UPS in the engine
def test_ups_carries_a_hall_through_a_dark_island_for_its_autonomy(tmp_path):
    """The analytic site's hall (80 MW peak) with a 1-minute UPS, drawing 40 MW: all four units trip at 10 s,
    the island goes dark and the UPS takes the hall at once. It carries 40 MW for 1 min·80/40 = 120 s, then
    the hall goes unserved. Two chillers on the dark island trip on the dip: the plant's working capacity
    drops by their 4 MW (the aggregates are recomputed inside the segment)."""
    text = LAB.read_text()
    text = text.replace('cooling_plant = "plant"\n', 'cooling_plant = "plant"\nups_autonomy_min = 1.0\n')
    text += ('\n[[chillers]]\nid = "ch-isl"\nplant = "plant"\ncount = 2\nbus = "hall-bus"\nq_ref_mw = 2.0\n'
             'cop_ref = 3.1\npf = 1.0\nassumption = "test: on the islanded island"\n')
    path = tmp_path / "lab_ups.toml"
    path.write_text(text)
    site = load_site(path)
    t_trip, p_it, horizon = 10.0, 40.0, 180.0
    events = [{"at": t_trip, "do": "trip", "target": f"lab/gt-0{k}"} for k in range(1, 5)]
    sc = load_scenario({"scenario": {"name": "ups", "site": str(path), "horizon": horizon},
                        "weather": {"t_amb_c": 30.0}, "workload": {"swing_frac": 0.0, "checkpoint_duration_s": 0.0},
                        "control": {"secondary": False, "gpu_capping": False, "auto_start": False},
                        "events": events})
    eng = Engine(site, sc, resolve_events(sc, site))
    eng.set_inputs(p_it_mw={"lab/hall": p_it})
    cap0 = _chiller_aggregates(eng.par, eng.st)[0, 0]
    served = np.concatenate([seg["p_it_mw"][:, 0].copy() for seg in eng.segments()])
    t = np.arange(len(served))
    autonomy_s = 1.0 * 60.0 * 80.0 / p_it
    carried = (t >= t_trip + 1) & (t < t_trip + autonomy_s - 1)
    assert np.allclose(served[carried], p_it, rtol=1e-6)  # served from the UPS while the island is dark
    assert np.all(served[t >= t_trip + autonomy_s + 2] == 0.0)  # then unserved
    kinds = {e["kind"]: e for e in eng.event_log}
    assert kinds["ups-transfer"]["t_s"] == pytest.approx(t_trip + H_SUB, abs=1e-6)  # the first sub-step's end
    assert kinds["ups-empty"]["t_s"] == pytest.approx(t_trip + autonomy_s, abs=1.0)
    trips = [e for e in eng.event_log if e["kind"] == "chiller-trip"]
    assert len(trips) == 2 and all(e["t_s"] == pytest.approx(t_trip + H_SUB, abs=1e-6) for e in trips)
    assert _chiller_aggregates(eng.par, eng.st)[0, 0] == pytest.approx(cap0 - 2 * 2.0)


# ------------------------------------------------------------------------- an island losing its last unit
def _megapack_lost_hour():
    """``memphis:full-build`` on the design day from 14:00, the Colossus 2 Megapack failed at 00:10."""
    site = load_site("memphis:full-build")
    sc = load_scenario({"scenario": {"name": "c2-megapack-lost", "site": "memphis:full-build", "start": "2026-07-15T14:00:00",
                                     "horizon": "01:00:00"},
                        "weather": {"design_day": "memphis-0.4pct"}, "workload": {"seed": 3},
                        "events": [{"at": "00:10:00", "do": "fail", "target": "colossus2/megapack"}]})
    return site, sc


def test_island_whose_last_units_trip_collapses_instead_of_diverging():
    """With the Colossus 2 Megapack failed, the training swings drive the Colossus 2 + Southaven island above
    61.8 Hz, where the turbines' over-frequency ride-through (PRC-024 band 4) trips every unit in one sub-step.
    The island then has no spinning mass and collapses (blackout at the backstop). Before the inertia was summed
    afresh after trips, the running difference left a rounding residue of ~1e-13 MW·s on which the swing
    equation diverged (the frequency reached −1.8e15 Hz and sweeps ranked it as a result)."""
    site, sc = _megapack_lost_hour()
    eng = Engine(site, sc, resolve_events(sc, site))
    f_lo, f_hi = [], []
    isl = "colossus2+southaven"
    i = eng.plant.names["island"].index(isl)
    on_island = eng.plant.turb[:, pl.TU_ISLAND].astype(int) == i
    online_before = None
    for seg in eng.segments():
        f_lo.append(seg["f_min_hz"])
        f_hi.append(seg["f_max_hz"])
        if online_before is None:
            online_before = int((seg["turbine_status"][-1][on_island] == STATUS_ONLINE).sum())
        status_end = seg["turbine_status"][-1]
    trips = [e for e in eng.event_log if e["kind"] == "frequency-trip" and e["island"] == isl]
    blackouts = [e for e in eng.event_log if e["kind"] == "blackout" and e["island"] == isl]
    assert online_before >= 10 and not (status_end[on_island] == STATUS_ONLINE).any()
    assert len(trips) >= online_before and len({e["t_s"] for e in trips}) == 1  # the path under test: all at once
    assert len(blackouts) == 1 and blackouts[0]["t_s"] >= trips[0]["t_s"]
    assert blackouts[0]["value"] == pytest.approx(pr.BLACKOUT_HZ - 1.0)  # the collapse, not a diverged number
    f_lo, f_hi = np.concatenate(f_lo), np.concatenate(f_hi)
    assert np.isfinite(f_lo).all() and np.isfinite(f_hi).all()
    assert f_lo.min() >= pr.BLACKOUT_HZ - 1.0 and f_hi.max() < 62.0


def test_a_diverged_frequency_stops_the_run_with_a_message(tmp_path, monkeypatch):
    """The engine refuses to record a frequency outside (0, 2·f0): the run fails with a message naming the
    island and time (exit code 1, no traceback) and the catalog records the failure."""
    import twin.engine as engine_mod
    from typer.testing import CliRunner

    from twin.catalog import Catalog
    from twin.cli import app

    real = engine_mod.step_segment

    def diverging(n_steps, dt_s, n_sub, inp, par, st, out, sub):
        done = real(n_steps, dt_s, n_sub, inp, par, st, out, sub)
        out.f_min[3, 0] = -1.8e15  # as the kernel once produced
        return done

    monkeypatch.setattr(engine_mod, "step_segment", diverging)
    monkeypatch.setenv("TWIN_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["run", "memphis", "--scenario", "baseline-day", "--out", str(tmp_path / "run"),
                                      "--no-plots"])
    out = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "numerical failure" in out and "t = 3 s" in out, out
    (rec,) = Catalog(tmp_path / "catalog.sqlite").list()
    assert rec.status == "failed" and "SimulationDiverged" in rec.error and "numerical failure" in rec.error
    assert '"failed"' in (tmp_path / "run" / "status.json").read_text()
