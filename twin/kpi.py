"""Key performance indicators of a run, accumulated segment by segment (bounded memory).

Definitions (docs/physics.md §8):

* ``unserved_energy_mwh``: ∫ p_unserved dt over all islands.
* ``gpu_hours_lost``: ∫ N_gpu·[(1 − g_T) + g_T·shed_frac] dt / 3600 per hall, where g_T is the throttle
  factor and shed_frac the share of the hall's demanded IT power that was shed.
* ``f_min_hz``, ``f_max_hz`` (over the sub-steps), ``rocof_max_hz_s`` (100 ms window) and
  ``rocof_500ms_max_hz_s`` (500 ms window): per island, over the segments it starts energised (an island
  slot no split used, or a part de-energised from its start, has None).
* ``loading_max_pct``, ``vm_min_pu``, ``vm_max_pu``: over all branches and buses.
* ``t_gpu_max_c``, ``t_coolant_max_c``; ``time_to_gpu_limit_s``: seconds from the first event (from the
  start if none) until any hall's GPU temperature first reaches its slowdown threshold; None if never.
* ``bess_soc_min``; ``turbine_starts``: standby units brought online.
* ``fuel_mmbtu`` [MMBtu HHV]: per unit and second, the fuel line
  (:func:`twin.turbines.fuel_flow_mmbtu_per_s`) up to the ambient-derated rating
  (:func:`twin.turbines.derate_factor`) with the full-load heat rate converted to HHV once
  (:func:`twin.turbines.hhv_heat_rate_btu_per_kwh`) and corrected for ambient
  (:func:`twin.turbines.heat_rate_ambient_factor`); ``turbine_energy_mwh`` and
  ``heat_rate_mmbtu_per_mwh`` (fuel / energy, HHV) with it.
* ``co2_t`` (:func:`twin.turbines.co2_kg`) and ``nox_t`` (:func:`twin.turbines.nox_kg`, with each
  unit's DLE turndown applied to its recorded output over its available capacity) from that fuel;
  ``permits``: NOx against each permit's annual limit, scaled to the run's horizon.
* ``pue``: (IT + cooling + losses) / IT energy.
* ``tie_limit_violation_mwh`` and ``tie_limit_violation_s`` (per tie): energy and seconds of the load flow's
  import above each tie's firm limit (by more than 1 kW), every second counted whatever the tie's
  ``limit_action``; ``tie_limit_violations``: the violations the kernel logged (twin.dispatch.tie_limit_step).
"""

from __future__ import annotations

import fnmatch
import math

import numpy as np

from ._jit import njit
from .plant import GT_IMPORT_MW, HA_N_GPU, HA_T_SLOW_C, PlantArrays
from .turbines import co2_kg, derate_factor, fuel_flow_mmbtu_per_s, heat_rate_ambient_factor, hhv_heat_rate_btu_per_kwh, nox_kg

__all__ = ["KpiAccumulator", "KPI_KEYS", "turbine_fuel_table", "turbine_fuel_emissions"]

KPI_KEYS = (
    "unserved_energy_mwh", "gpu_hours_lost", "f_min_hz", "f_max_hz", "rocof_max_hz_s", "rocof_500ms_max_hz_s", "loading_max_pct",
    "vm_min_pu", "vm_max_pu", "t_gpu_max_c", "t_coolant_max_c", "time_to_gpu_limit_s", "bess_soc_min",
    "turbine_starts", "fuel_mmbtu", "turbine_energy_mwh", "heat_rate_mmbtu_per_mwh", "co2_t", "nox_t", "pue", "permits",
)

_HOURS_PER_YEAR = 8760.0


# ---- columns of the per-unit fuel and emission table (turbine_fuel_table)
(F_P_ISO_MW, F_DERATE_PER_C, F_WFNL, F_HR_HHV, F_HR_RISE_PER_C, F_MIN_LOAD_FRAC, F_CO2_KG_PER_MMBTU,
 F_NOX_KG_PER_MMBTU, F_NOX_BELOW_MIN_KG_PER_MMBTU, F_NCOL) = range(10)


def turbine_fuel_table(site, turbine_ids: list[str]) -> np.ndarray:
    """Per-unit fuel and emission parameters (rows in ``turbine_ids`` order, ``F_*`` columns).

    Each unit's model gives its ISO rating and derate, the no-load fuel, the full-load ISO heat rate
    converted to HHV (:func:`twin.turbines.hhv_heat_rate_btu_per_kwh`, the only conversion), its
    ambient coefficient, the DLE minimum load (``p_min_frac``) and the CO2 and NOx factors (HHV).
    """
    units = {t.id: t for t in site.turbines}
    tab = np.zeros((len(turbine_ids), F_NCOL))
    for i, tid in enumerate(turbine_ids):
        m = site.turbine_model(units[tid])
        tab[i] = [m.p_iso_mw, m.derate_per_c, m.wfnl_frac, hhv_heat_rate_btu_per_kwh(m.heat_rate_btu_per_kwh, m.heat_rate_basis),
                  m.heat_rate_rise_per_c, m.p_min_frac, m.co2_kg_per_mmbtu, m.nox_kg_per_mmbtu, m.nox_below_min_kg_per_mmbtu]
    return tab


