"""Our side of the ANDES comparison: the sites, the engine runs, and the islands handed to ANDES.

Three cases (issue acceptance):

(a) ``tests/data/andes_single_island.toml``: four identical TGOV1 units and a constant-power load
    step (a ``set`` event on its ``[[loads]]`` entry).
(b) The Colossus 2 + Southaven island of the ``memphis`` campus, its online Titan 350 units on TGOV1
    and both Megapack yards in droop mode, for the trip of one unit and for an 85 MW checkpoint drop
    (hall IT set between ``advance`` calls). The reference site files are copied and changed in two
    documented ways only: the Titan 350 model gets ``governor = "tgov1"`` with
    :data:`TITAN_TGOV1` (the GGOV1 typical lags [P22]: valve Tact = 0.5 s, turbine
    Tb = 0.5 s as the lead-lag's lag, no lead), and Colossus 1 (its own grid-tied island) is left
    out of the campus.
(c) The Kundur two-area case bundled with ANDES: our site is written from the case's data
    (:func:`kundur_site_toml`) with each generator as one turbine (its TGOV1 data, H and rating),
    the lines and transformers converted to ohms, and the loads as constant-power ``[[loads]]``; the
    engine lumps the four machines into its island swing equation, ANDES keeps them as GENROU with
    exciters.

The island given to ANDES (:func:`island_from_engine`) is read from the engine after it is built
(online units, dispatch, batteries) and the engine's recorded island load per sub-step (incl.
losses) is replayed in ANDES (:func:`load_profile`), so both tools see the same load. ANDES starts
from a power flow, in balance, with the load equal to the engine's initial generation; when the
engine starts out of balance (its load at t = 0 differs from its initial set points), the first
load step, at t = 0, carries that imbalance into ANDES too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import andes_harness as ah

DATA = Path(__file__).parents[1] / "data"
SITES_DATA = Path(__file__).parents[2] / "sites" / "data"
SINGLE_SITE = DATA / "andes_single_island.toml"

#: Scenario controls for a plain primary-response island.
NO_CONTROLS = {"secondary": False, "gpu_capping": False, "ufls": False, "auto_start": False}
#: Time of the disturbance [s] and horizon [s]: 30 s after the event.
T_EVENT_S = 5.0
HORIZON_S = 35.0
#: Steps per segment: 1, so that the island losses (which enter the engine's power balance one
#: segment late, from the segment's load flow) follow the load every second. With the default
#: segmentation (cut at events and every hour) the loss change after an event does not enter the 30 s
#: compared at all: case (c) then settles 0.008 Hz high (its losses rise by ≈9 MW on the 150 MW step).
BLOCK_STEPS = 1
#: Ambient of every run [°C]: ISO, so that no unit is derated.
T_AMB_C = 15.0

#: TGOV1 of the Titan 350 in case (b) (site-file choice, see the module docstring).
TITAN_TGOV1 = {
    "governor": '"tgov1"',
    "tgov1_t1_s": "0.5",
    "tgov1_t2_s": "0.0",
    "tgov1_t3_s": "0.5",
    "tgov1_dt_pu": "0.0",
    "tgov1_vmax_pu": "1.0",
    "tgov1_vmin_pu": "0.0",
    "gov_deadband_hz": "0.0",
}
TITAN_NOTE = ("TGOV1 for the ANDES comparison: valve lag = GGOV1 Tact 0.5 s, lead-lag lag = GGOV1 Tb 0.5 s, "
              "no lead [P22]; valve 0-1 pu; no speed deadband (the engine's TGOV1 row carries none yet)")
#: Hall IT dropped in case (b) [MW] (a checkpoint), spread evenly over the island's halls.
CHECKPOINT_DROP_MW = 85.0
#: Kundur's TGOV1 VMAX is 33 pu (no limit); our schema caps the valve at 2 pu, never reached here (≈0.8 pu).
KUNDUR_VMAX_PU = 2.0
#: Kundur load step: PQ_0 (bus 7) +150 MW.
KUNDUR_LOAD = "PQ_0"
KUNDUR_STEP_MW = 150.0


# ------------------------------------------------------------------------------------------- sites
def memphis_tgov1_site(tmp_dir: Path) -> Path:
    """The memphis campus without Colossus 1, Titan 350 on TGOV1 (files written to ``tmp_dir``)."""
    text = (SITES_DATA / "southaven.toml").read_text()
    head = "[turbine_models.titan350]\n"
    assert text.count(head) == 1
    fields = "".join(f'{k} = {{ value = {v}, assumption = "{TITAN_NOTE}" }}\n' if k != "governor" else f"{k} = {v}\n"
                     for k, v in TITAN_TGOV1.items())
    text = text.replace(head, head + fields)
    (tmp_dir / "southaven.toml").write_text(text)
    campus = (SITES_DATA / "memphis.toml").read_text()
    members = 'sites = ["colossus1", "colossus2", "southaven"]'
    assert members in campus
    campus = campus.replace(members, f'sites = ["colossus2", "{(tmp_dir / "southaven.toml").as_posix()}"]', 1)
    campus = campus[:campus.index("[variants.")]  # the variants name other member files
    path = tmp_dir / "memphis.toml"
    path.write_text(campus)
    return path


def kundur_site_toml() -> str:
    """Our site file for ANDES's Kundur two-area case, written from the case's data.

    Per-unit data on ANDES's 100 MVA base become ohms on the bus voltage (``length_km = 1``);
    20/230 kV branches become transformers of the generator rating. Loads keep their active power;
    their (small, capacitive) reactive power has no place in our load schema (power factor ≤ 1,
    lagging), so they are written with ``pf = 1`` — a loss difference of about 1 MW on a 150 MW step
    (PFlow of the case with q = 0 vs. as given).
    """
    d = ah.kundur_data()
    out = ['[site]', 'id = "kundur"', 'name = "Kundur two-area system (ANDES bundled case)"', "",
           "[weather]", "design_t_amb_c = 15.0", 'assumption = "test: ISO ambient"', ""]
    models = {}
    for g in d["gens"]:
        key = f"h{g['h_s']:.4f}".replace(".", "p")
        models.setdefault(key, g)
    for key, g in models.items():
        out += [f"[turbine_models.{key}]", f'id = "{key}"', f"p_iso_mw = {g['s_mva']}", "derate_per_c = 0.0",
                "p_min_frac = 0.0", "ramp_frac_per_min = 0.2", f"droop_pct = {100.0 * g['r']}", "start_time_s = 600.0",
                "heat_rate_btu_per_kwh = 9000.0", 'heat_rate_basis = "hhv"', "heat_rate_rise_per_c = 0.0025", f"h_s = {g['h_s']}",
                "co2_kg_per_mmbtu = 53.06", "nox_kg_per_mmbtu = 0.01", "nox_below_min_kg_per_mmbtu = 0.03",
                "vn_kv = 20.0", "pf = 1.0", 'governor = "tgov1"', f"tgov1_t1_s = {g['t1_s']}", f"tgov1_t2_s = {g['t2_s']}",
                f"tgov1_t3_s = {g['t3_s']}", f"tgov1_dt_pu = {g['dt']}", f"tgov1_vmax_pu = {min(g['vmax_pu'], KUNDUR_VMAX_PU)}",
                f"tgov1_vmin_pu = {g['vmin_pu']}", "gov_deadband_hz = 0.0",
                'assumption = "ANDES kundur_full: GENROU rating and H, TGOV1 data on the machine base (Tn unset)"', ""]
    for b in d["buses"]:
        kind = "gen" if b["vn_kv"] < 100 else "hv"
        out += ["[[buses]]", f'id = "b{b["idx"]}"', f"vn_kv = {b['vn_kv']}", f'kind = "{kind}"',
                'assumption = "ANDES kundur_full"', ""]
    for ln in d["lines"]:
        lid = ln["idx"].lower().replace("_", "-")
        if ln["vn1_kv"] != ln["vn2_kv"]:
            hv, lv = (ln["bus1"], ln["bus2"]) if ln["vn1_kv"] > ln["vn2_kv"] else (ln["bus2"], ln["bus1"])
            sn = 900.0
            z = np.hypot(ln["r_pu"], ln["x_pu"]) * sn / ah.SB_MVA
            out += ["[[transformers]]", f'id = "{lid}"', f'hv_bus = "b{hv}"', f'lv_bus = "b{lv}"', f"sn_mva = {sn}",
                    f"vn_hv_kv = {max(ln['vn1_kv'], ln['vn2_kv'])}", f"vn_lv_kv = {min(ln['vn1_kv'], ln['vn2_kv'])}",
                    f"vk_percent = {100.0 * z:.6f}", f"vkr_percent = {100.0 * ln['r_pu'] * sn / ah.SB_MVA:.6f}",
                    'assumption = "ANDES kundur_full step-up, per unit on 100 MVA converted to the 900 MVA rating"', ""]
        else:
            zb = ln["vn1_kv"] ** 2 / ah.SB_MVA
            c_nf = ln["b_pu"] / zb / (2.0 * np.pi * ah.F0_HZ) * 1e9
            out += ["[[lines]]", f'id = "{lid}"', f'from_bus = "b{ln["bus1"]}"', f'to_bus = "b{ln["bus2"]}"',
                    "length_km = 1.0", f"r_ohm_per_km = {ln['r_pu'] * zb:.6f}", f"x_ohm_per_km = {ln['x_pu'] * zb:.6f}",
                    f"c_nf_per_km = {c_nf:.4f}", "max_i_ka = 10.0", 'kind = "ol"',
                    'assumption = "ANDES kundur_full, per unit on 100 MVA and the bus voltage converted to ohms"', ""]
    for g in d["gens"]:
        key = f"h{g['h_s']:.4f}".replace(".", "p")
        out += ["[[turbines]]", f'id = "g{g["idx"]}"', f'model = "{key}"', f'bus = "b{g["bus"]}"',
                'assumption = "ANDES kundur_full generator"', ""]
    for ld in d["loads"]:
        out += ["[[loads]]", f'id = "{ld["idx"].lower().replace("_", "-")}"', f'bus = "b{ld["bus"]}"',
                f"p_mw = {ld['p_mw']}", "pf = 1.0", 'assumption = "ANDES kundur_full load, constant power (Q left out)"', ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------------ engine runs
@dataclass
class EngineRun:
    """One engine run: COI frequency on the sub-step grid and what ANDES needs to rebuild the island."""

    traj: ah.Trajectory
    island: ah.Island
    load_steps: list[tuple[float, float]]
    p_mech_mw: np.ndarray
    p_bess_mw: np.ndarray
    wall_s: float


def make_engine(site_path, events: list[dict] | None = None, horizon_s: float = HORIZON_S, **engine_kw):
    """An :class:`twin.engine.Engine` on ``site_path`` with sub-steps recorded and no controls."""
    from sites import load_site
    from twin.engine import Engine
    from twin.scenario import load_scenario, resolve_events

    site = load_site(site_path)
    sc = load_scenario({
        "scenario": {"name": "andes-validation", "site": str(site_path), "horizon": horizon_s},
        "weather": {"t_amb_c": T_AMB_C},
        "workload": {"swing_frac": 0.0, "checkpoint_duration_s": 0.0},
        "control": NO_CONTROLS,
        "events": events or [],
    })
    resolved = resolve_events(sc, site)
    engine_kw.setdefault("block_steps", BLOCK_STEPS)
    return Engine(site, sc, resolved, record_substeps=True, **engine_kw)


def island_from_engine(eng, island: str) -> ah.Island:
    """The island as ANDES needs it, from the engine's site and its state before the first step.

    Units grouped by turbine model (identical units share one group; the first unit of the group of
    ``trip`` is the one ANDES trips); load = 0 here, filled from the recorded run.
    """
    from twin.storage import DEADBAND_HZ

    site = eng.site
    members = eng.island_members()[island]
    st = eng.state()
    turbines = {t.id: t for t in site.turbines}
    groups: dict[str, ah.UnitGroup] = {}
    for name in members["turbine"]:
        s = st["turbines"][name]
        if s["status"] != "online":
            continue
        m = site.turbine_model(turbines[name])
        key = group_name(m.id)
        if key not in groups:
            gov = ah.Tgov1(r=m.droop_pct / 100.0, t1_s=m.tgov1_t1_s, t2_s=m.tgov1_t2_s, t3_s=m.tgov1_t3_s,
                           dt=m.tgov1_dt_pu, vmax_pu=m.tgov1_vmax_pu, vmin_pu=m.tgov1_vmin_pu,
                           deadband_hz=m.gov_deadband_hz)
            groups[key] = ah.UnitGroup(key, 0, m.p_iso_mw, m.p_iso_mw / m.pf, m.h_s, s["p_mech_mw"], gov)
        g = groups[key]
        if abs(s["p_mech_mw"] - g.p0_mw) > 1e-6 * max(1.0, g.p0_mw):
            raise ValueError(f"units of model {key} are dispatched unequally; group them by dispatch")
        g.count += 1
    bess = []
    by_id = {b.id: b for b in site.bess}
    for name in members["bess"]:
        b = by_id[name]
        bess.append(ah.Bess(name.replace("/", "-"), b.units * b.unit_p_mw, b.droop_pct / 100.0,
                            getattr(b, "deadband_hz", DEADBAND_HZ), b.response_s, st["bess"][name]["p_mw"],
                            b.freq_filter_s))
    return ah.Island(groups=list(groups.values()), p_load_mw=0.0, bess=bess)


def group_name(model_id: str) -> str:
    """ANDES group (and device-name prefix) of the units of a turbine model."""
    return model_id.replace("/", "-")


def _flat(segs: list[dict], key: str, i: int) -> np.ndarray:
    return np.concatenate([s[key][:, :, i].reshape(-1) for s in segs])


def run_engine(eng, island: str, it_change: dict[str, float] | None = None) -> EngineRun:
    """Run ``eng`` to its horizon (events applied by :meth:`Engine.segments`; ``it_change`` = hall IT
    [MW] set at :data:`T_EVENT_S`), return the island's COI frequency per sub-step and its load."""
    import time

    isl = island_from_engine(eng, island)
    i = eng.plant.names["island"].index(island)
    f0 = eng.state()["islands"][island]["f_hz"]
    n_event = int(round(T_EVENT_S / eng.step_s))
    w0 = time.perf_counter()
    segs = []
    for seg in eng.segments():
        segs.append(seg)
        if it_change and eng.k == n_event:
            eng.set_inputs(p_it_mw=it_change)
    wall = time.perf_counter() - w0
    f = _flat(segs, "f_sub_hz", i)
    p_load = _flat(segs, "p_load_sub_mw", i)
    h = eng.step_s / eng.n_sub
    t_end = h * np.arange(1, f.size + 1)
    traj = ah.Trajectory(np.insert(t_end, 0, 0.0), np.insert(f, 0, f0))
    # ANDES starts from a power flow, i.e. in balance: its load starts at the engine's generation at
    # t = 0 (set points and batteries as the engine starts them) and steps at once to the engine's load,
    # so that an engine that starts out of balance is reproduced, imbalance included
    isl.p_load_mw = sum(g.count * g.p0_mw for g in isl.groups) + sum(b.p0_mw for b in isl.bess)
    steps = load_profile(p_load, h)
    if abs(p_load[0] - isl.p_load_mw) > 1e-6:
        steps.insert(0, (0.0, float(p_load[0])))
    return EngineRun(traj, isl, steps, _flat(segs, "p_mech_sub_mw", i), _flat(segs, "p_bess_sub_mw", i), wall)


