"""ANDES side of the island-frequency validation: build islands in ANDES, run them, measure them.

ANDES (``pip install andes``, a dev dependency) is the independent dynamic reference of the project:
a differential-algebraic phasor simulator with its own generator, governor and converter models,
integrated by the implicit trapezoidal rule. This module builds the same islands the engine runs,
from the same data, and returns the centre-of-inertia (COI) frequency on ANDES's time grid.

How an island is represented in ANDES
-------------------------------------
* **Units**: one ``GENCLS`` (classical machine, ``M = 2·H`` on ``Sn = S``, ``D = 0``) per unit, each on
  its own terminal bus tied to the island bus by a lossless reactance, with a ``TGOV1`` governor whose
  ``Tn`` is the unit's MW base, so that ``R``, ``VMAX``, ``VMIN`` and ``Dt`` are per unit of that base
  as in :func:`twin.turbines.tgov1_params`. A speed deadband uses ``TGOV1DB`` (``dbL``/``dbU`` in pu).
* **Loads**: one ``PQ`` at the island bus, constant power in the time domain (``p2p = q2q = 1``; by
  default ANDES turns PQ loads into impedances when the simulation starts). Steps alter ``Ppf``.
* **Network**: lossless, so the PQ is the island's whole electrical load; the caller passes the load
  *including* the losses its own model carries.
* **Grid-following BESS**, as the engine's yard (:mod:`twin.storage`): frequency measurement
  ``T_m`` → droop ``R_b`` beyond a deadband ``db`` → power response lag ``τ``. In ANDES the WECC
  generic chain, each block given its part of that: a ``BusFreq`` at the battery's bus is the
  measurement (angle filter ``Tf`` plus the washout ``Tw`` = :data:`BESS_WASHOUT_S` that turns the
  angle into a frequency: ``Tf + Tw = T_m``) → ``REPCA1`` (plant control: frequency droop
  ``Dup = Ddn = P_rated/R_b`` on the system base, deadband ``fdbd = ±db/f0``, line power feedback
  off, PI reduced to a unit gain, output lag ``Tg``) → ``REECA1`` (electrical control: lags
  ``tpfilt`` and ``Tpord`` on the power order) → ``REGCA1`` (converter current lag ``Tg``). The
  response ``τ`` is the sum of the lags after the droop: ``REPCA1.Tg`` and ``Tpord`` are
  :data:`BESS_MINOR_LAG_S` (the engine has no counterpart), ``tpfilt`` is ANDES's fixed 0.02 s (its
  value is read when ANDES builds the model: setting the config afterwards does not reach the
  equations, so it is read back from the model), and the converter lag takes the rest. REECA1's
  active-current floor, fixed at 0 for a generator, is opened after initialisation so that the
  battery can charge (REEC_C's ``Ipmin = −Ipmax``). ANDES's ``ESD1`` was not used: its droop (from
  ``PVD1``) answers over-frequency only.
* **COI frequency** ``f0·Σ M_i·ω_i / Σ M_i`` over the units online after the disturbance.

Metrics (:func:`metrics`) follow the acceptance of the comparison: nadir, time of nadir, RoCoF over a
500 ms window, settling frequency (mean of the last 5 s) and the RMS difference of two trajectories.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "F0_HZ", "TSTEP_S", "BESS_MINOR_LAG_S", "Tgov1", "UnitGroup", "Bess", "Island", "Disturbance",
    "Trajectory", "build_island", "run_island", "run_kundur", "kundur_data", "coi_frequency",
    "nadir_hz", "time_of_nadir_s", "rocof_hz_per_s", "settling_hz", "rms_difference_hz", "metrics",
]

F0_HZ = 60.0
#: Compile ANDES's model equations with numba (1) or run them as numpy code (0).
ANDES_NUMBA = 1
#: Fixed ANDES time step [s]: 1/60 s, a third of the engine's 50 ms sub-step. On case (b) it is
#: within 5e-4 Hz (nadir), 0.01 s (its time), 0.2 % (RoCoF) and 1e-5 Hz (settling) of 1/120 s, in half
#: the time.
TSTEP_S = 1.0 / 60.0
#: ``REPCA1.Tg`` and ``REECA1.Tpord``, lags the engine does not have [s] (see the module docstring):
#: short, but long enough for the 1/60 s step (the trapezoidal rule damps a lag's own mode by
#: |1 − h/2T|/(1 + h/2T) = 0.25 per step). With 0.01 s the checkpoint zenith moves 0.004 Hz up.
BESS_MINOR_LAG_S = 0.005
#: Washout of the bus-frequency measurement [s] (part of the measurement time constant).
BESS_WASHOUT_S = 0.01
#: ANDES acts on no event at t = 0: a load step at t = 0 is applied at this time [s].
T_EVENT_MIN_S = 1e-4
#: ANDES system base [MVA].
SB_MVA = 100.0
#: Terminal reactance of a unit to the island bus [pu on SB_MVA] (lossless; shapes no COI dynamics,
#: but a battery measures its bus frequency, whose angle moves across this and XD1_PU with the
#: machines' power: on the checkpoint zenith ≈0.002 Hz against a stiff network of 0.001 pu).
X_TIE_PU = 0.01
#: Active-current floor of a battery's REECA1 [pu] (see :func:`run_island`).
IP_FLOOR_PU = 999.0
#: Transient reactance of the classical machines [pu on their Sn].
XD1_PU = 0.2


@dataclass
class Tgov1:
    """TGOV1 data, per unit of the unit's MW base (as :func:`twin.turbines.tgov1_params`)."""

    r: float
    t1_s: float
    t2_s: float
    t3_s: float
    dt: float = 0.0
    vmax_pu: float = 1.0
    vmin_pu: float = 0.0
    deadband_hz: float = 0.0


