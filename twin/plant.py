"""Compile a Site into packed parameter arrays for the stepping kernel.

Each component kind is one 2-D float64 array (rows = components, columns = parameters) with named
column constants, in the style of pandapower's ``idx_bus``: ``plant.turb[u, TU_P_ISO_MW]``. Each table
has a prefix of its own (``TU_`` turbines, ``BE_`` batteries, ``HA_`` halls, ``PL_`` cooling plants,
``CH_`` chillers, ``GT_`` grid ties, ``CT_`` run settings; state columns in :mod:`twin.state` start with
``S``), so that a column never reads like a constant of a model module. The kernel reads these; the object layer (this module) owns names, units and validation. Component order is the order
of the site's lists, which is also the order of the result coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sites.curves import chiller_curves

from .thermal import C_GPU_MJ_PER_K, cdu_conductance_mw_per_k, gpu_conductance_mw_per_k
from .turbines import GG_NPAR, GOVERNOR_KINDS, GOV_GGOV1, GOV_TGOV1, ggov1_params, tgov1_params

__all__ = ["PlantArrays", "compile_plant", "governor_row", "protection_ctrl", "COMMIT_RULES", "TIE_ACTIONS", "CP_PG25_MJ_PER_M3K",
           "CP_WATER_MJ_PER_M3K"]

#: Volumetric heat capacity of PG25 (25 % propylene glycol) ≈ 3.9 MJ/(m³·K) and of water 4.18 MJ/(m³·K).
CP_PG25_MJ_PER_M3K = 3.9
CP_WATER_MJ_PER_M3K = 4.18

# ---- turbine columns
(TU_ISLAND, TU_P_ISO_MW, TU_DERATE_PER_C, TU_P_MIN_FRAC, TU_RAMP_MW_PER_S, TU_DROOP, TU_START_S, TU_H_S, TU_S_MVA,
 TU_ONLINE0, TU_GOV, TU_ROCOF, TU_COMMIT, TU_RESERVE_MW, TU_RESERVE_MARGIN, TU_NCOL) = range(16)
#: Commitment rules of a turbine group (``TU_COMMIT``); ``TU_RESERVE_MW`` < 0 means "the largest online unit".
COMMIT_RULES = {"fixed": 0, "reserve": 1}
# ---- BESS columns
(BE_ISLAND, BE_P_MW, BE_E_MWH, BE_ETA_C, BE_ETA_D, BE_SOC_MIN, BE_SOC_MAX, BE_SOC0, BE_DROOP, BE_MODE, BE_RESPONSE_S,
 BE_DEADBAND_HZ, BE_GFM, BE_H_V_S, BE_FREQ_FILTER_S, BE_ROCOF, BE_NCOL) = range(17)
BESS_MODES = {"smoothing": 0, "droop": 1, "import-cap": 2}
# ---- hall columns
(HA_ISLAND, HA_PLANT, HA_RACKS, HA_RACK_PEAK_KW, HA_RACK_IDLE_KW, HA_GPUS_PER_RACK, HA_TDP_KW, HA_LIQUID_FRAC,
 HA_T_SLOW_C, HA_T_SHUT_C, HA_N_GPU, HA_P_PEAK_MW, HA_P_IDLE_MW, HA_P_STATIC_MW, HA_G_JC_MW_PER_K, HA_C_GPU_MJ_PER_K,
 HA_UA_CDU_MW_PER_K, HA_C_TCS_MJ_PER_K, HA_UPS_E_MWH, HA_NCOL) = range(20)
# ---- cooling plant columns
(PL_T_CHW_C, PL_C_TCS_MJ_PER_K, PL_C_FWS_MJ_PER_K, PL_PUMP_FRAC, PL_FAN_FRAC, PL_NCOL) = range(6)
# ---- chiller columns
(CH_PLANT, CH_ISLAND, CH_Q_REF_MW, CH_COP_REF, CH_CURVE, CH_NCOL) = range(6)
# ---- grid-tie columns
(GT_ISLAND, GT_IMPORT_MW, GT_EXPORT_MW, GT_ACTION, GT_DELAY_S, GT_NCOL) = range(6)
#: What the plant does while a tie's import is above its limit (``GT_ACTION``, twin.dispatch.tie_limit_step).
TIE_ACTIONS = {"report": 0, "curtail": 1, "shed": 2, "trip": 3}
# ---- run settings (Params.ctrl): control switches, relay settings and workload options; the relay settings
#      from CT_UFLS_N on come from the site's [protection] table (protection_ctrl)
#: Stages of UFLS and bands per ride-through curve the settings vector holds.
N_UFLS_MAX = 5
N_RT_BAND = 4
#: Ride-through curves (index into the CT_RT block): turbine under/over-frequency, inverter under/over-frequency.
(RT_TU_UF, RT_TU_OF, RT_BE_UF, RT_BE_OF, N_RT_CURVE) = range(5)
(CT_SECONDARY, CT_CAPPING, CT_UFLS, CT_AUTO_START, CT_UFLS_DELAY_S, CT_ROCOF_SHORT_S, CT_ROCOF_LONG_S,
 CT_SMOOTH, CT_SMOOTH_FLOOR, CT_SMOOTH_UP_PER_S, CT_SMOOTH_DOWN_PER_S, CT_SMOOTH_HYST_S,
 CT_PSU, CT_PSU_TAU_S, CT_PSU_E_S,
 CT_UFLS_N, CT_TU_ROCOF_HZ_S, CT_TU_ROCOF_WINDOW_S, CT_TU_ROCOF_DELAY_S, CT_BE_ROCOF_HZ_S, CT_BE_ROCOF_WINDOW_S,
 CT_BE_ROCOF_DELAY_S, CT_UPS_F_MIN_HZ, CT_UPS_F_MAX_HZ, CT_UPS_RETRANSFER_S, CT_CH_TRIP_HZ, CT_CH_RESTART_S,
 CT_UFLS_HZ) = range(28)
#: UFLS set points at ctrl[CT_UFLS_HZ + s], cumulative reliefs at ctrl[CT_UFLS_RELIEF + s] (s < ctrl[CT_UFLS_N]).
CT_UFLS_RELIEF = CT_UFLS_HZ + N_UFLS_MAX
#: Ride-through bands: curve c, band b at ctrl[CT_RT + 2·(c·N_RT_BAND + b)] (threshold [Hz]) and the next
#: column (longest time beyond it [s]; < 0: no band).
CT_RT = CT_UFLS_RELIEF + N_UFLS_MAX
CT_NCOL = CT_RT + 2 * N_RT_CURVE * N_RT_BAND


def governor_row(model, f0_hz: float = 60.0) -> np.ndarray:
    """Governor parameter row (GG_NPAR,) of a turbine model from its site-file fields (twin.turbines)."""
    kind = GOVERNOR_KINDS[model.governor]
    r = model.droop_pct / 100.0
    if kind == GOV_TGOV1:
        return tgov1_params(r, model.tgov1_t1_s, model.tgov1_t2_s, model.tgov1_t3_s, model.tgov1_dt_pu,
                            model.tgov1_vmax_pu, model.tgov1_vmin_pu, deadband_hz=model.gov_deadband_hz, f0_hz=f0_hz)
    if kind == GOV_GGOV1:
        k_turb = 1.5  # GGOV1 typical Kturb [P22]; the loading rate sets the valve opening rate
        return ggov1_params(r=r, wfnl=model.wfnl_frac, k_turb=k_turb, r_open_pu_per_s=model.loading_rate_frac_per_s / k_turb,
                            deadband_hz=model.gov_deadband_hz, f0_hz=f0_hz)
    row = np.zeros(GG_NPAR)  # ideal droop: only R is used
    row[0] = r
    return row


def protection_ctrl(prot=None) -> np.ndarray:
    """The settings vector (CT_NCOL,) with the relay settings of a site's ``[protection]`` table
    (:class:`sites.schema.Protection`; its defaults when None) filled in; the run's switches stay zero."""
    from sites.schema import Protection

    p = prot if prot is not None else Protection()
    ct = np.zeros(CT_NCOL)
    n = len(p.ufls_f_hz)
    ct[CT_UFLS_N], ct[CT_UFLS_DELAY_S] = n, p.ufls_delay_s
    ct[CT_UFLS_HZ:CT_UFLS_HZ + n] = p.ufls_f_hz
    ct[CT_UFLS_RELIEF:CT_UFLS_RELIEF + n] = p.ufls_relief_frac
    ct[CT_TU_ROCOF_HZ_S], ct[CT_TU_ROCOF_WINDOW_S], ct[CT_TU_ROCOF_DELAY_S] = (
        p.turbine_rocof_hz_per_s, p.turbine_rocof_window_s, p.turbine_rocof_delay_s)
    ct[CT_BE_ROCOF_HZ_S], ct[CT_BE_ROCOF_WINDOW_S], ct[CT_BE_ROCOF_DELAY_S] = (
        p.bess_rocof_hz_per_s, p.bess_rocof_window_s, p.bess_rocof_delay_s)
    ct[CT_UPS_F_MIN_HZ], ct[CT_UPS_F_MAX_HZ], ct[CT_UPS_RETRANSFER_S] = p.ups_f_min_hz, p.ups_f_max_hz, p.ups_retransfer_s
    ct[CT_CH_TRIP_HZ], ct[CT_CH_RESTART_S] = p.chiller_trip_f_hz, p.chiller_restart_s
    for c, bands in ((RT_TU_UF, p.turbine_uf_bands), (RT_TU_OF, p.turbine_of_bands), (RT_BE_UF, p.bess_uf_bands),
                     (RT_BE_OF, p.bess_of_bands)):
        for b in range(N_RT_BAND):
            k = CT_RT + 2 * (c * N_RT_BAND + b)
            ct[k], ct[k + 1] = bands[b] if b < len(bands) else (0.0, -1.0)
    return ct


