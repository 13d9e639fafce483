"""The variables a run records: name → dims, units (UDUNITS) and long name (CF conventions)."""

from __future__ import annotations

__all__ = ["VARIABLES", "DIMS"]

#: name → (dims, units, long_name)
VARIABLES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "p_it_mw": (("time", "hall"), "MW", "IT power drawn by the hall"),
    "p_cooling_mw": (("time", "hall"), "MW", "cooling electric power (chillers, fans, pumps) attributed to the hall"),
    "t_gpu_c": (("time", "hall"), "degC", "GPU junction temperature (hall lumped node)"),
    "t_coolant_c": (("time", "hall"), "degC", "technology-cooling-system (coolant loop) temperature"),
    "throttle": (("time", "hall"), "1", "GPU clock factor g_T (1 = unthrottled, 0 = shut down)"),
    "p_shed_mw": (("time", "hall"), "MW", "IT power shed by under-frequency load shedding"),
    "p_turbine_mw": (("time", "turbine"), "MW", "turbine electrical output"),
    "p_bess_mw": (("time", "bess"), "MW", "battery power, positive when discharging"),
    "soc_bess": (("time", "bess"), "1", "battery state of charge"),
    "p_grid_mw": (("time", "grid_tie"), "MW", "grid import, positive into the site"),
    "p_it_min_mw": (("time", "hall"), "MW", "minimum IT power over the sub-steps of the step"),
    "p_it_max_mw": (("time", "hall"), "MW", "maximum IT power over the sub-steps of the step"),
    "p_mech_mw": (("time", "turbine"), "MW", "turbine mechanical power"),
    "f_hz": (("time", "island"), "Hz", "island frequency at the end of the step"),
    "f_min_hz": (("time", "island"), "Hz", "minimum island frequency over the sub-steps of the step"),
    "f_max_hz": (("time", "island"), "Hz", "maximum island frequency over the sub-steps of the step"),
    "rocof_hz_s": (("time", "island"), "Hz/s", "largest |rate of change of frequency| over a 100 ms window within the step"),
    "rocof_long_hz_s": (("time", "island"), "Hz/s", "largest |rate of change of frequency| over a 500 ms window within the step"),
    "p_kinetic_mw": (("time", "island"), "MW", "kinetic power released by the island's rotors (positive while frequency falls)"),
    "p_loss_mw": (("time", "island"), "MW", "network losses of the island"),
    "p_unserved_mw": (("time", "island"), "MW", "load not served (shed or lost)"),
    "p_other_mw": (("time", "island"), "MW", "other loads served (offices, auxiliaries, deliveries to other sites)"),
    "vm_pu": (("time", "bus"), "1", "bus voltage magnitude (per unit of nominal)"),
    "loading_pct": (("time", "branch"), "percent", "branch loading (of thermal rating)"),
    "t_amb_c": (("time",), "degC", "ambient dry-bulb temperature"),
}

#: Component dimensions and the site lists (or derived sets) that name their coordinates.
DIMS = ("hall", "turbine", "bess", "grid_tie", "island", "bus", "branch")
