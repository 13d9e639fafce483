"""Thermal RC network (twin.thermal) against closed forms and an independent ODE solver."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from twin import thermal as th
from twin.thermal import NODE_AIR, NODE_FWS, NODE_GPU, NODE_TCS

IMPLS = ["numba", "python"]


def impl(fn, which):
    return fn if which == "numba" else fn.py_func


# A 75 MW-liquid hall: 50,000 GPUs at 1.2 kW, defaults of PHYSICS.md §6
N_GPU = 50_000
P_GPU, Q_TCS, Q_AIR = 60.0, 15.0, 10.0
G_JC = th.gpu_conductance_mw_per_k(N_GPU)
UA_CDU = th.cdu_conductance_mw_per_k(P_GPU + Q_TCS)
UA_CRAH = Q_AIR / 8.0
C_J = th.C_GPU_MJ_PER_K * N_GPU
C_TCS = th.C_TCS_MJ_PER_K_PER_MW * (P_GPU + Q_TCS)
C_AIR = 300.0
C_FWS = th.C_FWS_MJ_PER_K_PER_MW * (P_GPU + Q_TCS + Q_AIR)


def steady(t_fws=30.0):
    t = np.empty(4)
    th.hall_thermal_steady_state(t_fws, P_GPU, Q_TCS, Q_AIR, G_JC, UA_CDU, UA_CRAH, t)
    return t


def test_default_gpu_time_constant_in_physics_range():
    """τ_j = R_jc·C_j per GPU must sit in PHYSICS.md's 2–10 s."""
    tau = C_J / G_JC
    assert 2.0 <= tau <= 10.0


@pytest.mark.parametrize("which", IMPLS)
def test_throttle_factor_breakpoints(which):
    g = impl(th.gpu_throttle_factor, which)
    assert g(60.0) == 1.0 and g(84.99) == 1.0
    assert g(87.0) == pytest.approx(0.8)  # halfway down the linear 1 → 0.6 ramp
    assert g(88.999) == pytest.approx(0.6, abs=1e-3)
    assert 0.4 <= g(89.0) <= 0.5 and 0.4 <= g(91.0) <= 0.5
    assert g(92.0) == 0.0 and g(120.0) == 0.0
    ts = np.linspace(60, 91.9, 500)
    assert np.all(np.diff([g(t) for t in ts]) <= 0.0)  # monotone non-increasing


@pytest.mark.parametrize("which", IMPLS)
def test_expm_small_matches_scipy(which):
    rng = np.random.default_rng(1)
    for scale in (0.1, 1.0, 30.0):
        a = rng.normal(size=(5, 5)) * scale
        out = np.empty((5, 5))
        impl(th.expm_small, which)(a, out)
        ref = expm(a)
        assert np.max(np.abs(out - ref)) <= 1e-9 * max(1.0, np.max(np.abs(ref)))


@pytest.mark.parametrize("which", IMPLS)
def test_gpu_node_step_response_closed_form(which):
    """(a) GPU power step with the coolant held: T_j(t) = T_tcs + P·R·(1 − e^(−t/τ)) + (T_j0 − T_tcs)·e^(−t/τ).

    The TCS is made a boundary (C ≤ 0); τ = C_j/G_jc. Stepped at 1 s, compared every second for 60 s.
    """
    step = impl(th.hall_thermal_step, which)
    t = np.array([40.0, 40.0, 30.0, 30.0])
    tau = C_J / G_JC
    err = 0.0
    for k in range(1, 61):
        step(t, P_GPU, 0.0, 0.0, 0.0, C_J, -1.0, -1.0, -1.0, G_JC, UA_CDU, UA_CRAH, 1.0, t)
        exact = 40.0 + P_GPU / G_JC * (1.0 - math.exp(-k / tau))
        err = max(err, abs(t[NODE_GPU] - exact))
        assert t[NODE_TCS] == 40.0  # boundary held
    assert err < 0.1
    assert err < 1e-9  # the update is exact, not just within tolerance


