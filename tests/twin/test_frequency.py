"""Island frequency (twin.frequency): swing equation with droop governors against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin import frequency as fq
from twin import turbines as tb

IMPLS = ["numba", "python"]
F0 = 60.0


def impl(fn, which):
    return fn if which == "numba" else fn.py_func


def test_rocof_example_from_physics():
    """PHYSICS.md §4: 1.2 GVA of turbines, H = 3 s, 100 MW step ⇒ 0.83 Hz/s."""
    hs = fq.system_inertia_mw_s(np.array([3.0] * 4), np.array([300.0] * 4), np.ones(4, dtype=bool))
    assert hs == 3600.0
    assert abs(fq.rocof_hz_per_s(-100.0, hs, F0)) == pytest.approx(0.83, abs=0.005)
    assert fq.system_inertia_mw_s(np.array([3.0, 5.0]), np.array([300.0, 100.0]), np.array([True, False]), 4.0, 50.0) == 1100.0


@pytest.mark.parametrize("which", IMPLS)
@pytest.mark.parametrize("d_load", [0.0, 1.5])
def test_load_step_with_instantaneous_droop_first_order(which, d_load):
    """(c) Load step ΔP on an island of ideal droop governors: a first-order response.

    Swing equation (PHYSICS.md §4) with M = 2·ΣH·S/f0 [MW·s/Hz], droop stiffness K = ΣP_rated/(R·f0)
    [MW/Hz] and load damping P_L·D/f0 [MW/Hz]:

        M·dΔf/dt = −ΔP − (K + P_L·D/f0)·Δf,   Δf(0) = 0
        ⇒ Δf(t) = Δf_ss·(1 − e^(−t/T)),  Δf_ss = −ΔP/(K + P_L·D/f0),  T = M/(K + P_L·D/f0)

    Here 4 × 50 MW at H = 5 s, R = 4 %: K = 83.3 MW/Hz, M = 33.3 MW·s/Hz, T = 0.4 s (D = 0).
    swing_step runs on 50 ms sub-steps, the governors entering as the stiffness K.
    """
    p_rated, n, h_s, r, d_p, p_l = 50.0, 4, 5.0, 0.04, 8.0, 120.0
    hs = n * h_s * p_rated
    k = n * fq.droop_stiffness_mw_per_hz(p_rated, r, F0)
    b = k + p_l * d_load / F0
    m = 2.0 * hs / F0
    step = impl(fq.swing_step, which)
    out = np.empty(3)
    df, h, err, dfss = 0.0, 0.05, 0.0, -d_p / b
    for j in range(1, 101):
        step(df, p_l, p_l + d_p, hs, k, d_load, F0, h, out)
        if j == 1:
            assert out[2] == pytest.approx(-F0 * d_p / (2 * hs))  # initial RoCoF
        df = out[0]
        exact = dfss * (1.0 - math.exp(-j * h * b / m))
        err = max(err, abs(df - exact) / abs(dfss))
    assert err < 0.005
    assert df == pytest.approx(dfss, rel=0.005)


@pytest.mark.parametrize("which", IMPLS)
def test_swing_step_mean_and_no_inertia(which):
    step = impl(fq.swing_step, which)
    out = np.empty(3)
    step(0.0, 100.0, 110.0, 500.0, 0.0, 0.0, F0, 1.0, out)  # no feedback: a ramp
    assert out[0] == pytest.approx(-10.0 * F0 / 1000.0) and out[1] == pytest.approx(0.5 * out[0])
    step(0.0, 100.0, 110.0, 0.0, 0.0, 0.0, F0, 1.0, out)
    assert out[2] == -math.inf


def make_island(n=4, p_rated=50.0, h_s=5.0, p0=0.6):
    par = np.array([tb.ggov1_params() for _ in range(n)])
    x = np.zeros((n, tb.GX_NSTATE))
    for u in range(n):
        tb.ggov1_init(x[u], par[u], p0)
    return dict(x=x, par=par, pset=np.full(n, p0), base=np.full(n, p_rated), hs=np.full(n, h_s * p_rated),
                online=np.ones(n, dtype=bool))


def run_island(which, isl, p_load, n_s, d_load=0.0, bess=None, tied=False, df_grid=0.0, n_sub=50):
    e = np.zeros(0)
    b = bess or dict(sched=e, soc=e, p=e, smin=e, smax=e, r=e, db=e, hv=e, imax=e)
    step = impl(fq.island_step, which)
    out = np.empty(fq.ISL_NOUT)
    pm = np.empty(isl["x"].shape[0])
    pb = np.empty(b["sched"].shape[0])
    df, rec = 0.0, []
    for _ in range(n_s):
        step(df, tied, df_grid, isl["x"], isl["par"], isl["pset"], isl["base"], isl["hs"], isl["online"],
             b["sched"], b["soc"], b["p"], b["smin"], b["smax"], b["r"], b["db"], b["hv"], b["imax"],
             p_load, d_load, F0, 1.0, n_sub, pm, pb, out)
        df = out[fq.ISL_DF_HZ]
        rec.append((out.copy(), pm.copy(), pb.copy()))
    return rec


@pytest.mark.parametrize("which", IMPLS)
@pytest.mark.parametrize("d_load", [0.0, 1.5])
def test_ggov1_island_load_step_droop_and_rocof(which, d_load):
    """(c) GGOV1 governors on 20 ms sub-steps: initial RoCoF and settled Δf match closed forms (0.5 %).

    RoCoF(0+) = −f0·ΔP/(2·ΣH·S); in steady state every governor sits on its droop line
    (P_i = P_set − (Δf/f0)/R·P_rated) and the load on its damping line, so
    Δf_ss = −ΔP/(ΣP_rated/(R·f0) + P_L·D/f0).
    """
    isl = make_island()
    p_l0 = 120.0
    d_p = 8.0
    rec = run_island(which, isl, p_l0 + d_p, 60, d_load)
    hs = isl["hs"].sum()
    assert rec[0][0][fq.ISL_ROCOF_MAX] == pytest.approx(F0 * d_p / (2 * hs), rel=0.005)
    k = 200.0 / (0.04 * F0)
    dfss = -d_p / (k + p_l0 * d_load / F0)
    assert rec[-1][0][fq.ISL_DF_HZ] == pytest.approx(dfss, rel=0.005)
    # the units share the step by rating and the energy balances: ΣPm = load at the new frequency
    assert rec[-1][1].sum() == pytest.approx((p_l0 + d_p) * (1 + d_load * dfss / F0), rel=1e-4)
    # nadir below the settled value (governor lag), but well above UFLS
    assert min(r[0][fq.ISL_DF_MIN_HZ] for r in rec) < dfss


@pytest.mark.parametrize("which", IMPLS)
def test_island_bess_droop_shares_the_step(which):
    """A 20 MW BESS at 1 % droop beside the turbines: the settled Δf includes its stiffness beyond the band.

    Turbines give K_t·(−Δf), the BESS K_b·(−Δf − db) for Δf < −db; their sum meets ΔP at
    Δf_ss = −(ΔP + K_b·db)/(K_t + K_b).
    """
    isl = make_island()
    one = lambda v: np.array([v])
    bess = dict(sched=one(0.0), soc=one(0.5), p=one(20.0), smin=one(0.05), smax=one(0.95), r=one(0.01),
                db=one(0.036), hv=one(0.0), imax=one(1.0))
    rec = run_island(which, isl, 128.0, 90, bess=bess)
    k_t = 200.0 / (0.04 * F0)
    k_b = 20.0 / (0.01 * F0)
    dfss = -(8.0 + k_b * 0.036) / (k_t + k_b)
    assert rec[-1][0][fq.ISL_DF_HZ] == pytest.approx(dfss, rel=0.005)
    assert rec[-1][2][0] == pytest.approx(-(dfss + 0.036) / F0 / 0.01 * 20.0, rel=0.005)


@pytest.mark.parametrize("which", IMPLS)
def test_grid_tied_island_holds_frequency(which):
    isl = make_island()
    rec = run_island(which, isl, 150.0, 5, tied=True, df_grid=-0.01)
    out, pm, _ = rec[-1]
    assert out[fq.ISL_DF_HZ] == -0.01 and out[fq.ISL_ROCOF_MAX] == 0.0
    assert pm.sum() + out[fq.ISL_P_GRID_MW] == pytest.approx(150.0)
    assert pm.sum() > 120.0  # governors answer the −0.01 Hz grid deviation (droop: +0.83 MW/unit at steady state)
