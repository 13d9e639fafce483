"""Island frequency (twin.frequency): swing equation, governors and batteries against closed forms.

:func:`swing_step` and :func:`inertial_power_mw` are tested alone; :func:`island_step` through small
hand-built :mod:`twin.state` bundles (one island, identical GGOV1 units, optionally a battery), against
the closed forms of docs/physics.md §4. The engine-level runs of island_step (ideal governors, the
single-unit island stepped by hand, energy balance per sub-step) are in test_engine.py and
test_engine_dynamics.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin import frequency as fq
from twin import plant as pl
from twin import state as s
from twin import turbines as tb
from twin.storage import BA_NCOL, bess_lag_factors

IMPLS = ["numba", "python"]
F0 = 60.0


def impl(fn, which):
    return fn if which == "numba" else fn.py_func


@pytest.mark.parametrize("which", IMPLS)
def test_rocof_example_from_physics(which):
    """docs/physics.md §4: 1.2 GVA of turbines, H = 3 s, 100 MW step ⇒ RoCoF = f0·ΔP/(2·H·S) = 0.83 Hz/s.

    By hand: 60·100/(2·3·1200) = 0.8333 Hz/s; swing_step reports it as its initial rate, and the kinetic
    power at that rate is the 100 MW that the rotors cover.
    """
    hs = 4 * 3.0 * 300.0  # four 300 MVA units at H = 3 s
    by_hand = 60.0 * 100.0 / (2.0 * 3.0 * 1200.0)
    assert by_hand == pytest.approx(0.83, abs=0.005)
    out = np.empty(3)
    impl(fq.swing_step, which)(0.0, 500.0, 600.0, hs, 0.0, 0.0, F0, 0.02, out)
    assert out[2] == pytest.approx(-by_hand, rel=1e-12)
    assert impl(fq.inertial_power_mw, which)(hs, out[2], F0) == pytest.approx(100.0, rel=1e-12)


@pytest.mark.parametrize("which", IMPLS)
def test_inertial_power_sign_and_size(which):
    """−2·H·S·(df/dt)/f0: released (> 0) while the frequency falls, absorbed while it rises."""
    f = impl(fq.inertial_power_mw, which)
    assert f(1000.0, -0.3, 60.0) == pytest.approx(10.0)
    assert f(1000.0, 0.3, 60.0) == pytest.approx(-10.0)
    assert f(1000.0, -0.3, 50.0) == pytest.approx(12.0)
    assert f(0.0, -5.0, 60.0) == 0.0


@pytest.mark.parametrize("which", IMPLS)
@pytest.mark.parametrize("d_load", [0.0, 1.5])
def test_load_step_with_instantaneous_droop_first_order(which, d_load):
    """(c) Load step ΔP on an island of ideal droop governors: a first-order response.

    Swing equation (docs/physics.md §4) with M = 2·ΣH·S/f0 [MW·s/Hz], droop stiffness K = ΣP_rated/(R·f0)
    [MW/Hz] and load damping P_L·D/f0 [MW/Hz]:

        M·dΔf/dt = −ΔP − (K + P_L·D/f0)·Δf,   Δf(0) = 0
        ⇒ Δf(t) = Δf_ss·(1 − e^(−t/T)),  Δf_ss = −ΔP/(K + P_L·D/f0),  T = M/(K + P_L·D/f0)

    Here 4 × 50 MW at H = 5 s, R = 4 %: K = 83.3 MW/Hz, M = 33.3 MW·s/Hz, T = 0.4 s (D = 0); P_L is the
    load after the step (128 MW).
    swing_step runs on 50 ms sub-steps, the governors entering as the stiffness K.
    """
    p_rated, n, h_s, r, d_p, p_l = 50.0, 4, 5.0, 0.04, 8.0, 120.0
    hs = n * h_s * p_rated
    k = n * fq.droop_stiffness_mw_per_hz(p_rated, r, F0)
    assert k == pytest.approx(200.0 / (0.04 * 60.0))
    b = k + (p_l + d_p) * d_load / F0  # the load after the step is damped
    m = 2.0 * hs / F0
    step = impl(fq.swing_step, which)
    out = np.empty(3)
    df, h, err, dfss = 0.0, 0.05, 0.0, -d_p / b
    for j in range(1, 101):
        step(df, p_l, p_l + d_p, hs, k, d_load, F0, h, out)
        if j == 1:
            assert out[2] == pytest.approx(-F0 * d_p / (2 * hs))  # initial RoCoF
        # the step mean is the exact mean of the exponential over the sub-step
        t0 = (j - 1) * h
        mean = dfss * (1.0 - m / (b * h) * (math.exp(-t0 * b / m) - math.exp(-(t0 + h) * b / m)))
        assert out[1] == pytest.approx(mean, rel=1e-9, abs=1e-12)
        df = out[0]
        exact = dfss * (1.0 - math.exp(-j * h * b / m))
        err = max(err, abs(df - exact) / abs(dfss))
    assert err < 1e-9  # exact with the inputs held, not just within a tolerance
    assert df == pytest.approx(dfss, rel=0.005)


@pytest.mark.parametrize("which", IMPLS)
def test_swing_step_ramp_mean_and_no_inertia(which):
    step = impl(fq.swing_step, which)
    out = np.empty(3)
    step(0.0, 100.0, 110.0, 500.0, 0.0, 0.0, F0, 1.0, out)  # no feedback: a ramp of −ΔP·f0/(2·H·S)
    assert out[0] == pytest.approx(-10.0 * F0 / 1000.0) and out[1] == pytest.approx(0.5 * out[0])
    step(0.0, 100.0, 110.0, 0.0, 0.0, 0.0, F0, 1.0, out)
    assert out[2] == -math.inf and out[0] == 0.0
    step(0.0, 110.0, 100.0, 0.0, 0.0, 0.0, F0, 1.0, out)
    assert out[2] == math.inf
    step(0.0, 100.0, 100.0, 0.0, 0.0, 0.0, F0, 1.0, out)
    assert out[2] == 0.0


@pytest.mark.parametrize("which", IMPLS)
def test_grid_tied_balance(which):
    f = impl(fq.grid_tied_balance_mw, which)
    assert f(100.0, 150.0, 0.0, 0.0, F0) == 50.0
    assert f(100.0, 150.0, -0.6, 1.5, F0) == pytest.approx(150.0 * (1 - 1.5 * 0.01) - 100.0)


# ---------------------------------------------------------------------------------------------------
# island_step through hand-built bundles: n identical GGOV1 units of 50 MW, H = 5 s, R = 4 %
P_RATED, H_S, N_UNITS, H_SUB, N_SUB = 50.0, 5.0, 4, 0.02, 50


def make_island(p0_pu=0.6, bess=None, tied=False, n=N_UNITS):
    """Params/State bundles of one island with ``n`` GGOV1 units at ``p0_pu`` and optional batteries.

    ``bess`` is a list of dicts with p_mw, droop, gfm, h_v_s, response_s (deadband 0.036 Hz, SoC 0.5).
    """
    turb = np.zeros((n, pl.TU_NCOL))
    turb[:, pl.TU_P_ISO_MW], turb[:, pl.TU_H_S], turb[:, pl.TU_S_MVA] = P_RATED, H_S, P_RATED
    turb[:, pl.TU_GOV], turb[:, pl.TU_DROOP] = tb.GOV_GGOV1, 0.04
    gov = np.array([tb.ggov1_params(r=0.04) for _ in range(n)])
    st_gov = np.zeros((n, tb.GX_NSTATE))
    for u in range(n):
        tb.governor_prepare(tb.GOV_GGOV1, gov[u], H_SUB)
        tb.governor_init(tb.GOV_GGOV1, st_gov[u], gov[u], p0_pu)
    st_turb = np.zeros((n, s.ST_NCOL))
    st_turb[:, s.ST_STATUS] = tb.STATUS_ONLINE
    st_turb[:, s.ST_PM] = st_turb[:, s.ST_PREF] = p0_pu * P_RATED
    st_turb[:, s.ST_DERATE] = 1.0
    bess = bess or []
    b_par = np.zeros((len(bess), pl.BE_NCOL))
    st_b = np.zeros((len(bess), s.SB_NCOL))
    for j, b in enumerate(bess):
        b_par[j, pl.BE_P_MW], b_par[j, pl.BE_E_MWH] = b["p_mw"], 2.0 * b["p_mw"]
        b_par[j, pl.BE_ETA_C] = b_par[j, pl.BE_ETA_D] = 0.95
        b_par[j, pl.BE_SOC_MIN], b_par[j, pl.BE_SOC_MAX], b_par[j, pl.BE_SOC0] = 0.05, 0.95, 0.5
        b_par[j, pl.BE_DROOP], b_par[j, pl.BE_MODE] = b["droop"], 1
        b_par[j, pl.BE_RESPONSE_S], b_par[j, pl.BE_DEADBAND_HZ] = b.get("response_s", 0.2), 0.036
        b_par[j, pl.BE_GFM], b_par[j, pl.BE_H_V_S] = b.get("gfm", 0.0), b.get("h_v_s", 0.0)
        st_b[j, [s.SB_SOC, s.SB_P, s.SB_OK, s.SB_DERATE]] = [0.5, 0.0, 1.0, 1.0]
    ctrl = pl.protection_ctrl()  # the default relay settings (sites.schema.Protection)
    ctrl[pl.CT_ROCOF_SHORT_S], ctrl[pl.CT_ROCOF_LONG_S] = 0.1, 0.5
    isl = np.zeros((1, s.SI_NCOL))
    isl[0, s.SI_TIED] = 1.0 if tied else 0.0
    z = np.zeros((0, 1))
    par = s.Params(turb=turb, gov=gov, bess=b_par, hall=z, plant=z, chiller=z, grid=z, curves=np.zeros((1, 15)),
                   curve_ranges=np.zeros((1, 4)), ctrl=ctrl)
    st = s.State(turb=st_turb, gov=st_gov, bess=st_b, hall=z, plant=z, chiller=z, isl=isl, grid=z,
                 ufls_timer=np.zeros((1, 5)), ring=np.full((1, s.RING_N), F0))
    return par, st


#: The sequence-of-events table island_step appends to (the engine's is per segment).
EVENTS, N_EVENTS = np.zeros((64, s.EV_NCOL)), np.zeros(1, np.int64)


def run_island(which, par, st, load_mw, n_steps):
    """Advance the island ``n_steps`` 1 s steps with a constant load; returns per-step (out, pm_mean, pb_mean, Δf)."""
    n_t, n_b = par.turb.shape[0], par.bess.shape[0]
    step = impl(fq.island_step, which)
    units, counts = np.arange(n_t, dtype=np.int64), np.ones(n_t)
    bess = np.arange(n_b, dtype=np.int64)
    bess_a = np.zeros((n_b, BA_NCOL))
    for b in range(n_b):
        bess_lag_factors(par.bess[b], H_SUB, 1.0, bess_a[b])
    e3 = np.zeros((0, 0, 0))
    sub = s.SubOutputs(e3, e3, e3, e3, e3, e3)
    it = np.full(N_SUB, float(load_mw))
    p_av = np.full(n_t, P_RATED)
    sched = np.zeros(n_b)
    keep, pm, pb, out, sw = np.ones(N_SUB), np.zeros(n_t), np.zeros(n_b), np.zeros(fq.ISL_NOUT), np.zeros(3)
    rec = []
    for _ in range(n_steps):
        online = st.turb[:, s.ST_STATUS] == tb.STATUS_ONLINE  # as the engine regroups after a trip
        step(0, N_SUB, H_SUB, par, st, units[online], counts[online], st.turb[:, s.ST_PREF], p_av, sched, bess, bess_a, it, 0.0, 0.0,
             keep, pm, pb, out, sub, 0, sw, EVENTS, N_EVENTS)
        rec.append((out.copy(), pm.copy(), pb.copy(), st.isl[0, s.SI_DF]))
    return rec


@pytest.mark.parametrize("which", IMPLS)
def test_ggov1_island_load_step_droop_and_rocof(which):
    """(c) 4 × 50 MW GGOV1 units at 30 MW take an 8 MW load step on 20 ms sub-steps.

    RoCoF(0+) = −f0·ΔP/(2·ΣH·S) = 0.24 Hz/s: the first 100 ms window sees it within 0.2 % (measured
    0.2399; the governors barely move in 0.1 s). In steady state every governor sits on its droop line and data-centre load
    has no damping (D = 0), so Δf_ss = −ΔP/(ΣP_rated/(R·f0)) = −0.096 Hz (within 1e-4 after 60 s), and ΣPm = the load.
    """
    par, st = make_island()
    d_p = 8.0
    rec = run_island(which, par, st, 120.0 + d_p, 60)
    hs = N_UNITS * H_S * P_RATED
    assert rec[0][0][fq.ISL_ROCOF_SHORT] == pytest.approx(F0 * d_p / (2 * hs), rel=2e-3)
    assert rec[0][0][fq.ISL_ROCOF_LONG] < rec[0][0][fq.ISL_ROCOF_SHORT]  # the governors catch the fall
    dfss = -d_p / (N_UNITS * P_RATED / (0.04 * F0))
    assert rec[-1][3] == pytest.approx(dfss, rel=1e-4)
    assert rec[-1][1].sum() == pytest.approx(120.0 + d_p, rel=1e-6)  # units share the step and balance the load
    assert np.ptp(rec[-1][1]) == 0.0  # identical units, identical share
    nadir = min(r[0][fq.ISL_F_MIN_HZ] for r in rec) - F0
    assert nadir < dfss  # governor lag: the nadir undershoots the settled value
    assert rec[0][0][fq.ISL_KIN_MW] > 0.0  # rotors released energy while the frequency fell
    assert rec[0][0][fq.ISL_LOAD_MW] == pytest.approx(128.0)


@pytest.mark.parametrize("which", IMPLS)
def test_identical_units_stepped_once_equal_units_stepped_each(which):
    """One unit standing for 4 (counts = 4) gives the same island as 4 units stepped each."""
    par4, st4 = make_island()
    rec4 = run_island(which, par4, st4, 128.0, 5)
    par1, st1 = make_island()
    step = impl(fq.island_step, which)
    e3 = np.zeros((0, 0, 0))
    sub = s.SubOutputs(e3, e3, e3, e3, e3, e3)
    pm, out = np.zeros(N_UNITS), np.zeros(fq.ISL_NOUT)
    for k in range(5):
        step(0, N_SUB, H_SUB, par1, st1, np.array([0], np.int64), np.array([4.0]), st1.turb[:, s.ST_PREF],
             np.full(N_UNITS, P_RATED), np.zeros(0), np.zeros(0, np.int64), np.zeros((0, 2)), np.full(N_SUB, 128.0),
             0.0, 0.0, np.ones(N_SUB), pm, np.zeros(0), out, sub, 0, np.zeros(3), EVENTS, N_EVENTS)
        assert st1.isl[0, s.SI_DF] == pytest.approx(rec4[k][3], rel=1e-12)
        assert 4 * pm[0] == pytest.approx(rec4[k][1].sum(), rel=1e-12)


@pytest.mark.parametrize("which", IMPLS)
def test_island_bess_droop_shares_the_step(which):
    """A 20 MW battery at 1 % droop beside the turbines: the settled Δf includes its stiffness beyond the band.

    Turbines give K_t·(−Δf), the battery K_b·(−Δf − db) for Δf < −db; their sum meets ΔP at
    Δf_ss = −(ΔP + K_b·db)/(K_t + K_b); the battery then gives K_b·(−Δf_ss − db).
    """
    par, st = make_island(bess=[dict(p_mw=20.0, droop=0.01)])
    rec = run_island(which, par, st, 128.0, 90)
    k_t = N_UNITS * P_RATED / (0.04 * F0)
    k_b = 20.0 / (0.01 * F0)
    dfss = -(8.0 + k_b * 0.036) / (k_t + k_b)
    assert rec[-1][3] == pytest.approx(dfss, rel=1e-4)
    assert rec[-1][2][0] == pytest.approx(-(dfss + 0.036) / F0 / 0.01 * 20.0, rel=1e-4)
    assert rec[-1][1].sum() + rec[-1][2][0] == pytest.approx(128.0, rel=1e-4)
    assert st.bess[0, s.SB_SOC] < 0.5  # it discharged


@pytest.mark.parametrize("which", IMPLS)
def test_grid_forming_inertia_slows_the_initial_rocof(which):
    """A grid-forming 20 MW battery with H_v = 10 s adds H_v·P = 200 MW·s to the rotors' 1,000:
    RoCoF(0+) = f0·ΔP/(2·1,200) = 0.2 Hz/s, against 0.24 without it (0.2 %)."""
    par, st = make_island(bess=[dict(p_mw=20.0, droop=0.01, gfm=1.0, h_v_s=10.0)])
    rec = run_island(which, par, st, 128.0, 1)
    assert rec[0][0][fq.ISL_ROCOF_SHORT] == pytest.approx(F0 * 8.0 / (2 * 1200.0), rel=2e-3)
    # the battery's inertial share: it delivers power while the frequency falls, inside the droop deadband
    assert rec[0][2][0] > 0.0


@pytest.mark.parametrize("which", IMPLS)
def test_grid_tied_island_holds_frequency_and_imports_the_balance(which):
    par, st = make_island(tied=True)
    rec = run_island(which, par, st, 150.0, 5)
    out, pm, _, df = rec[-1]
    assert df == 0.0 and out[fq.ISL_ROCOF_SHORT] == 0.0
    assert out[fq.ISL_F_MIN_HZ] == F0 and out[fq.ISL_F_MAX_HZ] == F0
    assert pm.sum() == pytest.approx(120.0, rel=1e-9)  # governors at their set points (Δω = 0)
    assert out[fq.ISL_IMPORT_MW] == pytest.approx(150.0 - 120.0, rel=1e-9)


@pytest.mark.parametrize("which", IMPLS)
def test_island_blacks_out_below_the_generator_trip(which):
    """A load step far beyond what the units can carry: the frequency falls through 57 Hz, every unit
    trips and the island goes dark (docs/physics.md §4)."""
    par, st = make_island()
    N_EVENTS[0] = 0
    rec = run_island(which, par, st, 400.0, 3)
    assert rec[0][0][fq.ISL_TRIPPED] == 1.0
    kinds = [int(EVENTS[r, s.EV_CODE]) for r in range(int(N_EVENTS[0]))]
    assert s.EV_BLACKOUT in kinds and EVENTS[kinds.index(s.EV_BLACKOUT), s.EV_VALUE] < 57.0  # logged, with its frequency
    assert rec[0][0][fq.ISL_F_MIN_HZ] < 57.0
    assert st.isl[0, s.SI_BLACKOUT] == 1.0
    assert np.all(st.turb[:, s.ST_STATUS] == tb.STATUS_TRIPPED) and np.all(st.turb[:, s.ST_PM] == 0.0)
    assert rec[-1][0][fq.ISL_LOAD_MW] == 0.0