@pytest.mark.parametrize("which", IMPLS)
def test_coupled_network_matches_ode_solver(which):
    """(a) Four coupled nodes after a load step, stepped at 1 s, against scipy's RK45 at rtol 1e-10."""
    t0 = steady()
    p_new = 1.3 * P_GPU  # step up the GPU power; chillers keep rejecting the old heat
    q_rej = P_GPU + Q_TCS + Q_AIR
    args = (p_new, Q_TCS, Q_AIR, q_rej, C_J, C_TCS, C_AIR, C_FWS, G_JC, UA_CDU, UA_CRAH)

    def rhs(_, y):
        tj, tt, ta, tf = y
        qjt = G_JC * (tj - tt)
        qtf = UA_CDU * (tt - tf)
        qaf = UA_CRAH * (ta - tf)
        return [(p_new - qjt) / C_J, (qjt + Q_TCS - qtf) / C_TCS, (Q_AIR - qaf) / C_AIR, (qtf + qaf - q_rej) / C_FWS]

    n = 300
    sol = solve_ivp(rhs, (0, n), t0, t_eval=np.arange(1, n + 1), rtol=1e-10, atol=1e-10, method="Radau")
    t = t0.copy()
    step = impl(th.hall_thermal_step, which)
    err = 0.0
    for k in range(n):
        step(t, *args, 1.0, t)
        err = max(err, np.max(np.abs(t - sol.y[:, k])))
    assert err < 0.1
    assert t[NODE_GPU] > t0[NODE_GPU] + 10.0  # the step did something


@pytest.mark.parametrize("which", IMPLS)
def test_large_step_is_stable_and_reaches_steady_state(which):
    """dt far above τ_j: the exact update lands on the steady state instead of blowing up."""
    t = np.array([25.0, 25.0, 25.0, 30.0])
    ref = steady(30.0)
    step = impl(th.hall_thermal_step, which)
    for _ in range(50):
        step(t, P_GPU, Q_TCS, Q_AIR, 0.0, C_J, C_TCS, C_AIR, -1.0, G_JC, UA_CDU, UA_CRAH, 600.0, t)
    assert np.max(np.abs(t - ref)) < 1e-6


@pytest.mark.parametrize("which", IMPLS)
@pytest.mark.parametrize("case", ["chillers_lost", "cdu_pumps_lost"])
def test_loss_of_cooling_time_to_limit(which, case):
    """(b) Time to the GPU limit after a loss of cooling = heat capacity × ΔT / net heat, within 2 %.

    Once the short transient has passed every node that still exchanges heat rises at the common rate
    r = Q/C (C = the heat capacity warming together, Q = the heat into it). The GPU then leads that
    bulk by its quasi-steady offsets, which shrink because part of each heat flow now stays in the
    upstream nodes: T_j − T_tcs = (P_gpu − C_j·r)/G_jc and T_tcs − T_fws = (P_gpu + Q_tcs − (C_j + C_tcs)·r)/UA.
    The bulk must therefore rise ΔT = T_lim − T_bulk,0 − offsets, and t = C·ΔT/Q.

    * chillers lost: C = C_j + C_tcs + C_air + C_fws, Q = P_gpu + Q_tcs + Q_air, bulk = FWS.
    * CDU pumps lost (UA_cdu = 0): C = C_j + C_tcs, Q = P_gpu + Q_tcs, bulk = TCS.
    """
    t0 = steady()
    t_lim = th.T_THROTTLE_C
    if case == "chillers_lost":
        ua, q_rej = UA_CDU, 0.0
        c_tot = C_J + C_TCS + C_AIR + C_FWS
        q = P_GPU + Q_TCS + Q_AIR
        r = q / c_tot
        offset = (P_GPU - C_J * r) / G_JC + (P_GPU + Q_TCS - (C_J + C_TCS) * r) / UA_CDU
        t_bulk0 = t0[NODE_FWS]
    else:
        ua, q_rej = 0.0, P_GPU + Q_TCS + Q_AIR
        c_tot = C_J + C_TCS
        q = P_GPU + Q_TCS
        r = q / c_tot
        offset = (P_GPU - C_J * r) / G_JC
        t_bulk0 = t0[NODE_TCS]
    expected = c_tot * (t_lim - t_bulk0 - offset) / q
    sim = impl(th.simulate_time_to_limit_s, which)
    got = sim(t0, t_lim, P_GPU, Q_TCS, Q_AIR, q_rej, C_J, C_TCS, C_AIR, C_FWS, G_JC, ua, UA_CRAH, 1.0, 1e6)
    assert got == pytest.approx(expected, rel=0.02)
    # the rate of rise sits in PHYSICS.md §6's ranges: FWS +0.3–0.7 K/min, TCS +0.2–0.4 K/s
    if case == "chillers_lost":
        assert 0.3 <= r * 60 <= 0.7
    else:
        assert 0.2 <= r <= 0.4