@dataclass
class UnitGroup:
    """``count`` identical online units: MW base ``p_base_mw``, rating ``s_mva``, inertia ``h_s``."""

    name: str
    count: int
    p_base_mw: float
    s_mva: float
    h_s: float
    p0_mw: float  # output of each unit before the disturbance
    gov: Tgov1


@dataclass
class Bess:
    """A grid-following battery: droop ``r`` [pu], deadband [Hz], power response lag [s] and
    frequency-measurement filter [s] (:mod:`twin.storage`)."""

    name: str
    p_rated_mw: float
    r: float
    deadband_hz: float
    response_s: float
    p0_mw: float = 0.0
    freq_filter_s: float = 0.0


@dataclass
class Island:
    """Units, batteries and the island's electrical load incl. losses [MW] before the disturbance."""

    groups: list[UnitGroup]
    p_load_mw: float
    bess: list[Bess] = field(default_factory=list)


@dataclass
class Disturbance:
    """What happens after the start: the trip of the first unit of group ``trip_group`` at
    ``t_trip_s`` and/or the island load set to ``p_mw`` at each ``(t_s, p_mw)`` of ``load_steps``
    (the load is held between them, as the engine holds it over its sub-steps)."""

    t_trip_s: float | None = None
    trip_group: str = ""
    load_steps: list[tuple[float, float]] = field(default_factory=list)

    @classmethod
    def load_step(cls, t_s: float, p_before_mw: float, delta_mw: float) -> "Disturbance":
        return cls(load_steps=[(t_s, p_before_mw + delta_mw)])

    @classmethod
    def trip(cls, t_s: float, group: str) -> "Disturbance":
        return cls(t_trip_s=t_s, trip_group=group)


@dataclass
class Trajectory:
    """A frequency trajectory: times [s] and frequency [Hz], strictly increasing times."""

    t_s: np.ndarray
    f_hz: np.ndarray
    wall_s: float = 0.0  # wall time of the time-domain run alone
    p_mech_mw: np.ndarray | None = None  # total turbine mechanical power [MW] (TGOV1 output)
    p_bess_mw: np.ndarray | None = None  # total battery output [MW]


def _quiet():
    import andes

    andes.config_logger(stream_level=logging.ERROR)
    return andes


def _configure(ss, tf_s: float, tstep_s: float) -> None:
    """Constant-power loads in the time domain; fixed step; no progress bar; no angle criterion
    (a tripped machine's angle drifts and would stop the run); ANDES's numba JIT of the model
    equations (compiled once into ANDES's cache, about twice as fast afterwards)."""
    ss.runtime.numba = ANDES_NUMBA
    for k, v in {"p2p": 1.0, "p2i": 0.0, "p2z": 0.0, "q2q": 1.0, "q2i": 0.0, "q2z": 0.0, "pq2z": 0}.items():
        setattr(ss.PQ.config, k, v)
    for k, v in {"tf": tf_s, "tstep": tstep_s, "fixt": 1, "shrinkt": 0, "no_tqdm": 1, "criteria": 0}.items():
        setattr(ss.TDS.config, k, v)


def _unit_id(group: str, k: int) -> str:
    return f"{group}-{k + 1:02d}"


