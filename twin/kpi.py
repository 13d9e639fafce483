"""Key performance indicators of a run, accumulated segment by segment (bounded memory).

Definitions (PHYSICS.md §8):

* ``unserved_energy_mwh``: ∫ p_unserved dt over all islands.
* ``gpu_hours_lost``: ∫ N_gpu·[(1 − g_T) + g_T·shed_frac] dt / 3600 per hall, where g_T is the throttle
  factor and shed_frac the share of the hall's demanded IT power that was shed.
* ``f_min_hz``, ``f_max_hz`` (over the sub-steps), ``rocof_max_hz_s`` (100 ms window) and
  ``rocof_500ms_max_hz_s`` (500 ms window): per island.
* ``loading_max_pct``, ``vm_min_pu``, ``vm_max_pu``: over all branches and buses.
* ``t_gpu_max_c``, ``t_coolant_max_c``; ``time_to_gpu_limit_s``: seconds from the first event (from the
  start if none) until any hall's GPU temperature first reaches its slowdown threshold; None if never.
* ``bess_soc_min``; ``turbine_starts``: standby units brought online.
* ``fuel_mmbtu`` from the part-load heat-rate line (``twin.turbines.fuel_flow_mmbtu_per_s``),
  ``co2_t`` and ``nox_t`` from the units' factors; ``permits``: NOx against each permit's annual limit,
  scaled to the run's horizon.
* ``pue``: (IT + cooling + losses) / IT energy.
"""

from __future__ import annotations

import fnmatch
import math

import numpy as np

from ._jit import njit
from .plant import (
    H_N_GPU,
    H_T_SLOW_C,
    T_CO2_KG_PER_MMBTU,
    T_DERATE_PER_C,
    T_HR_FULL,
    T_NOX_KG_PER_MWH,
    T_P_ISO_MW,
    T_WFNL,
    PlantArrays,
)
from .turbines import derate_factor, fuel_flow_mmbtu_per_s

__all__ = ["KpiAccumulator", "KPI_KEYS"]

KPI_KEYS = (
    "unserved_energy_mwh", "gpu_hours_lost", "f_min_hz", "f_max_hz", "rocof_max_hz_s", "rocof_500ms_max_hz_s", "loading_max_pct",
    "vm_min_pu", "vm_max_pu", "t_gpu_max_c", "t_coolant_max_c", "time_to_gpu_limit_s", "bess_soc_min",
    "turbine_starts", "fuel_mmbtu", "co2_t", "nox_t", "pue", "permits",
)

_HOURS_PER_YEAR = 8760.0


@njit
def turbine_fuel_energy(p_mw, t_amb_c, p_iso_mw, derate_per_c, hr_full_btu_per_kwh, wfnl, dt_s, fuel_mmbtu,
                        energy_mwh):  # pragma: no cover - jitted
    """Accumulate each turbine's fuel [MMBtu] and energy [MWh] over a segment (steps × turbines).

    A unit burns fuel while it produces (``P > 1e-6`` MW), at :func:`twin.turbines.fuel_flow_mmbtu_per_s`
    of its ambient-derated rating (:func:`twin.turbines.derate_factor`).
    """
    for t in range(p_mw.shape[0]):
        for u in range(p_mw.shape[1]):
            pt = p_mw[t, u]
            if pt > 1e-6:
                p_av = p_iso_mw[u] * derate_factor(t_amb_c[t], derate_per_c[u])
                fuel_mmbtu[u] += fuel_flow_mmbtu_per_s(pt, p_av, hr_full_btu_per_kwh[u], wfnl[u]) * dt_s
                energy_mwh[u] += pt * dt_s / 3600.0


