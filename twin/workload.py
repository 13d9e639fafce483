"""AI training and inference load of a data hall, and the GPU power-smoothing filters.

Model from docs/physics.md §1 ("Suggested load model", [E])::

    P_IT(t) = N_gpu·[P_idle + (P_peak − P_idle)·u(t)·g_T(T_j)] + P_static

``u(t)`` is a square wave between ≈1 (compute) and ≈0–0.3 (communication), period 1–10 s with
jitter, synchronised across the hall (tens of thousands of GPUs in lockstep [P1][P2][P3] [S]);
checkpoints every 10–60 min lasting 5–120 s with ``u → 0`` (mechanism [S] [P5], durations [E]); job
start/stop as near-steps (<1–few s) [S] [P2][P5]; an inference share with a daily shape [E]. ``g_T`` is
the thermal throttle (:func:`twin.thermal.gpu_throttle_factor`).

**Step size** (docs/physics.md §0): a 1 s record cannot carry 0.2–3 Hz swings as samples.
:func:`utilisation_profile` therefore evaluates ``u`` on a fine internal grid and returns, per
second, its **mean** (what energy, thermal and the swing equation see) and its **min/max envelope**
(for compliance checks). Band-limited RMS per band is not computed here.

The profile generator is plain numpy (seeded, run once up front; with ``keep_samples`` it also returns
the samples, which the engine uses on its sub-step grid); the kernels (:func:`hall_demand_mw`,
:func:`hall_it_substeps`, :func:`power_smoothing_step`, :func:`psu_storage_step`) are ``@njit`` with
pure-Python twins ``fn.py_func``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._jit import njit
from .plant import CT_PSU, CT_PSU_E_S, CT_PSU_TAU_S, CT_SMOOTH, CT_SMOOTH_DOWN_PER_S, CT_SMOOTH_FLOOR, CT_SMOOTH_HYST_S, CT_SMOOTH_UP_PER_S
from .state import SH_HOLD_S, SH_P_GPU_W, SH_PSU_E_J, SH_PSU_P_W

__all__ = [
    "GB200_TDP_W", "IDLE_FRAC", "STATIC_SHARE", "UtilisationProfile", "utilisation_profile",
    "power_smoothing_step", "psu_storage_step", "hall_demand_mw", "hall_it_substeps",
]

#: GB200 TDP per GPU [W] (docs/physics.md §1 [P6][P14] [S]; Meta provisions 960 W = 80 % TDP).
GB200_TDP_W = 1200.0
#: Idle / communication-phase GPU power as a fraction of TDP, 10–25 % (H800: 75 W at 700 W) [S] [P14],
#: range [E]; middle value.
IDLE_FRAC = 0.15
#: Non-GPU (CPU, NIC, switch, PSU loss) share of rack peak, ≈flat, 20–30 % [E].
STATIC_SHARE = 0.25


class UtilisationProfile(NamedTuple):
    """Per-second GPU utilisation of one hall: mean and min/max envelope [-], each shape (n_s,)."""

    u_mean: np.ndarray
    u_min: np.ndarray
    u_max: np.ndarray
    u_sub: np.ndarray | None = None  # (n_s, samples_per_s) the samples themselves, float32, when asked for


def utilisation_profile(n_s, seed=0, *, period_s=(1.0, 10.0), jitter=0.1, duty=0.7, u_compute=1.0,
                        u_comm=0.1, checkpoint_interval_s=(600.0, 3600.0),
                        checkpoint_duration_s=(5.0, 120.0), u_checkpoint=0.0, jobs_s=None, ramp_s=2.0,
                        inference_share=0.0, inference_mean=0.6, inference_amplitude=0.3,
                        inference_peak_h=15.0, t0_s=0.0, samples_per_s=50, chunk_s=3600, keep_samples=False):
    """Seeded synthetic utilisation ``u(t)`` of a hall, as per-second mean and envelope.

    docs/physics.md §1 suggested load model [E]. Training: the hall runs jobs (``jobs_s``); within a job
    a synchronous square wave alternates compute (``u_compute``) for ``duty`` of each iteration and
    communication (``u_comm``) for the rest; the iteration period is drawn once per job, uniform in
    ``period_s``, and each iteration jitters by a relative normal ``jitter``. Checkpoints every
    ``checkpoint_interval_s`` (uniform) drop ``u`` to ``u_checkpoint`` for ``checkpoint_duration_s``
    (uniform). A job start or stop is a linear ramp over ``ramp_s``. The hall's utilisation is
    ``(1 − s)·u_train + s·u_inf`` with the inference share ``s`` following a daily cosine,
    ``u_inf = clip(m·(1 + A·cos(2π(h − h_peak)/24)), 0, 1)``.

    Parameters
    ----------
    n_s : int
        Number of seconds.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same profile.
    period_s : tuple(float, float)
        Range of the iteration period [s], 1–10 s ("every second or two" [S2] [P8]).
    jitter : float
        Relative standard deviation of each iteration's period [-] [E].
    duty : float
        Compute fraction of an iteration [-] [E].
    u_compute, u_comm : float
        Utilisation in the compute (≈1) and communication (≈0–0.3) phases [-].
    checkpoint_interval_s, checkpoint_duration_s : tuple(float, float)
        Ranges of time between checkpoint starts (10–60 min) and of their length (5–120 s) [s] [E].
    u_checkpoint : float
        Utilisation during a checkpoint write (≈0, fleet at idle) [-].
    jobs_s : array-like of shape (n_jobs, 2), optional
        Job start and stop times [s] from the profile start; ``None`` = one job running throughout
        (no ramps).
    ramp_s : float
        Duration of the start/stop ramp [s] (<1–few s unless rate-limited [S] [P2][P5]).
    inference_share : float
        Share of the hall serving inference [-] [E].
    inference_mean, inference_amplitude, inference_peak_h : float
        Daily shape of inference utilisation: mean [-], relative amplitude [-], hour of peak [h] [E].
    t0_s : float
        Time of day at the profile start [s after midnight] (for the inference shape).
    samples_per_s : int
        Internal samples per second (50 = 20 ms) from which the per-second mean/min/max are taken.
    chunk_s : int
        Seconds evaluated at a time (bounds memory for long horizons).
    keep_samples : bool
        Also return the samples (``u_sub``, float32): the engine drives the swing equation with them,
        sub-step by sub-step, when ``samples_per_s`` equals its sub-steps per second.

    Returns
    -------
    UtilisationProfile
        ``u_mean``, ``u_min``, ``u_max`` per second [-].
    """
    rng = np.random.default_rng(seed)
    n_s = int(n_s)
    horizon = float(n_s)
    jobs = np.array([[-math.inf, math.inf]]) if jobs_s is None else np.asarray(jobs_s, dtype=float).reshape(-1, 2)

    # iteration timeline per job: starts and periods (a fresh phase at each job start)
    it_start, it_period = [], []
    for start, stop in jobs:
        t = max(start, -1.0)
        end = min(stop, horizon + 1.0)
        base = rng.uniform(period_s[0], period_s[1])
        n_est = int((end - t) / (0.5 * base)) + 2
        per = base * (1.0 + jitter * rng.standard_normal(n_est))
        per = np.maximum(per, 0.2 * base)
        starts = t + np.concatenate(([0.0], np.cumsum(per[:-1])))
        keep = starts < end
        it_start.append(starts[keep])
        it_period.append(per[keep])
    it_start = np.concatenate(it_start)
    it_period = np.concatenate(it_period)
    order = np.argsort(it_start, kind="stable")
    it_start, it_period = it_start[order], it_period[order]

    # checkpoint timeline
    n_ck = int(horizon / checkpoint_interval_s[0]) + 2
    gaps = rng.uniform(checkpoint_interval_s[0], checkpoint_interval_s[1], n_ck)
    ck_start = np.cumsum(gaps)
    ck_dur = rng.uniform(checkpoint_duration_s[0], checkpoint_duration_s[1], n_ck)

    u_mean = np.empty(n_s)
    u_min = np.empty(n_s)
    u_max = np.empty(n_s)
    sps = int(samples_per_s)
    u_sub = np.empty((n_s, sps), dtype=np.float32) if keep_samples else None
    for c0 in range(0, n_s, int(chunk_s)):
        c1 = min(c0 + int(chunk_s), n_s)
        t = c0 + (np.arange((c1 - c0) * sps) + 0.5) / sps  # midpoints of the internal samples
        # square wave
        k = np.searchsorted(it_start, t, side="right") - 1
        k = np.clip(k, 0, len(it_start) - 1)
        phase = (t - it_start[k]) / it_period[k]
        u = np.where(phase < duty, u_compute, u_comm)
        # checkpoints
        j = np.searchsorted(ck_start, t, side="right") - 1
        in_ck = (j >= 0) & (t < ck_start[np.clip(j, 0, None)] + ck_dur[np.clip(j, 0, None)])
        u = np.where(in_ck, u_checkpoint, u)
        # job envelope with linear ramps
        env = np.zeros_like(t)
        for start, stop in jobs:
            up = np.clip((t - start) / ramp_s, 0.0, 1.0) if ramp_s > 0 else (t >= start).astype(float)
            dn = np.clip((stop - t) / ramp_s, 0.0, 1.0) if ramp_s > 0 else (t < stop).astype(float)
            env = np.maximum(env, np.minimum(up, dn))
        u = u * env
        if inference_share > 0.0:
            hour = ((t0_s + t) / 3600.0) % 24.0
            u_inf = inference_mean * (1.0 + inference_amplitude * np.cos(2.0 * np.pi * (hour - inference_peak_h) / 24.0))
            u = (1.0 - inference_share) * u + inference_share * np.clip(u_inf, 0.0, 1.0)
        u = u.reshape(c1 - c0, sps)
        u_mean[c0:c1] = u.mean(axis=1)
        u_min[c0:c1] = u.min(axis=1)
        u_max[c0:c1] = u.max(axis=1)
        if u_sub is not None:
            u_sub[c0:c1] = u
    return UtilisationProfile(u_mean, u_min, u_max, u_sub)


@njit
def power_smoothing_step(p_prev_w, hold_s, p_work_w, floor_frac, tdp_w, ramp_up_w_per_s, ramp_down_w_per_s,
                         hysteresis_s, dt_s):  # pragma: no cover - jitted
    """One step of the NVIDIA GB200/GB300 per-GPU power-smoothing filter.

    NVML power smoothing (docs/physics.md §1 [P9] [S]; floor 20–90 % of TDP [S2] [P4]), modelled as
    ``P_cmd = max(P_work, floor·TDP)``, then ``P = rate_limit(P_cmd, +r_up, −r_dn)``, with a
    ramp-down only after ``P_cmd`` has stayed below ``P`` for the hysteresis time. A step that
    straddles the end of the hold ramps down for the remainder of the step.

    Parameters
    ----------
    p_prev_w : float
        Filtered GPU power at the end of the previous step [W].
    hold_s : float
        Hysteresis time left before ramp-down may start [s].
    p_work_w : float
        Power the workload asks for this step [W].
    floor_frac : float
        Power floor as a fraction of TDP [-].
    tdp_w : float
        TDP [W].
    ramp_up_w_per_s, ramp_down_w_per_s : float
        Ramp rates [W/s], positive.
    hysteresis_s : float
        Ramp-down hysteresis [s].
    dt_s : float
        Step [s].

    Returns
    -------
    tuple(float, float)
        ``(p_w, hold_s)``: filtered power at the end of the step and the hold time left. The energy
        cost of smoothing is the integral of ``p_w − p_work_w``.
    """
    floor_w = floor_frac * tdp_w
    p_cmd = p_work_w if p_work_w > floor_w else floor_w
    if p_cmd >= p_prev_w:
        p = p_prev_w + ramp_up_w_per_s * dt_s
        return (p if p < p_cmd else p_cmd), hysteresis_s
    if hold_s >= dt_s:
        return p_prev_w, hold_s - dt_s
    p = p_prev_w - ramp_down_w_per_s * (dt_s - hold_s)
    return (p if p > p_cmd else p_cmd), 0.0


@njit
def psu_storage_step(p_grid_w, e_j, p_rack_w, tau_s, e_max_j, dt_s):  # pragma: no cover - jitted
    """GB300 rack PSU energy storage: the grid sees a low-pass of rack power within an energy budget.

    docs/physics.md §1 [E] (mechanism [S] [P2]): rack low-pass ``τ ≈ 0.1–1 s`` with an energy budget of
    ≈1–5 s of rack power. The grid-side power relaxes toward the rack power with ``τ`` (exact
    update); the storage supplies the difference; if that would empty or overfill it, the grid-side
    power follows the rack so that the store ends the step at its bound.

    Parameters
    ----------
    p_grid_w : float
        Grid-side power at the end of the previous step [W].
    e_j : float
        Stored energy [J] in ``[0, e_max_j]``.
    p_rack_w : float
        Rack (load-side) power this step [W].
    tau_s, e_max_j, dt_s : float
        Low-pass time constant [s], storage capacity [J], step [s].

    Returns
    -------
    tuple(float, float)
        ``(p_grid_w, e_j)`` at the end of the step; the step-mean grid power is
        ``p_rack_w + (e_new − e_old)/dt``.
    """
    if tau_s > 0.0:
        a = math.exp(-dt_s / tau_s)
        p_new = p_rack_w + (p_grid_w - p_rack_w) * a
        p_mean = p_rack_w + (p_grid_w - p_rack_w) * tau_s / dt_s * (1.0 - a)
    else:
        p_new = p_rack_w
        p_mean = p_rack_w
    e_new = e_j + (p_mean - p_rack_w) * dt_s
    if e_new < 0.0:
        e_new = 0.0
        p_new = p_rack_w + (0.0 - e_j) / dt_s
    elif e_new > e_max_j:
        e_new = e_max_j
        p_new = p_rack_w + (e_max_j - e_j) / dt_s
    return p_new, e_new


@njit
def hall_it_substeps(demand_mw, g, p_idle_mw, p_static_mw, n_gpu, tdp_kw, p_peak_mw, state, ctrl, h_s,
                     out_mw):  # pragma: no cover - jitted
    """A hall's IT power on the sub-step grid of one step, as the grid sees it [MW].

    For each sub-step of ``h_s``: the workload's demand ``demand_mw`` (docs/physics.md §1 load model, on the
    sub-step grid) is throttled and capped, ``P = P_idle + (P_demand − P_idle)·g`` (``g`` = thermal
    factor × power cap, held over the step); with GPU power smoothing on (``ctrl`` ``CT_SMOOTH``), each
    GPU's power goes through :func:`power_smoothing_step` (floor, ramp rates and hysteresis from the
    scenario); with rack PSU storage on (``CT_PSU``), the hall's power goes through
    :func:`psu_storage_step` (time constant and energy budget in seconds of peak power from the
    scenario). ``state`` is the hall's state row (twin.state ``SH_*``), updated in place; fills
    ``out_mw`` (n_sub,).
    """
    smooth = ctrl[CT_SMOOTH] > 0.5
    psu = ctrl[CT_PSU] > 0.5
    tdp_w = tdp_kw * 1e3
    for j in range(demand_mw.shape[0]):
        p = p_idle_mw + (demand_mw[j] - p_idle_mw) * g
        if p < 0.0:
            p = 0.0
        if smooth:
            w = (p - p_static_mw) * 1e6 / n_gpu
            w, hold = power_smoothing_step(state[SH_P_GPU_W], state[SH_HOLD_S], w, ctrl[CT_SMOOTH_FLOOR], tdp_w,
                                           ctrl[CT_SMOOTH_UP_PER_S] * tdp_w, ctrl[CT_SMOOTH_DOWN_PER_S] * tdp_w,
                                           ctrl[CT_SMOOTH_HYST_S], h_s)
            state[SH_P_GPU_W] = w
            state[SH_HOLD_S] = hold
            p = p_static_mw + n_gpu * w * 1e-6
        if psu:  # the grid supplies the rack less what the store gave: the sub-step's mean grid power
            e0 = state[SH_PSU_E_J]
            pg, e = psu_storage_step(state[SH_PSU_P_W], e0, p * 1e6, ctrl[CT_PSU_TAU_S],
                                     ctrl[CT_PSU_E_S] * p_peak_mw * 1e6, h_s)
            state[SH_PSU_P_W] = pg
            state[SH_PSU_E_J] = e
            p = p + (e - e0) * 1e-6 / h_s
        out_mw[j] = p


@njit(nogil=True)
def hall_demand_mw(u, site_of, p_idle_mw, p_compute_mw, out):  # pragma: no cover - jitted
    """Demanded IT power of each hall from its site's utilisation, ``P_idle + (P_compute − P_idle)·u`` [MW].

    docs/physics.md §1 load model with the hall totals: ``u`` (n_sites, n_steps, n_sub) on the sub-step grid,
    ``site_of`` (n_halls,) the site (job) each hall belongs to; fills ``out`` (n_steps, n_sub, n_halls).
    """
    for k in range(out.shape[0]):
        for j in range(out.shape[1]):
            for hh in range(out.shape[2]):
                out[k, j, hh] = p_idle_mw[hh] + (p_compute_mw[hh] - p_idle_mw[hh]) * u[site_of[hh], k, j]