def build_island(island: Island, dist: Disturbance, tf_s: float, tstep_s: float = TSTEP_S):
    """An ANDES ``System`` of ``island`` with ``dist`` scheduled, set up and power-flow solved.

    Raises ``RuntimeError`` when the power flow does not converge.
    """
    andes = _quiet()
    ss = andes.System(default_config=True)
    _configure(ss, tf_s, tstep_s)
    # REECA1's power-reference filter: its time constant is fixed when ANDES builds the model (a
    # config value, 0.02 s by default: setting the config afterwards does not reach the equations)
    tpfilt = float(ss.REECA1.pfilt.T.v)
    vn = 13.8
    ss.add("Bus", dict(idx=1, name="island", Vn=vn, v0=1.0))
    nb = 1
    slack = True
    p_gen = 0.0
    for g in island.groups:
        gov = g.gov
        for k in range(g.count):
            nb += 1
            uid = _unit_id(g.name, k)
            ss.add("Bus", dict(idx=nb, name=uid, Vn=vn, v0=1.0))
            ss.add("Line", dict(idx=f"tie-{uid}", bus1=nb, bus2=1, Vn1=vn, Vn2=vn, r=0.0, x=X_TIE_PU, b=0.0))
            sg = dict(idx=f"sg-{uid}", bus=nb, Sn=g.s_mva, Vn=vn, p0=g.p0_mw / SB_MVA, q0=0.0, v0=1.0,
                      pmax=99.0, pmin=-99.0, qmax=99.0, qmin=-99.0)
            ss.add("Slack" if slack else "PV", sg)
            slack = False
            p_gen += g.p0_mw
            ss.add("GENCLS", dict(idx=uid, bus=nb, gen=f"sg-{uid}", Sn=g.s_mva, Vn=vn, M=2.0 * g.h_s, D=0.0,
                                  ra=0.0, xd1=XD1_PU))
            tg = dict(idx=f"gov-{uid}", syn=uid, Tn=g.p_base_mw, R=gov.r, T1=gov.t1_s, T2=gov.t2_s, T3=gov.t3_s,
                      Dt=gov.dt, VMAX=gov.vmax_pu, VMIN=gov.vmin_pu)
            if gov.deadband_hz > 0.0:
                db = gov.deadband_hz / F0_HZ
                ss.add("TGOV1DB", dict(tg, dbL=-db, dbU=db))
            else:
                ss.add("TGOV1", tg)
    for b in island.bess:
        nb += 1
        ss.add("Bus", dict(idx=nb, name=b.name, Vn=vn, v0=1.0))
        ss.add("Line", dict(idx=f"tie-{b.name}", bus1=nb, bus2=1, Vn1=vn, Vn2=vn, r=0.0, x=X_TIE_PU, b=0.0))
        ss.add("PV", dict(idx=f"sg-{b.name}", bus=nb, Sn=b.p_rated_mw, Vn=vn, p0=b.p0_mw / SB_MVA, q0=0.0,
                          v0=1.0, pmax=99.0, pmin=-99.0, qmax=99.0, qmin=-99.0))
        p_gen += b.p0_mw
        lag = BESS_MINOR_LAG_S
        # measurement T_m = angle filter + washout; response τ = converter lag + the other lags
        t_filt = b.freq_filter_s - BESS_WASHOUT_S
        t_conv = b.response_s - 2.0 * lag - tpfilt
        if t_filt <= 0.0 or t_conv <= 0.0:
            raise ValueError(f"{b.name}: measurement {b.freq_filter_s} s or response {b.response_s} s too short for "
                             f"the ANDES chain (washout {BESS_WASHOUT_S} s, lags 2 × {lag} + {tpfilt} s)")
        ss.add("REGCA1", dict(idx=f"reg-{b.name}", bus=nb, gen=f"sg-{b.name}", Sn=b.p_rated_mw, Tg=t_conv,
                              Rrpwr=999.0, Lvplsw=0))
        ss.add("REECA1", dict(idx=f"ree-{b.name}", reg=f"reg-{b.name}", PFFLAG=0, VFLAG=0, QFLAG=0, PFLAG=0,
                              PQFLAG=1, Tpord=lag, PMAX=1.0, PMIN=-1.0, Imax=999.0, dPmax=999.0, dPmin=-999.0,
                              Vdip=-1.0, Vup=99.0))
        ss.add("BusFreq", dict(idx=f"bf-{b.name}", bus=nb, Tf=t_filt, Tw=BESS_WASHOUT_S))
        d_sys = b.p_rated_mw / SB_MVA / b.r  # pu power (system base) per pu frequency
        ss.add("REPCA1", dict(idx=f"rep-{b.name}", ree=f"ree-{b.name}", line=f"tie-{b.name}", busf=f"bf-{b.name}",
                              VCFlag=0, RefFlag=0, Fflag=1, PLflag=0, Kp=0.0, Ki=0.0, Kpg=1.0, Kig=0.0,
                              Tg=lag, fdbd1=-b.deadband_hz / F0_HZ,
                              fdbd2=b.deadband_hz / F0_HZ, femax=99.0, femin=-99.0, Pmax=999.0, Pmin=-999.0,
                              Ddn=d_sys, Dup=d_sys))
    ss.add("PQ", dict(idx="load", bus=1, Vn=vn, p0=island.p_load_mw / SB_MVA, q0=0.0))
    for k, (t_s, p_mw) in enumerate(dist.load_steps):
        ss.add("Alter", dict(idx=f"load-{k}", model="PQ", dev="load", src="Ppf", attr="v", method="=",
                             amount=p_mw / SB_MVA, t=max(t_s, T_EVENT_MIN_S)))
    if dist.t_trip_s is not None:
        ss.add("Toggle", dict(idx="trip", model="GENCLS", dev=_unit_id(dist.trip_group, 0), t=dist.t_trip_s))
    ss.setup()
    ss.PFlow.run()
    if not ss.PFlow.converged:
        raise RuntimeError("ANDES power flow of the island did not converge")
    return ss