def load_profile(p_load_mw: np.ndarray, h_s: float, tol_mw: float = 1e-6) -> list[tuple[float, float]]:
    """The engine's load per sub-step as ANDES load settings: ``(start of sub-step, MW)`` wherever
    the load changes by more than ``tol_mw`` (the first value is the initial load, not a step)."""
    steps = []
    last = p_load_mw[0]
    for k in range(1, p_load_mw.size):
        if abs(p_load_mw[k] - last) > tol_mw:
            steps.append((k * h_s, float(p_load_mw[k])))
            last = p_load_mw[k]
    return steps


def andes_for(run: EngineRun, trip_group: str | None = None, tstep_s: float = ah.TSTEP_S) -> ah.Trajectory:
    """ANDES's COI frequency for the island and load of an engine run (plus a trip at T_EVENT_S)."""
    dist = ah.Disturbance(load_steps=run.load_steps)
    if trip_group is not None:
        dist.t_trip_s, dist.trip_group = T_EVENT_S, trip_group
    return ah.run_island(run.island, dist, tf_s=float(run.traj.t_s[-1]), tstep_s=tstep_s)


# ---------------------------------------------------------------------------------- the three cases
def case_a(tmp_dir: Path) -> tuple[EngineRun, ah.Trajectory]:
    """(a) Four identical TGOV1 units, constant-power load 120 → 135 MW at 5 s."""
    eng = make_engine(SINGLE_SITE, [{"at": "00:00:05", "do": "set", "target": "single/base", "value": 135.0}])
    run = run_engine(eng, "single")
    return run, andes_for(run)


