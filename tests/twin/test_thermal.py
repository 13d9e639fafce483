"""Thermal RC network (twin.thermal) against closed forms and an independent ODE solver.

The engine runs, per step and hall, :func:`hall_thermal_step` (GPU node with the loop held, loop with
the facility water held), then per plant :func:`chiller_heat_rejection_mw` and :func:`fws_step`
(twin.stepping ``_thermal_cooling_stage``). The tests below step those functions the same way.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

from twin import thermal as th

IMPLS = ["numba", "python"]


def impl(fn, which):
    return fn if which == "numba" else fn.py_func


# An 85 MW hall: 50,000 GPUs at 1.2 kW, defaults of docs/physics.md §6
N_GPU = 50_000
P_GPU, Q_LIQ, Q_AIR = 60.0, 75.0, 10.0  # GPU heat, liquid-captured heat (GPU + 15 MW other), air heat [MW]
G_JC = th.gpu_conductance_mw_per_k(N_GPU)  # 2 MW/K
UA_CDU = th.cdu_conductance_mw_per_k(Q_LIQ)  # 6 MW/K
C_J = th.C_GPU_MJ_PER_K * N_GPU  # 10 MJ/K  -> τ_j = 5 s
C_TCS = th.C_TCS_MJ_PER_K_PER_MW * Q_LIQ  # 300 MJ/K -> τ_tcs = 50 s
C_FWS = th.C_FWS_MJ_PER_K_PER_MW * (Q_LIQ + Q_AIR)  # 11,900 MJ/K -> τ_fws = C_fws/UA ≈ 2,000 s


def steady(t_fws=30.0, p_gpu=P_GPU, q_liq=Q_LIQ):
    out = np.empty(2)
    th.hall_thermal_steady_state(t_fws, p_gpu, q_liq, G_JC, UA_CDU, out)
    return out  # [T_j, T_tcs]


def test_default_constants_in_physics_ranges():
    """τ_j = R_jc·C_j per GPU in docs/physics.md's 2–10 s; G and UA by hand from the documented constants."""
    assert 2.0 <= C_J / G_JC <= 10.0
    assert G_JC == pytest.approx(50_000 / 0.025 * 1e-6)  # n/R_jc [MW/K]
    assert UA_CDU == pytest.approx(0.8 * 75.0 / 10.0)  # ε·Q_design/ΔT_flow
    assert C_FWS / UA_CDU > 1000.0  # the facility water is three orders slower than a 1 s step


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
def test_steady_state_by_hand(which):
    out = np.empty(2)
    impl(th.hall_thermal_steady_state, which)(30.0, P_GPU, Q_LIQ, G_JC, UA_CDU, out)
    assert out[1] == pytest.approx(30.0 + 75.0 / 6.0)  # T_tcs = T_fws + Q_liq/UA
    assert out[0] == pytest.approx(30.0 + 75.0 / 6.0 + 60.0 / 2.0)  # T_j = T_tcs + P_gpu/G


@pytest.mark.parametrize("which", IMPLS)
def test_heat_split_by_hand(which):
    f = impl(th.gpu_heat_split_mw, which)
    # 85 MW IT, 15 MW flat rack power: 70 MW GPU; 85 % liquid = 72.25 MW ≥ GPU heat; 12.75 MW to air
    assert f(85.0, 15.0, 0.85) == pytest.approx((70.0, 72.25, 12.75))
    # cold plates take at least the GPU heat: 60 % liquid (51 MW) < 70 MW GPU ⇒ liquid 70, air 15
    assert f(85.0, 15.0, 0.60) == pytest.approx((70.0, 70.0, 15.0))
    # below the flat power: no GPU heat, never negative air heat
    assert f(10.0, 15.0, 0.85) == pytest.approx((0.0, 8.5, 1.5))
    for p_it in (0.0, 10.0, 85.0, 120.0):  # heat is conserved: liquid + air = IT
        _, q_liq, q_air = f(p_it, 15.0, 0.85)
        assert q_liq + q_air == pytest.approx(p_it)


@pytest.mark.parametrize("which", IMPLS)
def test_gpu_node_step_response_closed_form(which):
    """(a) GPU power step with the loop held: T_j(t) = T_tcs + P/G·(1 − e^(−t/τ_j)), exact at every step.

    The loop is held by putting it at the facility water with no heat into it (its target is itself).
    """
    step = impl(th.hall_thermal_step, which)
    out = np.empty(3)
    tj, tt = 40.0, 40.0
    tau = C_J / G_JC
    err = 0.0
    for k in range(1, 61):
        step(tj, tt, 40.0, P_GPU, 0.0, G_JC, C_J, UA_CDU, C_TCS, 1.0, out)
        tj, tt = out[0], out[1]
        assert tt == 40.0 and out[2] == 0.0  # loop held, nothing passed on
        err = max(err, abs(tj - (40.0 + P_GPU / G_JC * (1.0 - math.exp(-k / tau)))))
    assert err < 1e-9  # the update is exact, not just within a tolerance