def coi_frequency(ss, exclude: tuple[str, ...] = ()) -> Trajectory:
    """COI frequency [Hz] of the synchronous machines of a solved ``System``, ``exclude`` left out,
    with the total TGOV1 output and battery output [MW] when there are any.

    Samples at repeated times (ANDES stores both sides of an event) keep the last value.
    """
    ts = ss.dae.ts
    t = np.asarray(ts.t, dtype=float)
    num = np.zeros_like(t)
    den = 0.0
    for name in ("GENCLS", "GENROU"):
        mdl = getattr(ss, name)
        if mdl.n == 0:
            continue
        om = np.asarray(ts.x[:, mdl.omega.a], dtype=float)
        m = np.array([0.0 if idx in exclude else mdl.M.v[i] for i, idx in enumerate(mdl.idx.v)])
        num += om @ m
        den += m.sum()
    f = F0_HZ * num / den
    p_mech = np.zeros_like(t)
    for name in ("TGOV1", "TGOV1DB"):
        mdl = getattr(ss, name)
        if mdl.n:
            keep_u = np.array([0.0 if syn in exclude else 1.0 for syn in mdl.syn.v])
            p_mech += np.asarray(ts.y[:, mdl.pout.a], dtype=float) @ keep_u * SB_MVA
    p_bess = np.asarray(ts.y[:, ss.REGCA1.Pe.a], dtype=float).sum(axis=1) * SB_MVA if ss.REGCA1.n else None
    keep = np.append(np.diff(t) > 1e-12, True)
    t, f, p_mech = t[keep], f[keep], p_mech[keep]
    p_bess = None if p_bess is None else p_bess[keep]
    if t[0] > 0.0:  # ANDES stores from the first step on; the run starts in steady state at ω = 1
        t, f = np.insert(t, 0, 0.0), np.insert(f, 0, F0_HZ)
        p_mech = np.insert(p_mech, 0, p_mech[0])
        p_bess = None if p_bess is None else np.insert(p_bess, 0, p_bess[0])
    return Trajectory(t, f, p_mech_mw=p_mech, p_bess_mw=p_bess)