@pytest.mark.parametrize("which", IMPLS)
def test_time_to_limit_helpers(which):
    lin = impl(th.time_to_limit_linear_s, which)
    rc = impl(th.time_to_limit_rc_s, which)
    assert lin(70.0, 85.0, 300.0, 75.0) == pytest.approx(300.0 * 15.0 / 75.0)
    assert lin(86.0, 85.0, 300.0, 75.0) == 0.0
    assert lin(70.0, 85.0, 300.0, 0.0) == math.inf
    # rc: T(t) = T∞ + (T0 − T∞)e^(−t/τ) reaches the limit at the returned time
    t = rc(40.0, 80.0, 100.0, 5.0)
    assert 100.0 + (40.0 - 100.0) * math.exp(-t / 5.0) == pytest.approx(80.0)
    assert rc(40.0, 80.0, 70.0, 5.0) == math.inf


@pytest.mark.parametrize("which", IMPLS)
def test_chiller_heat_rejection_controller(which):
    f = impl(th.chiller_heat_rejection_mw, which)
    assert f(80.0, 30.0, 30.0, 1e4, 600.0, 100.0) == pytest.approx(80.0)  # on set point: follow the load
    assert f(80.0, 31.0, 30.0, 1.2e4, 600.0, 200.0) == pytest.approx(100.0)  # 1 K above: +C/τ
    assert f(80.0, 35.0, 30.0, 1.2e4, 600.0, 90.0) == 90.0  # capacity-limited
    assert f(10.0, 20.0, 30.0, 1.2e4, 600.0, 90.0) == 0.0  # never heats


def test_chiller_loop_returns_fws_to_set_point():
    """Closed loop (thermal step + chiller controller): FWS 2 K above set point relaxes exponentially.

    The controller removes C_fws·(T − T_set)/τ beyond the incoming heat, but the upstream nodes ride
    on the FWS temperature and cool with it, so the whole C_tot relaxes: τ_eff = τ·C_tot/C_fws.
    """
    t = steady(32.0)
    q_in = P_GPU + Q_TCS + Q_AIR
    for _ in range(600):
        q_rej = th.chiller_heat_rejection_mw(q_in, t[NODE_FWS], 30.0, C_FWS, 600.0, 200.0)
        th.hall_thermal_step(t, P_GPU, Q_TCS, Q_AIR, q_rej, C_J, C_TCS, C_AIR, C_FWS, G_JC, UA_CDU, UA_CRAH, 1.0, t)
    c_tot = C_J + C_TCS + C_AIR + C_FWS
    assert t[NODE_FWS] - 30.0 == pytest.approx(2.0 * math.exp(-600.0 / (600.0 * c_tot / C_FWS)), rel=0.01)
    assert t[NODE_AIR] > t[NODE_FWS]