@pytest.mark.parametrize("which", IMPLS)
@pytest.mark.parametrize("dt", [1.0, 7.0])
def test_loop_step_exact_and_conserves_energy(which, dt):
    """Loop with facility water held after a heat step: exact exponential, and the heat passed on is the
    exact step mean of UA·(T_tcs − T_fws) (quadrature), so C·ΔT = Σ(Q_liq − Q_out)·dt to rounding."""
    step = impl(th.hall_thermal_step, which)
    out = np.empty(3)
    tj, tt0 = steady(30.0)
    tt = tt0
    q_new = 1.3 * Q_LIQ
    x_inf = 30.0 + q_new / UA_CDU
    tau = C_TCS / UA_CDU
    passed = 0.0
    for k in range(1, int(300 / dt) + 1):
        t_prev = tt
        step(tj, tt, 30.0, 1.3 * P_GPU, q_new, G_JC, C_J, UA_CDU, C_TCS, dt, out)
        tj, tt = out[0], out[1]
        assert tt == pytest.approx(x_inf + (tt0 - x_inf) * math.exp(-k * dt / tau), abs=1e-9)
        exact_mean, _ = quad(lambda s: UA_CDU * (x_inf + (t_prev - x_inf) * math.exp(-s / tau) - 30.0), 0.0, dt)
        assert out[2] == pytest.approx(exact_mean / dt, rel=1e-9)
        passed += out[2] * dt
    assert C_TCS * (tt - tt0) == pytest.approx(q_new * k * dt - passed, rel=1e-12, abs=1e-6)


def coupled_run(which, n_s, dt, q_rej_of=None, p_gpu=1.3 * P_GPU, q_liq=1.3 * Q_LIQ, t_fws0=30.0):
    """Step GPU + loop + facility water as twin.stepping does: hall first (FWS held), then chillers, then FWS."""
    step = impl(th.hall_thermal_step, which)
    fws = impl(th.fws_step, which)
    out = np.empty(3)
    tj, tt = steady(t_fws0)
    tf = t_fws0
    rec = []
    for _ in range(int(round(n_s / dt))):
        step(tj, tt, tf, p_gpu, q_liq, G_JC, C_J, UA_CDU, C_TCS, dt, out)
        tj, tt = out[0], out[1]
        q_in = out[2] + Q_AIR
        q_rej = (Q_LIQ + Q_AIR) if q_rej_of is None else q_rej_of(q_in, tf)
        tf = fws(tf, q_in, q_rej, C_FWS, dt)
        rec.append((tj, tt, tf))
    return np.array(rec)


def coupled_reference(n_s, t_eval, p_gpu=1.3 * P_GPU, q_liq=1.3 * Q_LIQ, t_fws0=30.0):
    """docs/physics.md §6 ODEs integrated by scipy (Radau, rtol = atol = 1e-11)."""
    q_rej0 = Q_LIQ + Q_AIR

    def rhs(_, y):
        tj, tt, tf = y
        q_cdu = UA_CDU * (tt - tf)
        dtf = (q_cdu + Q_AIR - q_rej0) / C_FWS
        return [(p_gpu - G_JC * (tj - tt)) / C_J, (q_liq - q_cdu) / C_TCS, dtf]

    y0 = [*steady(t_fws0), t_fws0]
    sol = solve_ivp(rhs, (0, n_s), y0, t_eval=t_eval, rtol=1e-11, atol=1e-11, method="Radau")
    assert sol.success
    return sol.y.T


@pytest.mark.parametrize("which", IMPLS)
def test_coupled_network_matches_ode_solver(which):
    """(a) GPU + loop + facility water after a 30 % load step, chillers holding the old duty, stepped at 1 s
    with the splitting, against scipy's Radau (rtol = atol = 1e-11) over an hour.

    Measured: |error| 2.3e-5 K on the facility water, 9e-4 K on the loop, 0.03 K on the GPU in the first
    seconds (the loop rises at 0.07 K/s then and the GPU node sees it held at the step's start) and
    1.9e-3 K after 5 min (the whole hall then rises with the water at 1.8e-3 K/s: one step's lag). The
    splitting error is small because each node is advanced exactly and its downstream neighbour moves
    slowly beside it: τ_fws = C_fws/UA ≈ 2,000 s ≫ dt, τ_tcs = 50 s ≫ dt. It is O(dt): the same run at
    0.25 s steps has a quarter of it.
    """
    n = 3600
    ref = coupled_reference(n, np.arange(1, n + 1))
    got = coupled_run(which, n, 1.0)
    err = np.abs(got - ref)
    assert err[:, 2].max() < 5e-5
    assert err[:, 1].max() < 2e-3
    assert err[:, 0].max() < 0.05
    assert err[300:, 0].max() < 3e-3
    assert got[-1, 2] - 30.0 > 5.0  # the step did something: the water warms ≈6.5 K in the hour
    fine = coupled_run(which, n, 0.25)[3::4]
    assert np.abs(fine - ref).max() < 0.3 * err.max()  # first order in dt