def run_island(island: Island, dist: Disturbance, tf_s: float, tstep_s: float = TSTEP_S) -> Trajectory:
    """Build, initialise and run ``island`` with ``dist``; return its COI frequency [Hz]."""
    import time

    ss = build_island(island, dist, tf_s, tstep_s)
    ss.TDS.init()
    if ss.REECA1.n:
        # REECA1 fixes the active-current floor at 0 (a generator); a battery charges, as in REEC_C
        # (Ipmin = −Ipmax): open the floor (the PMIN = −1 pu power limit still bounds the order)
        ss.REECA1.Ipmin.v[:] = -IP_FLOOR_PU
        # the equivalence with the engine's yard: the chain's lags, as ANDES integrates them, add up to
        # the yard's measurement + response time (a time constant ANDES did not take would break it)
        tf = ss.dae.Tf
        chain = sum(tf[blk.a] for blk in (ss.BusFreq.L_y, ss.BusFreq.WO_x, ss.REPCA1.s6_y, ss.REECA1.pfilt_y,
                                          ss.REECA1.s5_y, ss.REGCA1.S0_y))
        want = np.array([b.freq_filter_s + b.response_s for b in island.bess])
        if not np.allclose(chain, want, rtol=0.0, atol=1e-9):
            raise RuntimeError(f"ANDES battery chain lags sum to {chain} s, the yards' to {want} s")
    w0 = time.perf_counter()
    ss.TDS.run()
    wall = time.perf_counter() - w0
    exclude = (_unit_id(dist.trip_group, 0),) if dist.t_trip_s is not None else ()
    tr = coi_frequency(ss, exclude)
    tr.wall_s = wall
    return tr


# ---------------------------------------------------------------------------------- Kundur two-area
KUNDUR_CASE = "kundur/kundur_full.xlsx"


def _kundur_system(setup: bool):
    andes = _quiet()
    ss = andes.load(andes.get_case(KUNDUR_CASE), setup=False, no_output=True, default_config=True)
    ss.Toggle.u.v[:] = [0] * len(ss.Toggle.u.v)  # the case's own line trip is not ours
    if setup:
        ss.setup()
    return ss


def kundur_data() -> dict:
    """The bundled Kundur two-area case's data as plain records (for building our site from it).

    Returns ``{"buses": [...], "lines": [...], "loads": [...], "gens": [...]}`` with ANDES's per-unit
    values converted to MW, Mvar, ohms and nF; ``gens`` carry ``S``, ``H``, dispatch and TGOV1 data.
    """
    ss = _kundur_system(setup=True)
    ss.PFlow.run()
    buses = [dict(idx=i, vn_kv=float(vn)) for i, vn in zip(ss.Bus.idx.v, ss.Bus.Vn.v)]
    vn_of = {b["idx"]: b["vn_kv"] for b in buses}
    lines = []
    for i in range(ss.Line.n):
        b1, b2 = ss.Line.bus1.v[i], ss.Line.bus2.v[i]
        r, x, b = (float(getattr(ss.Line, k).v[i]) for k in ("r", "x", "b"))  # system base after setup
        lines.append(dict(idx=ss.Line.idx.v[i], bus1=b1, bus2=b2, vn1_kv=vn_of[b1], vn2_kv=vn_of[b2], r_pu=r,
                          x_pu=x, b_pu=b))
    loads = [dict(idx=ss.PQ.idx.v[i], bus=ss.PQ.bus.v[i], p_mw=float(ss.PQ.p0.v[i]) * SB_MVA,
                  q_mvar=float(ss.PQ.q0.v[i]) * SB_MVA) for i in range(ss.PQ.n)]
    gen_p = {}
    for m in (ss.PV, ss.Slack):
        for i in range(m.n):
            gen_p[m.idx.v[i]] = float(m.p.v[i]) * SB_MVA
    gov = {ss.TGOV1.syn.v[i]: i for i in range(ss.TGOV1.n)}
    gens = []
    g = ss.GENROU
    for i in range(g.n):
        k = gov[g.idx.v[i]]
        sn = float(g.Sn.v[i])
        gens.append(dict(
            idx=g.idx.v[i], bus=g.bus.v[i], s_mva=sn, h_s=float(g.M.v[i]) * SB_MVA / sn / 2.0,
            p_mw=gen_p[g.gen.v[i]],
            # TGOV1 per unit of the machine base (Tn unset → Sn), undoing ANDES's system-base conversion
            r=float(ss.TGOV1.R.v[k]) * sn / SB_MVA, t1_s=float(ss.TGOV1.T1.v[k]), t2_s=float(ss.TGOV1.T2.v[k]),
            t3_s=float(ss.TGOV1.T3.v[k]), dt=float(ss.TGOV1.Dt.v[k]) * SB_MVA / sn,
            vmax_pu=float(ss.TGOV1.VMAX.v[k]) * SB_MVA / sn, vmin_pu=float(ss.TGOV1.VMIN.v[k]) * SB_MVA / sn,
        ))
    return {"buses": buses, "lines": lines, "loads": loads, "gens": gens}


