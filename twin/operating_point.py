"""The nominal operating point of a site: steady IT and cooling load, and a dispatch that meets it.

This is the state the grid model is built at and the one ``twin show`` summarises: every hall training
at its nominal GPU power, the cooling plant rejecting that heat at the design ambient temperature,
online turbines sharing the load in proportion to their ambient-derated capacity, batteries idle.

Model choices (see docs/physics.md):

* Nominal GPU power is 80 % of TDP, as Meta provisions GB200 (960 W of 1,200 W; docs/physics.md §1,
  [P6]); the non-GPU part of a rack is flat, so
  ``P_rack = P_rack_peak − n_gpu·TDP·(1 − 0.8)``.
* All IT power becomes heat in the hall's cooling plant; the plant's chillers share it equally
  (``twin.cooling.chiller_power_mw``), condenser fans and pumps add ``fan_frac`` and ``pump_frac``
  of the heat (docs/physics.md §6-7). Cooling power is booked on the chillers' buses.
* In an island with a grid tie (or a standalone import boundary) the tie imports up to its limit and
  online turbines cover the rest; in an islanded microgrid the online turbines share the whole load.
"""

from __future__ import annotations

from dataclasses import dataclass, field


from sites.curves import chiller_curves

from .cooling import chiller_capacity_mw, cooling_plant_power_mw
from .turbines import derate_factor

__all__ = ["NOMINAL_GPU_POWER_FRAC", "IslandSummary", "OperatingPoint", "nominal_operating_point", "nominal_net", "hall_it_mw"]

#: Nominal GPU power as a fraction of TDP (Meta provisions 960 W of 1,200 W; docs/physics.md §1 [P6]).
NOMINAL_GPU_POWER_FRAC = 0.8


def hall_it_mw(hall, gpu_power_frac: float = NOMINAL_GPU_POWER_FRAC) -> float:
    """IT power of a hall with GPUs at ``gpu_power_frac`` of TDP and the rest of the rack flat [MW]."""
    rack_kw = hall.rack_p_peak_kw - hall.gpus_per_rack * hall.gpu_tdp_kw * (1.0 - gpu_power_frac)
    return hall.racks * max(rack_kw, hall.rack_p_idle_kw) / 1000.0


@dataclass
class IslandSummary:
    """Capacity and load of one electrical island at the operating point [MW, MWh]."""

    name: str
    grid_tied: bool
    p_iso_mw: float
    p_derated_mw: float
    p_online_derated_mw: float
    p_grid_limit_mw: float
    p_bess_mw: float
    e_bess_mwh: float
    p_it_mw: float
    p_cooling_mw: float
    p_other_mw: float
    q_unmet_mw: float

    @property
    def p_load_mw(self) -> float:
        """Total load: IT + cooling + other [MW]."""
        return self.p_it_mw + self.p_cooling_mw + self.p_other_mw

    @property
    def margin_pct(self) -> float:
        """Reserve margin without batteries: (derated turbines + grid limit − load)/load [%]."""
        load = self.p_load_mw
        return float("nan") if load <= 0 else 100.0 * (self.p_derated_mw + self.p_grid_limit_mw - load) / load

    @property
    def margin_bess_pct(self) -> float:
        """Reserve margin counting battery power too [%]."""
        load = self.p_load_mw
        return float("nan") if load <= 0 else 100.0 * (self.p_derated_mw + self.p_grid_limit_mw + self.p_bess_mw - load) / load


@dataclass
class OperatingPoint:
    """Steady injections by component id [MW] at ambient ``t_amb_c`` [°C]."""

    t_amb_c: float
    p_it_mw: dict[str, float] = field(default_factory=dict)
    p_chiller_mw: dict[str, float] = field(default_factory=dict)
    p_load_mw: dict[str, float] = field(default_factory=dict)
    p_turbine_mw: dict[str, float] = field(default_factory=dict)
    p_bess_mw: dict[str, float] = field(default_factory=dict)
    islands: list[IslandSummary] = field(default_factory=list)


def _plant_cooling(site, plant, heat_mw: float, t_amb_c: float) -> tuple[dict[str, float], float]:
    """Electric power per chiller of a plant rejecting ``heat_mw`` (the engine's plant model,
    :func:`twin.cooling.cooling_plant_power_mw`, shared by rated capacity), and the heat it cannot reject."""
    chillers = [c for c in site.chillers if c.plant == plant.id]
    if not chillers:
        return {}, heat_mw
    curve = chiller_curves()[chillers[0].curve]
    q_ref = sum(c.q_ref_mw for c in chillers)
    cap = chiller_capacity_mw(q_ref, curve.capft, plant.t_chw_c, t_amb_c, curve.t_chw_range_c, curve.t_amb_range_c)
    q = min(heat_mw, cap)
    p = cooling_plant_power_mw(q, q_ref, chillers[0].cop_ref, curve.capft, curve.eirft, curve.eirfplr, plant.t_chw_c, t_amb_c,
                               curve.t_chw_range_c, curve.t_amb_range_c, heat_mw, plant.fan_frac, plant.pump_frac)
    return {c.id: p * c.q_ref_mw / q_ref for c in chillers}, max(heat_mw - cap, 0.0)