class KpiAccumulator:
    """Update with each engine segment; :meth:`result` gives the KPI dict (JSON-ready)."""

    def __init__(self, plant: PlantArrays, step_s: float, t_ref_s: float = 0.0, permits: list | None = None):
        self.p = plant
        self.dt_h = step_s / 3600.0
        self.step_s = step_s
        self.t_ref_s = t_ref_s
        self.permits = permits or []
        n_isl = plant.n_island
        self.unserved_mwh = 0.0
        self.gpu_h_lost = 0.0
        self.f_min = np.full(n_isl, np.inf)
        self.f_max = np.full(n_isl, -np.inf)
        self.rocof_max = np.zeros(n_isl)
        self.rocof_long_max = np.zeros(n_isl)
        self.loading_max = -np.inf
        self.vm_min, self.vm_max = np.inf, -np.inf
        self.t_gpu_max = self.t_cool_max = -np.inf
        self.t_limit_s: float | None = None
        self.soc_min = np.inf
        self.starts = 0
        n_t = len(plant.turb)
        self.fuel_mmbtu = np.zeros(n_t)
        self.e_turb_mwh = np.zeros(n_t)
        self.e_it = self.e_cool = self.e_loss = 0.0
        self.t_s = 0.0

    def update(self, seg: dict[str, np.ndarray]) -> None:
        """Fold one segment in: ``seg[var]`` has shape (steps, …); needs the engine's full output."""
        p = self.p
        n = len(seg["f_hz"])
        t = self.t_s + self.step_s * np.arange(n)
        self.unserved_mwh += float(seg["p_unserved_mw"].sum()) * self.dt_h
        thr = seg["throttle"]
        shed = seg["p_shed_mw"]
        demand = seg["p_it_mw"] + shed
        with np.errstate(invalid="ignore", divide="ignore"):
            shed_frac = np.where(demand > 0, shed / demand, 0.0)
        lost = (1.0 - thr) + thr * shed_frac
        self.gpu_h_lost += float((lost * p.hall[:, H_N_GPU]).sum()) * self.dt_h
        self.f_min = np.minimum(self.f_min, seg["f_min_hz"].min(axis=0))  # sub-step extremes
        self.f_max = np.maximum(self.f_max, seg["f_max_hz"].max(axis=0))
        self.rocof_max = np.maximum(self.rocof_max, np.abs(seg["rocof_hz_s"]).max(axis=0))
        self.rocof_long_max = np.maximum(self.rocof_long_max, np.abs(seg["rocof_long_hz_s"]).max(axis=0))
        if seg["loading_pct"].size:
            self.loading_max = max(self.loading_max, float(np.nanmax(seg["loading_pct"])))
        self.vm_min = min(self.vm_min, float(np.nanmin(seg["vm_pu"])))
        self.vm_max = max(self.vm_max, float(np.nanmax(seg["vm_pu"])))
        if seg["t_gpu_c"].size:
            self.t_gpu_max = max(self.t_gpu_max, float(seg["t_gpu_c"].max()))
            self.t_cool_max = max(self.t_cool_max, float(seg["t_coolant_c"].max()))
            over = np.nonzero((seg["t_gpu_c"] >= p.hall[:, H_T_SLOW_C]).any(axis=1))[0]
            if self.t_limit_s is None and len(over):
                self.t_limit_s = max(float(t[over[0]]) - self.t_ref_s, 0.0)
        if seg["soc_bess"].size:
            self.soc_min = min(self.soc_min, float(seg["soc_bess"].min()))
        self.starts += int(seg["turbine_starts"].sum())
        if len(p.turb):
            turbine_fuel_energy(np.ascontiguousarray(seg["p_turbine_mw"], dtype=np.float64),
                                np.ascontiguousarray(seg["t_amb_c"], dtype=np.float64), p.turb[:, T_P_ISO_MW].copy(),
                                p.turb[:, T_DERATE_PER_C].copy(), p.turb[:, T_HR_FULL].copy(), p.turb[:, T_WFNL].copy(),
                                self.step_s, self.fuel_mmbtu, self.e_turb_mwh)
        self.e_it += float(seg["p_it_mw"].sum()) * self.dt_h
        self.e_cool += float(seg["p_cooling_mw"].sum()) * self.dt_h
        self.e_loss += float(seg["p_loss_mw"].sum()) * self.dt_h
        self.t_s += n * self.step_s

    def result(self) -> dict:
        p = self.p
        islands = p.names["island"]

        def per_island(a: np.ndarray) -> dict[str, float | None]:
            return {k: (None if not math.isfinite(v) else round(float(v), 6)) for k, v in zip(islands, a)}

        def fin(x: float) -> float | None:
            return None if not math.isfinite(x) else float(x)

        co2_t = float((self.fuel_mmbtu * p.turb[:, T_CO2_KG_PER_MMBTU]).sum() / 1000.0) if len(p.turb) else 0.0
        nox_by_unit = self.e_turb_mwh * p.turb[:, T_NOX_KG_PER_MWH] / 1000.0 if len(p.turb) else np.zeros(0)
        hours = self.t_s / 3600.0
        permits = []
        for pm in self.permits:
            sel = [i for i, n in enumerate(p.names["turbine"]) if fnmatch.fnmatch(n, pm.turbines)]
            nox = float(nox_by_unit[sel].sum()) if sel else 0.0
            entry = {"permit": pm.id, "turbines": len(sel), "nox_t": nox}
            if pm.nox_t_per_yr:
                allowed = pm.nox_t_per_yr * hours / _HOURS_PER_YEAR
                entry.update(nox_limit_t_per_yr=pm.nox_t_per_yr, nox_share_of_prorated_limit=nox / allowed if allowed > 0 else None)
            permits.append(entry)
        return {
            "unserved_energy_mwh": self.unserved_mwh,
            "gpu_hours_lost": self.gpu_h_lost,
            "f_min_hz": per_island(self.f_min),
            "f_max_hz": per_island(self.f_max),
            "rocof_max_hz_s": per_island(self.rocof_max),
            "rocof_500ms_max_hz_s": per_island(self.rocof_long_max),
            "loading_max_pct": fin(self.loading_max),
            "vm_min_pu": fin(self.vm_min),
            "vm_max_pu": fin(self.vm_max),
            "t_gpu_max_c": fin(self.t_gpu_max),
            "t_coolant_max_c": fin(self.t_cool_max),
            "time_to_gpu_limit_s": self.t_limit_s,
            "bess_soc_min": fin(self.soc_min),
            "turbine_starts": self.starts,
            "fuel_mmbtu": float(self.fuel_mmbtu.sum()),
            "co2_t": co2_t,
            "nox_t": float(nox_by_unit.sum()),
            "pue": (self.e_it + self.e_cool + self.e_loss) / self.e_it if self.e_it > 0 else None,
            "permits": permits,
            "horizon_h": hours,
        }