def run_kundur(load_idx: str, delta_mw: float, t_s: float, tf_s: float, tstep_s: float = TSTEP_S,
               initial_step_mw: float = 0.0):
    """The bundled Kundur case (GENROU, EXDC2, TGOV1) with constant-power loads and a load step.

    ``initial_step_mw`` is drawn right after the start by loads at the generators' terminals (shared by
    rating), to give ANDES the same initial imbalance as a model whose initial set points fall short of
    its load: at the terminals it changes no flow in the network, hence no loss.

    Returns ``(trajectory, p_elec_mw)``: the COI frequency and the generators' total electrical
    output before the step (load plus losses).
    """
    import time

    ss = _kundur_system(setup=False)
    _configure(ss, tf_s, tstep_s)
    ss.add("Alter", dict(idx="step", model="PQ", dev=load_idx, src="Ppf", attr="v", method="+",
                         amount=delta_mw / SB_MVA, t=t_s))
    if initial_step_mw:
        sn = np.asarray(ss.GENROU.Sn.v, dtype=float)
        vn = dict(zip(ss.Bus.idx.v, ss.Bus.Vn.v))
        for k, bus in enumerate(ss.GENROU.bus.v):
            ss.add("PQ", dict(idx=f"start-{k}", bus=bus, Vn=vn[bus], p0=0.0, q0=0.0))
            ss.add("Alter", dict(idx=f"start-{k}", model="PQ", dev=f"start-{k}", src="Ppf", attr="v", method="=",
                                 amount=initial_step_mw * sn[k] / sn.sum() / SB_MVA, t=T_EVENT_MIN_S))
    ss.setup()
    ss.PFlow.run()
    if not ss.PFlow.converged:
        raise RuntimeError("ANDES power flow of the Kundur case did not converge")
    ss.TDS.init()
    p_elec = float(np.sum(ss.GENROU.Pe.v)) * SB_MVA
    w0 = time.perf_counter()
    ss.TDS.run()
    wall = time.perf_counter() - w0
    tr = coi_frequency(ss)
    tr.wall_s = wall
    return tr, p_elec


# ---------------------------------------------------------------------------------------- metrics
def nadir_hz(t_s, f_hz, t0_s: float = 0.0) -> float:
    """Lowest frequency after ``t0_s`` (the highest for an over-frequency event: use ``-f``)."""
    return float(np.min(f_hz[t_s >= t0_s]))


def time_of_nadir_s(t_s, f_hz, t0_s: float = 0.0) -> float:
    """Time of the nadir after ``t0_s`` [s] (first occurrence)."""
    m = t_s >= t0_s
    return float(t_s[m][np.argmin(f_hz[m])])


def rocof_hz_per_s(t_s, f_hz, window_s: float = 0.5) -> float:
    """Largest ``|f(t) − f(t − window)|/window`` over the trajectory [Hz/s], ``f(t − window)``
    interpolated linearly."""
    m = t_s >= t_s[0] + window_s
    back = np.interp(t_s[m] - window_s, t_s, f_hz)
    return float(np.max(np.abs(f_hz[m] - back)) / window_s)


def settling_hz(t_s, f_hz, last_s: float = 5.0) -> float:
    """Mean frequency over the last ``last_s`` seconds (time-weighted, trapezoidal) [Hz]."""
    m = t_s >= t_s[-1] - last_s - 1e-9
    return float(np.trapezoid(f_hz[m], t_s[m]) / (t_s[m][-1] - t_s[m][0]))


def rms_difference_hz(a: Trajectory, b: Trajectory, t0_s: float, t1_s: float, dt_s: float = 0.01) -> float:
    """RMS of ``a − b`` on a common grid of ``dt_s`` over ``[t0_s, t1_s]`` (linear interpolation) [Hz]."""
    grid = np.arange(t0_s, t1_s + 1e-9, dt_s)
    d = np.interp(grid, a.t_s, a.f_hz) - np.interp(grid, b.t_s, b.f_hz)
    return float(np.sqrt(np.mean(d * d)))


def metrics(tr: Trajectory, t_event_s: float, under: bool = True) -> dict[str, float]:
    """Nadir (or zenith for ``under=False``), its time after the event, RoCoF (500 ms) and settling."""
    s = 1.0 if under else -1.0
    t, f = tr.t_s, tr.f_hz
    return {
        "nadir_hz": s * nadir_hz(t, s * f, t_event_s),
        "t_nadir_s": time_of_nadir_s(t, s * f, t_event_s) - t_event_s,
        "rocof_hz_s": rocof_hz_per_s(t, f),
        "settling_hz": settling_hz(t, f),
    }
