"""Schema of site and campus files: pydantic models with units in field names.

A site file is TOML. Every number in it carries provenance: a ``source`` (one or more IDs from
``sites/data/sources.toml``; the physics sources ``P…`` are described in docs/references.md) or an
``assumption`` note. A component's own ``source``/``assumption`` covers all its plain numbers; a single
field may override it with an inline table::

    [[turbines]]
    id = "smt130"                       # a group: expands to smt130-01 … smt130-12
    count = 12
    model = "smt130"
    bus = "gen-1"
    source = "S15"
    p_set_frac = { value = 0.8, assumption = "nominal loading of committed units" }

An inline table may also state its unit (``{ value = 150, unit = "MW", source = "S6" }``); it must
then match the unit the field name carries (``_mw`` → MW). Units and signs: docs/conventions.md.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "UNIT_SUFFIXES",
    "Protection",
    "unit_of",
    "Note",
    "Component",
    "Bus",
    "Line",
    "Transformer",
    "GridTie",
    "Boundary",
    "TurbineModel",
    "Grouped",
    "Turbine",
    "Bess",
    "Hall",
    "CoolingPlant",
    "Chiller",
    "Load",
    "Weather",
    "Permit",
    "SiteHeader",
    "SiteFile",
    "CampusHeader",
    "CampusFile",
    "COMPONENT_LISTS",
]

#: Field-name suffix → unit, longest suffix first. The field name *is* the unit declaration.
UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_ohm_per_km", "ohm/km"),
    ("_nf_per_km", "nF/km"),
    ("_btu_per_kwh", "Btu/kWh"),
    ("_kg_per_mmbtu", "kg/MMBtu"),
    ("_kg_per_mwh", "kg/MWh"),
    ("_t_per_yr", "t/yr"),
    ("_h_per_yr", "h/yr"),
    ("_per_yr", "1/yr"),
    ("_per_c", "1/K"),
    ("_per_min", "1/min"),
    ("_per_s", "1/s"),
    ("_mj_per_k", "MJ/K"),
    ("_mwh", "MWh"),
    ("_mw", "MW"),
    ("_mvar", "Mvar"),
    ("_mva", "MVA"),
    ("_kv", "kV"),
    ("_kw", "kW"),
    ("_ka", "kA"),
    ("_km", "km"),
    ("_m3", "m3"),
    ("_ppm", "ppm"),
    ("_pct", "%"),
    ("_percent", "%"),
    ("_degree", "degree"),
    ("_pu", "pu"),
    ("_frac", "1"),
    ("_c", "degC"),
    ("_k", "K"),
    ("_s", "s"),
    ("_h", "h"),
)
_UNIT_ALIASES = {"°c": "degc", "c": "degc", "deg_c": "degc", "celsius": "degc", "percent": "%", "m³": "m3"}


def unit_of(field: str) -> str | None:
    """Unit implied by a field name's suffix (``p_iso_mw`` → ``"MW"``), or None."""
    for suffix, unit in UNIT_SUFFIXES:
        if field.endswith(suffix):
            return unit
    return None


def _same_unit(given: str, expected: str) -> bool:
    g = given.strip().lower()
    return _UNIT_ALIASES.get(g, g) == _UNIT_ALIASES.get(expected.lower(), expected.lower())


class Note(BaseModel):
    """Provenance of one number: a source ID list or an assumption."""

    model_config = ConfigDict(extra="forbid")
    source: str | None = None
    assumption: str | None = None