@njit
def turbine_fuel_emissions(p_mw, t_amb_c, tab, dt_s, fuel_mmbtu, energy_mwh, co2_kg_out,
                           nox_kg_out):  # pragma: no cover - jitted
    """Accumulate each unit's fuel [MMBtu HHV], energy [MWh], CO2 and NOx [kg] over a segment.

    ``p_mw`` (steps × units) is the recorded output, ``t_amb_c`` (steps,) the ambient, ``tab`` the
    :func:`turbine_fuel_table`. A unit burns fuel while it produces (``P > 1e-6`` MW). Per step and
    unit: available capacity ``P_av = P_ISO·k_T(T)`` (:func:`twin.turbines.derate_factor`), full-load
    heat-rate correction ``1 + b·(T − 15)`` (:func:`twin.turbines.heat_rate_ambient_factor`), fuel
    from :func:`twin.turbines.fuel_flow_mmbtu_per_s`, CO2 from :func:`twin.turbines.co2_kg`, NOx
    from :func:`twin.turbines.nox_kg` at the load fraction ``P/P_av``.
    """
    for t in range(p_mw.shape[0]):
        ta = t_amb_c[t]
        for u in range(p_mw.shape[1]):
            pt = p_mw[t, u]
            if pt > 1e-6:
                p_av = tab[u, F_P_ISO_MW] * derate_factor(ta, tab[u, F_DERATE_PER_C])
                c_t = heat_rate_ambient_factor(ta, tab[u, F_HR_RISE_PER_C])
                f = fuel_flow_mmbtu_per_s(pt, p_av, tab[u, F_P_ISO_MW], tab[u, F_HR_HHV], c_t, tab[u, F_WFNL]) * dt_s
                load = pt / p_av if p_av > 0.0 else np.inf
                fuel_mmbtu[u] += f
                energy_mwh[u] += pt * dt_s / 3600.0
                co2_kg_out[u] += co2_kg(f, tab[u, F_CO2_KG_PER_MMBTU])
                nox_kg_out[u] += nox_kg(f, load, tab[u, F_MIN_LOAD_FRAC], tab[u, F_NOX_KG_PER_MMBTU],
                                        tab[u, F_NOX_BELOW_MIN_KG_PER_MMBTU])