@pytest.mark.parametrize("which", IMPLS)
def test_closed_loop_with_chiller_controller_matches_ode_solver(which):
    """Chiller controller in the loop (no cap, no ramp limit): the FWS 2 K above its set point relaxes as
    e^(−t/τ) with τ = CHILLER_TAU_S (the controller rejects the inflow plus C_fws·ΔT/τ); the hall nodes ride
    on it. Stepped at 1 s as the engine does: the facility water is forward Euler of that decay,
    (1 − dt/τ)^k, within 1e-3 K of the exponential over 30 min."""
    f = impl(th.chiller_heat_rejection_mw, which)

    def ctrl(q_in, tf):
        return f(q_in, tf, 30.0, C_FWS, th.CHILLER_TAU_S, 1e9)

    n = 1800
    tj, tt = steady(32.0)
    step, fws = impl(th.hall_thermal_step, which), impl(th.fws_step, which)
    out = np.empty(3)
    tf = 32.0
    for k in range(1, n + 1):
        step(tj, tt, tf, P_GPU, Q_LIQ, G_JC, C_J, UA_CDU, C_TCS, 1.0, out)
        tj, tt = out[0], out[1]
        q_in = out[2] + Q_AIR
        tf = fws(tf, q_in, ctrl(q_in, tf), C_FWS, 1.0)
        exact = 30.0 + 2.0 * math.exp(-k / th.CHILLER_TAU_S)
        assert tf == pytest.approx(exact, abs=1e-3)
    assert tt == pytest.approx(tf + Q_LIQ / UA_CDU, abs=0.01)  # the loop rides on the facility water


@pytest.mark.parametrize("which", IMPLS)
@pytest.mark.parametrize("dt", [60.0, 600.0, 1e5])
def test_large_step_is_stable_and_reaches_steady_state(which, dt):
    """dt far above τ_j and τ_tcs: the exact update lands on the steady state instead of blowing up."""
    step = impl(th.hall_thermal_step, which)
    out = np.empty(3)
    tj, tt = 25.0, 25.0
    for _ in range(50):
        step(tj, tt, 30.0, P_GPU, Q_LIQ, G_JC, C_J, UA_CDU, C_TCS, dt, out)
        tj, tt = out[0], out[1]
        assert 25.0 - 1e-9 <= tt and tj <= steady(30.0)[0] + 1e-9  # monotone, no overshoot
    assert np.max(np.abs(np.array([tj, tt]) - steady(30.0))) < 1e-9
    assert out[2] == pytest.approx(Q_LIQ, rel=1e-9)  # settled: the loop passes on all it receives


@pytest.mark.parametrize("which", IMPLS)
def test_loss_of_cooling_time_to_limit(which):
    """(b) Chillers lost (capacity 0): time for the GPU to reach the throttling knee = ΣC·ΔT/Q.

    The heat Q = Q_liq + Q_air enters the loop and the facility water, which warm together at
    r = Q/(C_tcs + C_fws) once the loop's 50 s transient has passed (the GPU node does not take heat from
    the loop in this model, docs/physics.md §6: the loop's input is Q_liq). The GPU leads the facility
    water by its quasi-steady offsets, which shrink while everything rises: T_j − T_tcs = (P − C_j·r)/G,
    T_tcs − T_fws = (Q_liq − C_tcs·r)/UA. Energy: C_tcs·ΔT_tcs + C_fws·ΔT_fws = Q·t. So the knee is
    reached at t = [C·(T_lim − T_j0 + C_tcs·r/UA + C_j·r/G) − C_tcs²·r/UA]/Q ≈ 1,848 s, checked within
    0.1 % (measured 1 s late, 5e-4: the GPU node sees the loop held at the step's start, one step behind);
    the textbook form C·(T_lim − T_bulk0 − offsets)/Q within 2 %.
    """
    f = impl(th.chiller_heat_rejection_mw, which)
    tj0, _ = steady(30.0)
    t_lim = th.T_THROTTLE_C
    c = C_TCS + C_FWS
    q = Q_LIQ + Q_AIR
    r = q / c
    rec = coupled_run(which, 4000, 1.0, lambda q_in, tf: f(q_in, tf, 30.0, C_FWS, th.CHILLER_TAU_S, 0.0, q, 0.85, 1.0),
                      p_gpu=P_GPU, q_liq=Q_LIQ)
    reached = int(np.argmax(rec[:, 0] >= t_lim))
    assert reached > 0
    # interpolate the crossing between the two steps around it
    t_hit = reached + (t_lim - rec[reached - 1, 0]) / (rec[reached, 0] - rec[reached - 1, 0])
    exact = (c * (t_lim - tj0 + C_TCS * r / UA_CDU + C_J * r / G_JC) - C_TCS ** 2 * r / UA_CDU) / q
    assert t_hit == pytest.approx(exact, rel=1e-3)
    offsets = (P_GPU - C_J * r) / G_JC + (Q_LIQ - C_TCS * r) / UA_CDU
    assert t_hit == pytest.approx(c * (t_lim - 30.0 - offsets) / q, rel=0.02)
    # the rate of rise sits in docs/physics.md §6's range for the facility water: +0.3–0.7 K/min
    assert 0.3 <= r * 60 <= 0.7
    assert (rec[-1, 2] - rec[-601, 2]) / 600.0 == pytest.approx(r, rel=1e-6)