class Component(BaseModel):
    """Base of everything that carries numbers: id, provenance, strict fields."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="component id, unique in its site")
    description: str = ""
    source: str | None = Field(None, description="source IDs (sites/data/sources.toml) for all numbers of the component")
    assumption: str | None = Field(None, description="assumption note covering all numbers of the component")
    provenance: dict[str, Note] = Field(default_factory=dict, description="per-field provenance (filled by the loader)")

    @model_validator(mode="before")
    @classmethod
    def _split_quantities(cls, data: Any) -> Any:
        """Turn ``{value, source|assumption, unit}`` inline tables into a value plus provenance."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        prov = dict(data.get("provenance") or {})
        for key, val in list(data.items()):
            if not (isinstance(val, dict) and "value" in val):
                continue
            extra = set(val) - {"value", "source", "assumption", "unit"}
            if extra:
                raise ValueError(
                    f"{key}: unknown key(s) {sorted(extra)} in quantity; expected value, source, assumption, unit"
                )
            unit = val.get("unit")
            expected = unit_of(key)
            if unit is not None and expected is not None and not _same_unit(str(unit), expected):
                raise ValueError(f"{key}: unit {unit!r} given, expected {expected!r} (the field name says so)")
            if unit is not None and expected is None:
                raise ValueError(f"{key}: a unit was given but the field is dimensionless")
            data[key] = val["value"]
            prov[key] = {"source": val.get("source"), "assumption": val.get("assumption")}
        if prov:
            data["provenance"] = prov
        return data

    def numeric_fields(self) -> dict[str, float]:
        """The numbers written for this component (field → value); defaults, None and booleans excluded."""
        out = {}
        for name in self.model_fields_set:
            v = getattr(self, name)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[name] = v
        return out

    def note_for(self, field: str) -> Note | None:
        """Provenance of ``field``: its own note, else the component's, else None."""
        n = self.provenance.get(field)
        if n is not None and (n.source or n.assumption):
            return n
        if self.source or self.assumption:
            return Note(source=self.source, assumption=self.assumption)
        return None


class Bus(Component):
    """A busbar or switchyard section."""

    vn_kv: float = Field(gt=0, description="nominal line-to-line voltage [kV]")
    kind: Literal["hv", "mv", "gen", "lv"] = "mv"
    x: float | None = Field(None, description="diagram position (left→right) [-]")
    y: float | None = Field(None, description="diagram position (bottom→top) [-]")


class Line(Component):
    """An overhead line or cable, per-circuit data with ``parallel`` identical circuits."""

    from_bus: str
    to_bus: str
    length_km: float = Field(gt=0)
    r_ohm_per_km: float = Field(ge=0)
    x_ohm_per_km: float = Field(gt=0)
    c_nf_per_km: float = Field(0.0, ge=0)
    max_i_ka: float = Field(gt=0, description="thermal rating per circuit [kA]")
    parallel: int = Field(1, ge=1)
    kind: Literal["ol", "cs"] = "cs"


class Transformer(Component):
    """A two-winding transformer (pandapower parameter set)."""

    hv_bus: str
    lv_bus: str
    sn_mva: float = Field(gt=0)
    vn_hv_kv: float = Field(gt=0)
    vn_lv_kv: float = Field(gt=0)
    vk_percent: float = Field(gt=0)
    vkr_percent: float = Field(ge=0)
    pfe_kw: float = Field(0.0, ge=0)
    i0_percent: float = Field(0.0, ge=0)
    shift_degree: float = 0.0
    tap_pos: int = 0
    tap_neutral: int = 0
    tap_min: int = -8
    tap_max: int = 8
    tap_step_percent: float = Field(1.25, ge=0)
    parallel: int = Field(1, ge=1)


class GridTie(Component):
    """A utility connection: becomes an ``ext_grid``; holds its island's frequency."""

    bus: str
    operator: str = ""
    import_limit_mw: float = Field(ge=0)
    export_limit_mw: float = Field(0.0, ge=0)
    vm_pu: float = Field(1.0, gt=0.8, lt=1.2)
    limit_action: Literal["report", "curtail", "shed", "trip"] = Field(
        "report", description="what the plant does while the import is above import_limit_mw (twin.dispatch."
        "tie_limit_step): 'report' only; 'curtail' caps GPU power once turbines and batteries are at their limit; "
        "'shed' sheds IT load in blocks; 'trip' opens the tie")
    limit_delay_s: float = Field(0.0, ge=0, le=3600, description="how long the import may stay above the limit before the "
                                 "action acts [s] (every second above it is reported regardless)")


class Boundary(Component):
    """Where a site meets another site of its campus.

    Standalone, an ``import`` boundary is an equivalent source (an ``ext_grid`` limited to
    ``import_limit_mw``) and an ``export`` boundary is a load of ``p_mw``. In a campus the
    boundary is dropped and the campus links join the buses.
    """

    bus: str
    direction: Literal["import", "export"]
    peer: str = Field(description="the site on the other side")
    import_limit_mw: float | None = Field(None, gt=0)
    p_mw: float | None = Field(None, ge=0)
    vm_pu: float = Field(1.0, gt=0.8, lt=1.2)

    @model_validator(mode="after")
    def _needs_value(self) -> "Boundary":
        if self.direction == "import" and self.import_limit_mw is None:
            raise ValueError("an import boundary needs import_limit_mw [MW]")
        if self.direction == "export" and self.p_mw is None:
            raise ValueError("an export boundary needs p_mw [MW]")
        return self