@dataclass(frozen=True)
class PlantArrays:
    """Packed parameters of a site (plain numpy, ready for numba) and the names behind each row."""

    turb: np.ndarray
    gov: np.ndarray  # (n_turbine, GG_NPAR) governor parameters (twin.turbines)
    bess: np.ndarray
    hall: np.ndarray
    plant: np.ndarray
    chiller: np.ndarray
    grid: np.ndarray
    island_grid_tied: np.ndarray  # (n_island,) 1.0 where a tie (or import boundary) holds frequency
    island_p_other_mw: np.ndarray  # (n_island,) fixed other loads (offices, auxiliaries, export boundaries)
    curves: np.ndarray  # (n_curve, 15): CAPFT[6], EIRFT[6], EIRFPLR[3]
    curve_ranges: np.ndarray  # (n_curve, 4): Tchw min/max, Tamb min/max
    names: dict[str, list[str]]
    ctrl: np.ndarray  # (CT_NCOL,) the site's relay settings (protection_ctrl); the engine adds the run's switches

    @property
    def n_island(self) -> int:
        return len(self.island_grid_tied)


def compile_plant(site) -> PlantArrays:
    """Pack a loaded :class:`sites.Site` into :class:`PlantArrays`."""
    islands = site.islands()
    isl_of_bus = {b: k for k, isl in enumerate(islands) for b in isl.buses}
    plants = {p.id: k for k, p in enumerate(site.cooling_plants)}
    curve_names = sorted({c.curve for c in site.chillers}) or ["york-ycal0033ee"]
    curve_ix = {n: k for k, n in enumerate(curve_names)}

    turbines = [t for t in site.turbines if t.state != "out"]
    turb = np.zeros((len(turbines), TU_NCOL))
    gov = np.zeros((len(turbines), GG_NPAR))
    for i, t in enumerate(turbines):
        m = site.turbine_model(t)
        turb[i] = [isl_of_bus[t.bus], m.p_iso_mw, m.derate_per_c, m.p_min_frac, m.ramp_frac_per_min * m.p_iso_mw / 60.0,
                   m.droop_pct / 100.0, m.start_time_s, m.h_s, m.p_iso_mw / m.pf, 1.0 if t.state == "online" else 0.0,
                   GOVERNOR_KINDS[m.governor], 1.0 if t.rocof_relay else 0.0, COMMIT_RULES[t.commitment],
                   -1.0 if t.reserve_mw is None else t.reserve_mw, t.reserve_margin_frac]
        gov[i] = governor_row(m)
    from .storage import efficiency_from_rte  # (twin.storage reads this module's columns)

    bess = np.zeros((len(site.bess), BE_NCOL))
    for i, b in enumerate(site.bess):
        eta = efficiency_from_rte(b.rte_frac)
        bess[i] = [isl_of_bus[b.bus], b.p_mw, b.e_mwh, b.eta_charge_frac or eta, b.eta_discharge_frac or eta,
                   b.soc_min_frac, b.soc_max_frac, b.soc_init_frac, b.droop_pct / 100.0, BESS_MODES[b.mode], b.response_s,
                   b.deadband_hz, 1.0 if b.inverter == "grid-forming" else 0.0, b.h_v_s, b.freq_filter_s,
                   1.0 if b.rocof_relay else 0.0]
    plant = np.zeros((len(site.cooling_plants), PL_NCOL))
    for i, p in enumerate(site.cooling_plants):
        plant[i] = [p.t_chw_c, p.tcs_volume_m3 * CP_PG25_MJ_PER_M3K, p.fws_volume_m3 * CP_WATER_MJ_PER_M3K, p.pump_frac, p.fan_frac]
    hall = np.zeros((len(site.halls), HA_NCOL))
    peak_of_plant = np.zeros(len(site.cooling_plants))
    for h in site.halls:
        peak_of_plant[plants[h.cooling_plant]] += h.racks * h.rack_p_peak_kw * 1e-3
    for i, h in enumerate(site.halls):
        p_peak = h.racks * h.rack_p_peak_kw * 1e-3
        pl = plants[h.cooling_plant]
        hall[i] = [isl_of_bus[h.bus], pl, h.racks, h.rack_p_peak_kw, h.rack_p_idle_kw,
                   h.gpus_per_rack, h.gpu_tdp_kw, h.liquid_frac, h.t_gpu_slowdown_c, h.t_gpu_shutdown_c, h.gpu_count,
                   p_peak, h.racks * h.rack_p_idle_kw * 1e-3,
                   h.racks * (h.rack_p_peak_kw - h.gpus_per_rack * h.gpu_tdp_kw) * 1e-3,  # flat non-GPU rack power
                   gpu_conductance_mw_per_k(h.gpu_count), C_GPU_MJ_PER_K * h.gpu_count,
                   cdu_conductance_mw_per_k(p_peak),  # CDUs sized for the hall's peak heat [E]
                   plant[pl, PL_C_TCS_MJ_PER_K] * p_peak / peak_of_plant[pl],  # the plant's loop volume shared by peak
                   h.ups_autonomy_min / 60.0 * p_peak]  # UPS energy: its autonomy at peak IT [MWh of IT]
    chiller = np.zeros((len(site.chillers), CH_NCOL))
    for i, c in enumerate(site.chillers):
        chiller[i] = [plants[c.plant], isl_of_bus[c.bus], c.q_ref_mw, c.cop_ref, curve_ix[c.curve]]
    ties = [(g.id, g.bus, g.import_limit_mw, g.export_limit_mw, TIE_ACTIONS[g.limit_action], g.limit_delay_s)
            for g in site.grid_ties]
    ties += [(b.id, b.bus, b.import_limit_mw, 0.0, 0, 0.0) for b in site.boundaries if b.direction == "import"]
    grid = np.array([[isl_of_bus[bus], *rest] for _, bus, *rest in ties]).reshape(-1, GT_NCOL)
    other = np.zeros(len(islands))
    for ld in site.loads:
        other[isl_of_bus[ld.bus]] += ld.p_mw
    for bd in site.boundaries:
        if bd.direction == "export":
            other[isl_of_bus[bd.bus]] += bd.p_mw
    curves = np.zeros((len(curve_names), 15))
    ranges = np.zeros((len(curve_names), 4))
    for k, n in enumerate(curve_names):
        capft, eirft, eirfplr, r_chw, r_amb = chiller_curves()[n]
        curves[k] = np.r_[capft, eirft, eirfplr]
        ranges[k] = [*r_chw, *r_amb]
    branches = [ln.id for ln in site.lines] + [t.id for t in site.transformers]
    names = {
        "turbine": [t.id for t in turbines],
        "bess": [b.id for b in site.bess],
        "hall": [h.id for h in site.halls],
        "plant": [p.id for p in site.cooling_plants],
        "chiller": [c.id for c in site.chillers],
        "grid_tie": [t[0] for t in ties],
        "island": [isl.name for isl in islands],
        "bus": [b.id for b in site.buses],
        "branch": branches,
    }
    return PlantArrays(
        turb=turb, gov=gov, bess=bess, hall=hall, plant=plant, chiller=chiller, grid=grid,
        island_grid_tied=np.array([1.0 if isl.grid_tied else 0.0 for isl in islands]),
        island_p_other_mw=other, curves=curves, curve_ranges=ranges, names=names,
        ctrl=protection_ctrl(getattr(site, "protection", None)),
    )