def nominal_operating_point(site, t_amb_c: float | None = None, gpu_power_frac: float = NOMINAL_GPU_POWER_FRAC,
                            p_it_mw: dict[str, float] | None = None) -> OperatingPoint:
    """Steady operating point of ``site`` at ambient ``t_amb_c`` (default: the design dry-bulb).

    Parameters
    ----------
    site : sites.Site
        A loaded site or campus.
    t_amb_c : float, optional
        Ambient dry-bulb [°C]; defaults to ``site.weather.design_t_amb_c`` (35.6 °C in Memphis).
    gpu_power_frac : float
        GPU power as a fraction of TDP [-].
    p_it_mw : dict, optional
        IT power of some halls [MW] (by id), overriding ``gpu_power_frac`` for them.

    Returns
    -------
    OperatingPoint
    """
    t_amb = site.weather.design_t_amb_c if t_amb_c is None else float(t_amb_c)
    op = OperatingPoint(t_amb_c=t_amb)
    for h in site.halls:
        op.p_it_mw[h.id] = (p_it_mw or {}).get(h.id, hall_it_mw(h, gpu_power_frac))
    unmet: dict[str, float] = {}
    for plant in site.cooling_plants:
        heat = sum(op.p_it_mw[h.id] for h in site.halls if h.cooling_plant == plant.id)
        per_chiller, unmet[plant.id] = _plant_cooling(site, plant, heat, t_amb)
        op.p_chiller_mw.update(per_chiller)
    for ld in site.loads:
        op.p_load_mw[ld.id] = ld.p_mw
    for bd in site.boundaries:
        if bd.direction == "export":
            op.p_load_mw[bd.id] = bd.p_mw
    for b in site.bess:
        op.p_bess_mw[b.id] = 0.0

    halls = {h.id: h for h in site.halls}
    ties = {t.id: t.import_limit_mw for t in site.grid_ties}
    ties.update({b.id: b.import_limit_mw for b in site.boundaries if b.direction == "import"})
    turbines = {t.id: t for t in site.turbines}
    for isl in site.islands():
        p_it = sum(op.p_it_mw[h] for h in isl.halls)
        p_cool = sum(op.p_chiller_mw.get(c, 0.0) for c in isl.chillers)
        p_other = sum(op.p_load_mw[x] for x in isl.loads + isl.export_boundaries)
        load = p_it + p_cool + p_other
        grid = sum(ties[x] for x in isl.grid_ties + isl.import_boundaries)
        all_units = [t for t in site.turbines if t.bus in isl.buses and t.state != "out"]
        cap = {}
        for t in all_units:
            m = site.turbine_model(t)
            cap[t.id] = m.p_iso_mw * derate_factor(t_amb, m.derate_per_c)
        online = [tid for tid in isl.turbines if turbines[tid].state == "online"]
        cap_online = sum(cap[t] for t in online)
        need = max(load - grid, 0.0) if isl.grid_tied else load
        frac = min(need / cap_online, 1.0) if cap_online > 0 else 0.0
        for t in all_units:
            op.p_turbine_mw[t.id] = frac * cap[t.id] if t.id in online else 0.0
        plants = {halls[h].cooling_plant for h in isl.halls}
        op.islands.append(
            IslandSummary(
                name=isl.name,
                grid_tied=isl.grid_tied,
                p_iso_mw=sum(site.turbine_model(t).p_iso_mw for t in all_units),
                p_derated_mw=sum(cap.values()),
                p_online_derated_mw=cap_online,
                p_grid_limit_mw=grid,
                p_bess_mw=sum(b.p_mw for b in site.bess if b.id in isl.bess),
                e_bess_mwh=sum(b.e_mwh for b in site.bess if b.id in isl.bess),
                p_it_mw=p_it,
                p_cooling_mw=p_cool,
                p_other_mw=p_other,
                q_unmet_mw=sum(unmet.get(p, 0.0) for p in plants),
            )
        )
    return op


def nominal_net(site, t_amb_c: float | None = None):
    """The pandapower net of ``site`` at its nominal operating point (:func:`nominal_operating_point`)."""
    from grid_models.build import build_net

    return build_net(site, nominal_operating_point(site, t_amb_c))