class TurbineModel(Component):
    """Ratings and dynamics of a gas-turbine model (shared by all units of that model)."""

    maker: str = ""
    kind: Literal["industrial", "aeroderivative"] = "industrial"
    p_iso_mw: float = Field(gt=0, description="ISO rating (15 °C, sea level) [MW]")
    derate_per_c: float = Field(ge=0, lt=0.05, description="output loss per K above 15 °C [1/K]")
    p_min_frac: float = Field(ge=0, lt=1, description="minimum (emissions-compliant) load [-]")
    ramp_frac_per_min: float = Field(gt=0, description="sustained ramp from spinning [1/min of rating]")
    droop_pct: float = Field(gt=0, le=10, description="governor droop [%]")
    start_time_s: float = Field(gt=0, description="standby start to full load [s]")
    heat_rate_btu_per_kwh: float = Field(gt=0, description="full-load heat rate at ISO conditions, on heat_rate_basis [Btu/kWh]")
    heat_rate_basis: Literal["lhv", "hhv"] = Field(
        description="heating value the heat rate is stated on: 'lhv' (makers' ISO ratings) or 'hhv'; "
        "converted once to HHV by twin.turbines.hhv_heat_rate_btu_per_kwh"
    )
    heat_rate_rise_per_c: float = Field(
        ge=0, lt=0.02, description="full-load heat-rate rise per K above 15 °C [1/K] (typically 0.002-0.003)"
    )
    wfnl_frac: float = Field(0.2, ge=0, lt=1, description="no-load fuel flow (GGOV1 Wfnl) [-]")
    h_s: float = Field(gt=0, description="inertia constant on machine base [s]")
    co2_kg_per_mmbtu: float = Field(gt=0, description="CO2 per MMBtu of fuel, HHV basis [kg/MMBtu]")
    nox_kg_per_mmbtu: float = Field(
        ge=0, description="NOx at or above the DLE minimum load p_min_frac, after any SCR, HHV basis [kg/MMBtu]"
    )
    nox_below_min_kg_per_mmbtu: float = Field(
        ge=0, description="NOx below p_min_frac (combustor out of lean-premix mode), after any SCR, HHV basis [kg/MMBtu]"
    )
    vn_kv: float = Field(gt=0, description="generator terminal voltage [kV]")
    pf: float = Field(0.85, gt=0, le=1, description="rated power factor [-]")
    # ---- governor (twin.turbines): GGOV1 by default, TGOV1 for comparisons with tools that lack GGOV1,
    #      or an ideal lag-free droop for closed-form checks
    governor: Literal["ggov1", "tgov1", "ideal"] = Field(
        "ggov1", description="governor-turbine model: GGOV1 (typical values [P22]), TGOV1, or ideal droop")
    gov_deadband_hz: float = Field(0.036, ge=0, le=0.5, description="governor speed deadband [Hz] (±0.036 Hz, FERC 842 [P31])")
    loading_rate_frac_per_s: float = Field(
        0.15, gt=0, le=1, description="GGOV1 loading rate Kturb·Ropen [1/s of rating]: Kturb 1.5 × Ropen 0.10 pu/s typical "
                                      "[P22]; DLE units ≈0.005 [P23]")
    tgov1_t1_s: float = Field(0.5, gt=0, le=10, description="TGOV1 valve lag T1 [s]")
    tgov1_t2_s: float = Field(1.0, ge=0, le=20, description="TGOV1 lead time constant T2 [s]")
    tgov1_t3_s: float = Field(3.0, gt=0, le=30, description="TGOV1 lag time constant T3 [s]")
    tgov1_dt_pu: float = Field(0.0, ge=0, le=10, description="TGOV1 turbine damping Dt [pu]")
    tgov1_vmax_pu: float = Field(1.0, gt=0, le=2, description="TGOV1 valve upper limit [pu of MW base]")
    tgov1_vmin_pu: float = Field(0.0, ge=0, lt=1, description="TGOV1 valve lower limit [pu of MW base]")


