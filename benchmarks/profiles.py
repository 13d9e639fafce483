"""The reference campus and a deterministic 1 s injection profile for load-flow benchmarks and checks.

The profile is a pure function of the absolute time step, so a day can be generated (and solved)
chunk by chunk and still be the same day. Loads swing like synchronised training jobs (a square
wave of ±8 % with a per-load period of 12–60 s, i.e. large steps from one second to the next), drift
over half an hour (±5 %) and jitter (±1 %, an integer hash of step and load); generator set points
move slowly (±3 % over 15 min). Reactive power follows active power at constant power factor.
"""

from __future__ import annotations

import numpy as np

from grid_models.compile import GridArrays

__all__ = ["CAMPUS", "campus_net", "campus_profile"]

#: the reference campus of the benchmarks (all three sites and their interconnection)
CAMPUS = "memphis"


def campus_net(name: str = CAMPUS):
    """The pandapower net of a reference site (``twin.operating_point.nominal_net(sites.load_site(name))``)."""
    from twin.operating_point import nominal_net
    from sites import load_site

    return nominal_net(load_site(name))


def campus_profile(arrays: GridArrays, start: int, n_steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Element profiles for steps ``start … start + n_steps − 1`` (1 s each).

    Parameters
    ----------
    arrays : GridArrays
        Supplies the nominal element values (``load_p_mw`` …, ``gen_p_mw``).
    start, n_steps : int
        Absolute first step and number of steps.
    seed : int
        Selects the per-element periods and phases.

    Returns
    -------
    dict
        ``load_p_mw``, ``load_q_mvar`` (n_steps, n_load) [MW], [Mvar] and ``gen_p_mw``
        (n_steps, n_gen) [MW], ready for :func:`grid_models.timeseries.bus_injections`.
    """
    rng = np.random.default_rng(seed)
    n_load, n_gen = len(arrays.load_p_mw), len(arrays.gen_p_mw)
    period_s = rng.uniform(12.0, 60.0, n_load)
    phase = rng.uniform(0.0, 1.0, n_load)
    drift_phase = rng.uniform(0.0, 2 * np.pi, n_load)
    gen_phase = rng.uniform(0.0, 2 * np.pi, n_gen)
    steps = start + np.arange(n_steps, dtype=np.int64)
    t = steps.astype(float)[:, None]
    # synchronised training swings: a square wave of ±8 %
    swing = np.where(np.mod(t / period_s + phase, 1.0) < 0.5, 0.08, -0.08)
    # half-hour drift of ±5 %: sin(ωt + φ) = sin ωt cos φ + cos ωt sin φ (no sine per element and step)
    w = 2 * np.pi * t / 1800.0
    drift = 0.05 * (np.sin(w) * np.cos(drift_phase) + np.cos(w) * np.sin(drift_phase))
    # ±1 % jitter from an integer hash of (step, element): deterministic, independent of chunking
    h = (steps[:, None] * np.int64(2654435761) + np.arange(n_load, dtype=np.int64) * np.int64(40503) + seed) % 65536
    jitter = 0.02 * (h / 65536.0 - 0.5)
    m = 1.0 + swing + drift + jitter
    wg = 2 * np.pi * t / 900.0
    g = 1.0 + 0.03 * (np.sin(wg) * np.cos(gen_phase) + np.cos(wg) * np.sin(gen_phase))
    return {"load_p_mw": arrays.load_p_mw * m, "load_q_mvar": arrays.load_q_mvar * m, "gen_p_mw": arrays.gen_p_mw * g}


def net_at_step(net, prof: dict[str, np.ndarray], k: int):
    """A copy of the pandapower ``net`` with its loads and generators at step ``k`` of a profile
    (:func:`campus_profile`), for a reference ``runpp`` at that step."""
    import copy

    ref = copy.deepcopy(net)
    ref.load["p_mw"] = prof["load_p_mw"][k]
    ref.load["q_mvar"] = prof["load_q_mvar"][k]
    ref.load["scaling"] = 1.0
    ref.gen["p_mw"] = prof["gen_p_mw"][k]
    ref.gen["scaling"] = 1.0
    return ref