ISLAND_B = "colossus2+southaven"


def build_case_b(tmp_dir: Path, which: str, horizon_s: float = HORIZON_S):
    """The engine of case (b) with its disturbance: ``(engine, hall IT at the event or None, group
    of the tripped unit or None)``; ``which = "trip"`` (the first online Titan 350) or ``"checkpoint"``
    (−85 MW IT)."""
    from sites import load_site

    path = memphis_tgov1_site(tmp_dir)
    if which == "trip":
        site = load_site(path)
        isl = next(i for i in site.islands() if i.name == ISLAND_B)
        first = next(t for t in site.turbines if t.id in isl.turbines and t.state == "online" and t.model.endswith("/titan350"))
        return (make_engine(path, [{"at": "00:00:05", "do": "trip", "target": first.id}], horizon_s), None,
                group_name(first.model))
    eng = make_engine(path, horizon_s=horizon_s)
    halls = eng.island_members()[ISLAND_B]["hall"]
    return eng, {h: eng.op.p_it_mw[h] - CHECKPOINT_DROP_MW / len(halls) for h in halls}, None


def case_b(tmp_dir: Path, which: str) -> tuple[EngineRun, ah.Trajectory]:
    """(b) Colossus 2 + Southaven: ``which = "trip"`` (one Titan 350) or ``"checkpoint"`` (−85 MW IT)."""
    eng, it_change, trip_group = build_case_b(tmp_dir, which)
    run = run_engine(eng, ISLAND_B, it_change=it_change)
    return run, andes_for(run, trip_group=trip_group)