class Grouped(Component):
    """A component that may stand for ``count`` identical units placed on ``bus`` or on ``buses``.

    The loader expands a group into units ``<id>-01`` …, filling ``buses`` in order
    (ceil(count/len) units each) and numbering them in ``number``.
    """

    count: int = Field(1, ge=1)
    bus: str | None = None
    buses: list[str] | None = Field(None, description="buses filled in order, ceil(count/len) units each")
    #: set on expansion: index of the unit in its group (1-based); zero on groups
    number: int = 0

    @model_validator(mode="after")
    def _one_bus_spec(self) -> "Grouped":
        if (self.bus is None) == (self.buses is None):
            raise ValueError("give exactly one of `bus` or `buses`")
        return self


class Turbine(Grouped):
    """A gas-turbine unit, or a group of ``count`` identical units (expanded on load)."""

    model: str
    state: Literal["online", "standby", "out"] = "online"
    online_count: int | None = Field(
        None, ge=0, description="group: the first N units are online at the nominal point, the rest standby"
    )
    vm_pu: float = Field(1.0, gt=0.8, lt=1.2)
    rocof_relay: bool = Field(False, description="the unit carries a loss-of-mains RoCoF relay (settings in [protection])")
    commitment: Literal["fixed", "reserve"] = Field(
        "reserve", description="how the PMS commits the units (twin.dispatch.pms_step): 'fixed' holds the number "
        "online as the file sets it (a tripped unit is replaced from standby); 'reserve' starts and stops units so that "
        "the island keeps its load plus the reserve below")
    reserve_mw: float | None = Field(
        None, ge=0, description="'reserve': spinning reserve the island keeps [MW]; unset: its largest online unit "
        "(N-1, the largest contingency)")
    reserve_margin_frac: float = Field(0.0, ge=0, le=2, description="'reserve': margin on top of the reserve [-]")

    @model_validator(mode="after")
    def _online_within_count(self) -> "Turbine":
        if self.online_count is not None and self.online_count > self.count:
            raise ValueError(f"online_count ({self.online_count}) must not exceed count ({self.count})")
        return self


class Bess(Component):
    """A battery yard: ``units`` identical units (Megapack)."""

    bus: str
    product: str = ""
    units: int = Field(ge=1)
    unit_p_mw: float = Field(gt=0)
    unit_e_mwh: float = Field(gt=0)
    rte_frac: float = Field(gt=0, le=1, description="round-trip efficiency, AC-AC [-]")
    soc_min_frac: float = Field(0.05, ge=0, lt=1)
    soc_max_frac: float = Field(0.95, gt=0, le=1)
    soc_init_frac: float = Field(0.8, ge=0, le=1)
    droop_pct: float = Field(1.5, gt=0, le=10)
    response_s: float = Field(0.15, ge=0, description="first-order response time of the power control [s] (with "
                                                        "freq_filter_s ≈ 200 ms in all [P44])")
    freq_filter_s: float = Field(0.05, ge=0, le=1, description="time constant of the frequency measurement (PLL and filter) "
                                                               "a grid-following yard's droop acts on [s] (≈3 cycles [E])")
    deadband_hz: float = Field(0.036, ge=0, le=0.5, description="frequency-response deadband [Hz] (0.017-0.036 Hz [P31] [P41])")
    eta_charge_frac: float | None = Field(None, gt=0, le=1, description="one-way charge efficiency [-] (default √RTE)")
    eta_discharge_frac: float | None = Field(None, gt=0, le=1, description="one-way discharge efficiency [-] (default √RTE)")
    inverter: Literal["grid-following", "grid-forming"] = Field(
        "grid-following", description="grid-following (droop through a response lag) or grid-forming (virtual inertia, "
                                      "lag-free droop) [P45]")
    h_v_s: float = Field(0.0, ge=0, le=20, description="virtual inertia of a grid-forming inverter on its rating [s] (2-10 s [P45])")
    mode: Literal["smoothing", "droop", "import-cap"] = "smoothing"
    rocof_relay: bool = Field(False, description="the yard's inverters carry a RoCoF trip (settings in [protection])")

    @model_validator(mode="after")
    def _soc_window(self) -> "Bess":
        if not self.soc_min_frac < self.soc_max_frac:
            raise ValueError("soc_min_frac must be below soc_max_frac")
        if not self.soc_min_frac <= self.soc_init_frac <= self.soc_max_frac:
            raise ValueError("soc_init_frac must lie within [soc_min_frac, soc_max_frac]")
        if self.inverter == "grid-forming" and self.h_v_s <= 0:
            raise ValueError("a grid-forming inverter needs h_v_s > 0 [s] (virtual inertia)")
        return self

    @property
    def p_mw(self) -> float:
        """Rated power of the yard [MW]."""
        return self.units * self.unit_p_mw

    @property
    def e_mwh(self) -> float:
        """Rated energy of the yard [MWh]."""
        return self.units * self.unit_e_mwh


