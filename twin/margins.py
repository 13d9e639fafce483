"""Reserve and N-1 security margins of each electrical island, from a (live) state.

For island *i* with load ``L`` [MW]:

* capacity ``C = Σ P_iso·k_T(T_amb)·d`` over its online turbines (``k_T`` the ambient derating of
  :func:`twin.turbines.derate_factor`, ``d`` a derate set by an event) ``+ Σ`` import limits of its
  closed grid ties ``+ Σ`` rated power of its available batteries (state of charge above the minimum);
* reserve margin ``m = (C − L)/L`` [-];
* N-1 margin ``m₁ = (C − U − L)/L`` with ``U`` the largest single infeed of the island (an online
  turbine, an available battery yard or a closed grid tie): the margin left after losing it.

An island without load has no margin (``nan``). These are capacity margins, not dynamic ones: they say
whether the remaining sources can carry the load, not whether frequency stays in bounds on the way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .plant import (
    BE_ISLAND, BE_P_MW, BE_SOC_MIN, GT_IMPORT_MW, GT_ISLAND, TU_DERATE_PER_C, TU_ISLAND, TU_P_ISO_MW, PlantArrays,
)
from .turbines import T_ISO_C

__all__ = ["IslandMargin", "reserve_margins"]


@dataclass(frozen=True)
class IslandMargin:
    """Capacity, load and margins of one island [MW, -]."""

    island: str
    load_mw: float
    turbine_capacity_mw: float
    grid_capacity_mw: float
    bess_capacity_mw: float
    largest_unit: str | None
    largest_unit_mw: float

    @property
    def capacity_mw(self) -> float:
        """Available capacity: turbines + grid ties + batteries [MW]."""
        return self.turbine_capacity_mw + self.grid_capacity_mw + self.bess_capacity_mw

    @property
    def reserve_margin(self) -> float:
        """(capacity − load)/load [-]; nan without load."""
        return (self.capacity_mw - self.load_mw) / self.load_mw if self.load_mw > 0 else float("nan")

    @property
    def n1_margin(self) -> float:
        """(capacity − largest unit − load)/load [-]; nan without load."""
        if self.load_mw <= 0:
            return float("nan")
        return (self.capacity_mw - self.largest_unit_mw - self.load_mw) / self.load_mw


def reserve_margins(
    plant: PlantArrays,
    *,
    load_mw: np.ndarray,
    t_amb_c: float,
    turbine_online: np.ndarray,
    bess_available: np.ndarray,
    grid_closed: np.ndarray,
    bess_soc: np.ndarray | None = None,
    turbine_derate: np.ndarray | None = None,
) -> list[IslandMargin]:
    """Reserve and N-1 margins of every island of ``plant``.

    Parameters
    ----------
    plant : twin.plant.PlantArrays
    load_mw : array (n_island,)
        Total load of each island (IT + cooling + other) [MW].
    t_amb_c : float
        Ambient dry-bulb [°C].
    turbine_online : bool array (n_turbine,)
    bess_available : bool array (n_bess,)
    grid_closed : bool array (n_grid_tie,)
    bess_soc : array (n_bess,), optional
        State of charge [-]; a yard at or below its minimum counts as unavailable.
    turbine_derate : array (n_turbine,), optional
        Fraction of capacity kept after ``derate`` events [-] (default 1).

    Returns
    -------
    list of IslandMargin
        In the order of ``plant.names["island"]``.
    """
    names = plant.names
    n_isl = plant.n_island
    load = np.asarray(load_mw, dtype=float).reshape(n_isl)
    turb, bess, grid = plant.turb, plant.bess, plant.grid
    d = np.ones(len(turb)) if turbine_derate is None else np.asarray(turbine_derate, dtype=float)
    k_t = np.clip(1.0 - turb[:, TU_DERATE_PER_C] * (float(t_amb_c) - T_ISO_C), 0.0, None)
    cap_t = np.where(np.asarray(turbine_online, dtype=bool), turb[:, TU_P_ISO_MW] * k_t * d, 0.0)
    ok_b = np.asarray(bess_available, dtype=bool)
    if bess_soc is not None and len(bess):
        ok_b = ok_b & (np.asarray(bess_soc, dtype=float) > bess[:, BE_SOC_MIN] + 1e-6)
    cap_b = np.where(ok_b, bess[:, BE_P_MW], 0.0)
    cap_g = np.where(np.asarray(grid_closed, dtype=bool), grid[:, GT_IMPORT_MW], 0.0) if len(grid) else np.zeros(0)
    out = []
    for i in range(n_isl):
        units: list[tuple[float, str]] = []
        parts = []
        for caps, arr, col, dim in ((cap_t, turb, TU_ISLAND, "turbine"), (cap_g, grid, GT_ISLAND, "grid_tie"),
                                    (cap_b, bess, BE_ISLAND, "bess")):
            sel = np.nonzero(arr[:, col].astype(int) == i)[0] if len(arr) else np.zeros(0, dtype=int)
            parts.append(float(caps[sel].sum()) if len(sel) else 0.0)
            units += [(float(caps[j]), names[dim][j]) for j in sel if caps[j] > 0]
        big = max(units) if units else (0.0, None)
        out.append(IslandMargin(names["island"][i], float(load[i]), parts[0], parts[1], parts[2], big[1], big[0]))
    return out