def case_c(tmp_dir: Path) -> tuple[EngineRun, ah.Trajectory, float]:
    """(c) Kundur two-area: PQ_0 +150 MW at 5 s; ANDES runs the bundled case itself.

    ANDES starts in balance (its power flow); when the engine does not (its initial set points leave
    out its losses), the engine's imbalance at t = 0 is added to ANDES's loads right after the start,
    as case (b) replays it.

    Returns our run, ANDES's trajectory and ANDES's initial generation (load + losses) [MW].
    """
    path = tmp_dir / "kundur.toml"
    path.write_text(kundur_site_toml())
    load_id = "kundur/" + KUNDUR_LOAD.lower().replace("_", "-")
    p0 = next(ld["p_mw"] for ld in ah.kundur_data()["loads"] if ld["idx"] == KUNDUR_LOAD)
    eng = make_engine(path, [{"at": "00:00:05", "do": "set", "target": load_id, "value": p0 + KUNDUR_STEP_MW}])
    run = run_engine(eng, "kundur")
    # the engine's imbalance at t = 0 (its load incl. losses minus its initial set points), given to ANDES
    imbalance = run.load_steps[0][1] - run.island.p_load_mw if run.load_steps and run.load_steps[0][0] == 0.0 else 0.0
    ref, p_gen0 = ah.run_kundur(KUNDUR_LOAD, KUNDUR_STEP_MW, T_EVENT_S, float(run.traj.t_s[-1]),
                                initial_step_mw=imbalance)
    return run, ref, p_gen0