@pytest.mark.parametrize("which", IMPLS)
def test_chiller_heat_rejection_controller(which):
    """Q = Q_in + C_fws·(T_fws − T_set)/τ within [0, Q_cap], by hand."""
    f = impl(th.chiller_heat_rejection_mw, which)
    assert f(80.0, 30.0, 30.0, 1e4, 600.0, 100.0) == pytest.approx(80.0)  # on set point: follow the load
    assert f(80.0, 31.0, 30.0, 1.2e4, 600.0, 200.0) == pytest.approx(100.0)  # 1 K above: +C/τ = +20 MW
    assert f(80.0, 29.5, 30.0, 1.2e4, 600.0, 200.0) == pytest.approx(70.0)  # 0.5 K below: −10 MW
    assert f(80.0, 35.0, 30.0, 1.2e4, 600.0, 90.0) == 90.0  # capacity-limited
    assert f(10.0, 20.0, 30.0, 1.2e4, 600.0, 90.0) == 0.0  # never heats
    assert f(80.0, 31.0, 30.0, 1.2e4, 600.0, 0.0) == 0.0  # chillers lost


@pytest.mark.parametrize("which", IMPLS)
def test_chiller_loading_rate_limit(which):
    """The duty moves at most ramp·dt per step from the previous one, both ways; q_prev < 0 disables it;
    the capacity still caps it (a trip unloads at once)."""
    f = impl(th.chiller_heat_rejection_mw, which)
    ramp = th.CHILLER_RAMP_FRAC_PER_S * 150.0  # 1 %/s of a 150 MW plant: 1.5 MW/s
    assert ramp == pytest.approx(1.5)
    assert f(100.0, 30.0, 30.0, 1e4, 600.0, 150.0, 50.0, ramp, 1.0) == pytest.approx(51.5)
    assert f(100.0, 30.0, 30.0, 1e4, 600.0, 150.0, 50.0, ramp, 4.0) == pytest.approx(56.0)
    assert f(20.0, 30.0, 30.0, 1e4, 600.0, 150.0, 50.0, ramp, 1.0) == pytest.approx(48.5)
    assert f(50.7, 30.0, 30.0, 1e4, 600.0, 150.0, 50.0, ramp, 1.0) == pytest.approx(50.7)  # within the rate
    assert f(100.0, 30.0, 30.0, 1e4, 600.0, 150.0, -1.0, ramp, 1.0) == pytest.approx(100.0)  # no limit
    assert f(100.0, 30.0, 30.0, 1e4, 600.0, 150.0, 50.0, 0.0, 1.0) == pytest.approx(100.0)  # no limit
    assert f(100.0, 30.0, 30.0, 1e4, 600.0, 0.0, 120.0, ramp, 1.0) == 0.0  # lost: capacity wins
    # loading from zero to a 100 MW duty takes 100/1.5 ≈ 67 s at 1 s steps
    q, n = 0.0, 0
    while q < 100.0 - 1e-9:
        q = f(100.0, 30.0, 30.0, 1e4, 600.0, 150.0, q, ramp, 1.0)
        n += 1
    assert n == math.ceil(100.0 / 1.5)


@pytest.mark.parametrize("which", IMPLS)
def test_fws_step_is_the_energy_balance(which):
    f = impl(th.fws_step, which)
    assert f(30.0, 100.0, 80.0, 1e4, 10.0) == pytest.approx(30.0 + 10.0 * 20.0 / 1e4)
    assert f(30.0, 80.0, 80.0, 1e4, 10.0) == 30.0