class KpiAccumulator:
    """Update with each engine segment; :meth:`result` gives the KPI dict (JSON-ready)."""

    def __init__(self, plant: PlantArrays, step_s: float, t_ref_s: float = 0.0, permits: list | None = None,
                 site=None):
        """``site``: the :class:`sites.Site` the plant was compiled from; it gives the turbines' fuel
        and emission factors (:func:`turbine_fuel_table`) and, unless ``permits`` is given, the permits.
        """
        self.p = plant
        self.dt_h = step_s / 3600.0
        self.step_s = step_s
        self.t_ref_s = t_ref_s
        if permits is None:
            permits = site.permits if site is not None else []
        self.permits = permits
        if site is None and len(plant.turb):
            raise TypeError("KpiAccumulator(site=...) is needed for the turbines' fuel and emission factors")
        self.fuel_tab = turbine_fuel_table(site, plant.names["turbine"]) if len(plant.turb) else np.zeros((0, F_NCOL))
        n_isl = plant.n_island
        self.unserved_mwh = 0.0
        self.gpu_h_lost = 0.0
        self.f_min = np.full(n_isl, np.inf)
        self.f_max = np.full(n_isl, -np.inf)
        self.rocof_max = np.full(n_isl, -np.inf)
        self.rocof_long_max = np.full(n_isl, -np.inf)
        self.loading_max = -np.inf
        self.vm_min, self.vm_max = np.inf, -np.inf
        self.t_gpu_max = self.t_cool_max = -np.inf
        self.t_limit_s: float | None = None
        self.soc_min = np.inf
        self.starts = 0
        n_t = len(plant.turb)
        self.fuel_mmbtu = np.zeros(n_t)
        self.e_turb_mwh = np.zeros(n_t)
        self.co2_kg_by_unit = np.zeros(n_t)
        self.nox_kg_by_unit = np.zeros(n_t)
        self.e_it = self.e_cool = self.e_loss = 0.0
        self.t_s = 0.0
        self.tie_over_mwh = np.zeros(len(plant.grid))
        self.tie_over_s = np.zeros(len(plant.grid))

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
        self.gpu_h_lost += float((lost * p.hall[:, HA_N_GPU]).sum()) * self.dt_h
        live = seg.get("island_live")  # islands energised in the segment (others: dark parts, unused island slots)
        live = np.ones(len(self.f_min), bool) if live is None else np.asarray(live, bool)
        self.f_min = np.minimum(self.f_min, np.where(live, seg["f_min_hz"].min(axis=0), np.inf))  # sub-step extremes
        self.f_max = np.maximum(self.f_max, np.where(live, seg["f_max_hz"].max(axis=0), -np.inf))
        self.rocof_max = np.maximum(self.rocof_max, np.where(live, np.abs(seg["rocof_hz_s"]).max(axis=0), -np.inf))
        self.rocof_long_max = np.maximum(self.rocof_long_max, np.where(live, np.abs(seg["rocof_long_hz_s"]).max(axis=0), -np.inf))
        if seg["loading_pct"].size:
            self.loading_max = max(self.loading_max, float(np.nanmax(seg["loading_pct"])))
        self.vm_min = min(self.vm_min, float(np.nanmin(seg["vm_pu"])))
        self.vm_max = max(self.vm_max, float(np.nanmax(seg["vm_pu"])))
        if seg["t_gpu_c"].size:
            self.t_gpu_max = max(self.t_gpu_max, float(seg["t_gpu_c"].max()))
            self.t_cool_max = max(self.t_cool_max, float(seg["t_coolant_c"].max()))
            over = np.nonzero((seg["t_gpu_c"] >= p.hall[:, HA_T_SLOW_C]).any(axis=1))[0]
            if self.t_limit_s is None and len(over):
                self.t_limit_s = max(float(t[over[0]]) - self.t_ref_s, 0.0)
        if seg["soc_bess"].size:
            self.soc_min = min(self.soc_min, float(seg["soc_bess"].min()))
        self.starts += int(seg["turbine_starts"].sum())
        if len(p.turb):
            turbine_fuel_emissions(np.ascontiguousarray(seg["p_turbine_mw"], dtype=np.float64),
                                   np.ascontiguousarray(seg["t_amb_c"], dtype=np.float64), self.fuel_tab, self.step_s,
                                   self.fuel_mmbtu, self.e_turb_mwh, self.co2_kg_by_unit, self.nox_kg_by_unit)
        self.e_it += float(seg["p_it_mw"].sum()) * self.dt_h
        self.e_cool += float(seg["p_cooling_mw"].sum()) * self.dt_h
        self.e_loss += float(seg["p_loss_mw"].sum()) * self.dt_h
        if len(p.grid):  # import above each tie's firm limit: every second of it counts
            over = np.clip(seg["p_grid_mw"] - p.grid[:, GT_IMPORT_MW][None, :], 0.0, None)
            over[over < 1e-3] = 0.0  # below 1 kW: load-flow tolerance, not a violation
            self.tie_over_mwh += over.sum(axis=0) * self.dt_h
            self.tie_over_s += (over > 0.0).sum(axis=0) * self.step_s
        self.t_s += n * self.step_s

    def result(self, events: list[dict] | None = None) -> dict:
        """The KPIs; ``events`` (the engine's sequence of events, :attr:`twin.engine.Engine.event_log`) adds
        ``relay_trips`` and ``cascade_depth``."""
        p = self.p
        islands = p.names["island"]

        def per_island(a: np.ndarray) -> dict[str, float | None]:
            return {k: (None if not math.isfinite(v) else round(float(v), 6)) for k, v in zip(islands, a)}

        def fin(x: float) -> float | None:
            return None if not math.isfinite(x) else float(x)

        nox_by_unit = self.nox_kg_by_unit / 1000.0
        fuel = float(self.fuel_mmbtu.sum())
        e_turb = float(self.e_turb_mwh.sum())
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
            "fuel_mmbtu": fuel,
            "turbine_energy_mwh": e_turb,
            "heat_rate_mmbtu_per_mwh": fuel / e_turb if e_turb > 0 else None,
            "co2_t": float(self.co2_kg_by_unit.sum()) / 1000.0,
            "nox_t": float(nox_by_unit.sum()),
            "pue": (self.e_it + self.e_cool + self.e_loss) / self.e_it if self.e_it > 0 else None,
            "permits": permits,
            "horizon_h": hours,
            "tie_limit_violation_mwh": float(self.tie_over_mwh.sum()),
            "tie_limit_violation_s": {n: float(v) for n, v in zip(p.names["grid_tie"], self.tie_over_s)},
            **event_kpis(events or [], self.t_ref_s),
        }


#: Event kinds that are protection acting on its own (relay trips and transfers; pick-ups that do not trip
#: are not counted), as opposed to the PMS or the scenario.
PROTECTION_EVENTS = ("ufls-trip", "blackout", "rocof-trip", "frequency-trip", "chiller-trip", "ups-transfer", "tie-trip")


def event_kpis(events: list[dict], t_ref_s: float = 0.0) -> dict:
    """``relay_trips``: protection actions in the run (UFLS stage trips, RoCoF and frequency ride-through
    trips of units and inverters, chiller trips on a dip, UPS transfers to battery, island blackouts, ties
    tripped on their import limit); ``tie_limit_violations``: violations of a tie's firm limit logged
    (twin.dispatch.tie_limit_step);
    ``cascade_depth``: those at or after the first scenario event (``t_ref_s``), i.e. how far the
    consequences of the what-if spread through the protection."""
    relays = [e for e in events if e.get("kind") in PROTECTION_EVENTS]
    return {"relay_trips": len(relays), "cascade_depth": sum(1 for e in relays if e["t_s"] >= t_ref_s),
            "tie_limit_violations": sum(1 for e in events if e.get("kind") == "tie-limit-exceeded")}