class Hall(Grouped):
    """A data hall (or a group of ``count`` identical halls): racks of one GPU type, cooling split."""

    gpu_type: str
    gpu_count: int = Field(ge=1)
    gpus_per_rack: int = Field(ge=1)
    rack_p_peak_kw: float = Field(gt=0)
    rack_p_idle_kw: float = Field(ge=0)
    gpu_tdp_kw: float = Field(gt=0)
    liquid_frac: float = Field(ge=0, le=1, description="share of heat captured by liquid [-]")
    pf: float = Field(0.99, gt=0, le=1)
    cooling_plant: str
    t_gpu_slowdown_c: float = Field(89.0, gt=0)
    t_gpu_shutdown_c: float = Field(92.0, gt=0)
    ups_autonomy_min: float = Field(0.0, ge=0, description="UPS autonomy at the hall's peak IT power [min] (0: no UPS); "
                                    "the UPS carries IT power P for autonomy·P_peak/P")

    @model_validator(mode="after")
    def _idle_below_peak(self) -> "Hall":
        if self.rack_p_idle_kw > self.rack_p_peak_kw:
            raise ValueError("rack_p_idle_kw must not exceed rack_p_peak_kw")
        return self

    @property
    def racks(self) -> int:
        """Number of racks (GPU count over GPUs per rack, rounded up)."""
        return math.ceil(self.gpu_count / self.gpus_per_rack)

    @property
    def p_it_peak_mw(self) -> float:
        """IT power with every rack at peak [MW]."""
        return self.racks * self.rack_p_peak_kw / 1000.0

    @property
    def p_it_idle_mw(self) -> float:
        """IT power with every rack idle [MW]."""
        return self.racks * self.rack_p_idle_kw / 1000.0


class CoolingPlant(Component):
    """Heat-rejection plant serving halls: CDUs, facility water loop, pumps; chillers point to it."""

    t_chw_c: float = Field(description="leaving chilled/facility water set point [°C]")
    cdu_count: int = Field(ge=0)
    cdu_q_mw: float = Field(ge=0, description="heat capacity of one CDU [MW]")
    tcs_volume_m3: float = Field(gt=0, description="technology cooling system (secondary) volume [m3]")
    fws_volume_m3: float = Field(gt=0, description="facility water volume incl. buffer [m3]")
    pump_frac: float = Field(ge=0, lt=0.2, description="CDU + facility pumps, fraction of heat [-]")
    fan_frac: float = Field(ge=0, lt=0.2, description="condenser fans + CRAH, fraction of heat [-]")


class Chiller(Grouped):
    """An air-cooled chiller, or a group of ``count`` identical chillers (expanded on load)."""

    plant: str
    q_ref_mw: float = Field(gt=0, description="rated cooling capacity [MW thermal]")
    cop_ref: float = Field(gt=0, description="COP at the curve's reference point [-]")
    curve: str = Field("york-ycal0033ee", description="curve set in sites/data/chiller_curves.toml")
    pf: float = Field(0.95, gt=0, le=1)


class Load(Component):
    """Any other load (offices, auxiliaries)."""

    bus: str
    p_mw: float = Field(ge=0)
    pf: float = Field(0.95, gt=0, le=1)


class Weather(Component):
    """Design weather of the site."""

    id: str = "weather"
    design_t_amb_c: float = Field(description="0.4 % cooling design dry-bulb [°C]")
    design_t_wb_c: float | None = Field(None, description="mean coincident wet-bulb [°C]")
    heatwave_t_amb_c: float | None = Field(None, description="record/heat-wave dry-bulb [°C]")


class Permit(Component):
    """Air-permit limits of a group of turbines (by id prefix)."""

    turbines: str = Field(description="glob of turbine ids the permit covers, e.g. 'smt130-*'")
    nox_t_per_yr: float | None = Field(None, ge=0)
    co_t_per_yr: float | None = Field(None, ge=0)
    starts_per_yr: int | None = Field(None, ge=0)
    startup_h_per_yr: float | None = Field(None, ge=0)
    nox_ppm: float | None = Field(None, ge=0)


#: A ride-through curve as threshold bands: ``[f_hz, max_s]`` — the unit trips once the frequency has stayed
#: beyond ``f_hz`` (below it for an under-frequency curve, above it for an over-frequency curve) for ``max_s``.
Bands = list[tuple[float, float]]
#: Most bands per curve the kernel holds (twin.plant.N_RT_BAND).
MAX_RT_BANDS = 4


class Protection(Component):
    """Relay settings of the site (docs/physics.md §4, docs/references.md [P36]–[P40], [P54], [P55], [P62]–[P65]).

    Defaults: UFLS of ERCOT NOGRR 247 [P39]; turbine frequency no-trip curve of NERC PRC-024 for the Eastern
    Interconnection as stepped bands [P62]; inverter (battery) frequency ride-through of IEEE 2800-2022 /
    NERC PRC-029-1 [P63] [P64]; RoCoF relays as loss-of-mains relays [P38] [P65]; chiller restart [P54].
    """

    id: str = "protection"
    scheme: str = Field("ercot-nogrr247 ufls, nerc-prc024-ei turbines, ieee2800 inverters",
                        description="name of the scheme the settings follow, with its sources")
    ufls_f_hz: list[float] = Field([59.3, 59.1, 58.9, 58.7, 58.5], min_length=1, max_length=5,
                                   description="UFLS set points, descending [Hz] (ERCOT [P39])")
    ufls_relief_frac: list[float] = Field([0.05, 0.15, 0.25, 0.35, 0.45], min_length=1, max_length=5,
                                          description="cumulative IT load shed at each stage [-] (5/15/25 % [P39]; 35/45 % [E])")
    ufls_delay_s: float = Field(0.1, ge=0.1, le=10, description="UFLS pick-up to trip [s] (at least 6 cycles [P39])")
    turbine_rocof_hz_per_s: float = Field(1.0, gt=0, description="RoCoF relay setting on turbines that carry one [Hz/s] "
                                          "(0.5-1 medium systems [P38]; 1 Hz/s loss-of-mains [P65])")
    turbine_rocof_window_s: float = Field(0.5, gt=0, le=3.0, description="its measuring window [s]")
    turbine_rocof_delay_s: float = Field(0.5, ge=0, description="its time delay [s] (0.5 s [P65])")
    bess_rocof_hz_per_s: float = Field(5.0, gt=0, description="RoCoF trip of inverters that carry one [Hz/s] "
                                       "(5 Hz/s ride-through of IEEE 2800 [P63]; 3 Hz/s IEEE 1547 cat. III [P36])")
    bess_rocof_window_s: float = Field(0.1, gt=0, le=3.0, description="its measuring window [s]")
    bess_rocof_delay_s: float = Field(0.0, ge=0, description="its time delay [s]")
    turbine_uf_bands: Bands = Field([(59.5, 1791.0), (59.0, 242.0), (58.4, 22.0), (57.8, 2.0)], max_length=MAX_RT_BANDS,
                                    description="turbine under-frequency no-trip curve as [f_hz, max_s] bands (PRC-024 "
                                                "Eastern Interconnection, t = 10^(1.7373·f − 100.116) s at each f [P62])")
    turbine_of_bands: Bands = Field([(60.5, 601.0), (61.0, 112.0), (61.5, 21.0), (61.8, 0.0)], max_length=MAX_RT_BANDS,
                                    description="turbine over-frequency no-trip curve as [f_hz, max_s] bands (PRC-024 "
                                                "Eastern Interconnection, t = 10^(90.935 − 1.45713·f) s, instantaneous "
                                                "above 61.8 Hz [P62])")
    bess_uf_bands: Bands = Field([(58.8, 299.0), (57.0, 0.0)], max_length=MAX_RT_BANDS,
                                 description="inverter under-frequency ride-through as [f_hz, max_s] bands (continuous "
                                             "above 58.8 Hz, 299 s down to 57 Hz: IEEE 2800 / PRC-029 [P63] [P64])")
    bess_of_bands: Bands = Field([(61.2, 299.0), (61.8, 0.0)], max_length=MAX_RT_BANDS,
                                 description="inverter over-frequency ride-through as [f_hz, max_s] bands (299 s up to "
                                             "61.8 Hz [P63] [P64])")
    ups_f_min_hz: float = Field(57.0, gt=0, description="UPS input window, low end: below it the UPS goes to battery [Hz] "
                                "(±5 % [E])")
    ups_f_max_hz: float = Field(63.0, gt=0, description="UPS input window, high end [Hz] (±5 % [E])")
    ups_retransfer_s: float = Field(10.0, ge=0, description="input healthy this long before the UPS transfers back [s] [E]")
    chiller_trip_f_hz: float = Field(57.5, gt=0, description="chillers drop out below this frequency (and on a dark "
                                     "island) [Hz] [E]")
    chiller_restart_s: float = Field(300.0, ge=0, description="chiller restart after a trip [s] (2-10 min, rapid "
                                     "restart 1-3 min [P54])")

    @model_validator(mode="after")
    def _consistent(self) -> "Protection":
        if len(self.ufls_f_hz) != len(self.ufls_relief_frac):
            raise ValueError("ufls_f_hz and ufls_relief_frac need one entry per stage")
        if any(b >= a for a, b in zip(self.ufls_f_hz, self.ufls_f_hz[1:])):
            raise ValueError("ufls_f_hz must descend")
        if any(b < a for a, b in zip(self.ufls_relief_frac, self.ufls_relief_frac[1:])) or not 0 < self.ufls_relief_frac[-1] <= 1:
            raise ValueError("ufls_relief_frac must be cumulative (non-decreasing) fractions in (0, 1]")
        if not self.ups_f_min_hz < self.ups_f_max_hz:
            raise ValueError("ups_f_min_hz must be below ups_f_max_hz")
        for name in ("turbine_uf_bands", "turbine_of_bands", "bess_uf_bands", "bess_of_bands"):
            if any(t < 0 for _, t in getattr(self, name)):
                raise ValueError(f"{name}: max_s must be ≥ 0")
        return self


class SiteHeader(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    location: str = ""
    description: str = ""
    as_of: str = Field("", description="the date the default configuration describes")


class _Variant(BaseModel):
    model_config = ConfigDict(extra="allow")
    description: str = Field(description="what the variant changes and why")
    extends: list[str] = Field(default_factory=list, description="variants applied first, in order")


#: Component lists of a site file, in the order the loader checks and expands them.
COMPONENT_LISTS: dict[str, type[Component]] = {
    "buses": Bus,
    "lines": Line,
    "transformers": Transformer,
    "grid_ties": GridTie,
    "boundaries": Boundary,
    "turbines": Turbine,
    "bess": Bess,
    "halls": Hall,
    "cooling_plants": CoolingPlant,
    "chillers": Chiller,
    "loads": Load,
    "permits": Permit,
}


class SiteFile(BaseModel):
    """One site file (after its variant, if any, has been merged in)."""

    model_config = ConfigDict(extra="forbid")
    site: SiteHeader
    weather: Weather
    turbine_models: dict[str, TurbineModel] = Field(default_factory=dict)
    buses: list[Bus] = Field(default_factory=list)
    lines: list[Line] = Field(default_factory=list)
    transformers: list[Transformer] = Field(default_factory=list)
    grid_ties: list[GridTie] = Field(default_factory=list)
    boundaries: list[Boundary] = Field(default_factory=list)
    turbines: list[Turbine] = Field(default_factory=list)
    bess: list[Bess] = Field(default_factory=list)
    halls: list[Hall] = Field(default_factory=list)
    cooling_plants: list[CoolingPlant] = Field(default_factory=list)
    chillers: list[Chiller] = Field(default_factory=list)
    loads: list[Load] = Field(default_factory=list)
    permits: list[Permit] = Field(default_factory=list)
    variants: dict[str, _Variant] = Field(default_factory=dict)
    protection: Protection = Field(default_factory=Protection, description="relay settings (defaults: the scheme above)")


class CampusHeader(SiteHeader):
    sites: list[str] = Field(min_length=1, description="member sites, optionally 'site:variant'")


class CampusFile(BaseModel):
    """A campus file: member sites plus the links between them."""

    model_config = ConfigDict(extra="forbid")
    campus: CampusHeader
    lines: list[Line] = Field(default_factory=list, description="links; buses as 'site/bus'")
    transformers: list[Transformer] = Field(default_factory=list)
    variants: dict[str, _Variant] = Field(default_factory=dict)
