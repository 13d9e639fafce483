"""Chiller performance curves (``sites/data/chiller_curves.toml``): data that site files name by key.

The curve sets are data, like the site files, and live beside them; :mod:`twin.cooling` holds only the
model that evaluates them (``Chiller:Electric:EIR``, docs/physics.md §6).
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["ChillerCurve", "chiller_curves", "CURVES_FILE"]

CURVES_FILE = Path(__file__).parent / "data" / "chiller_curves.toml"


class ChillerCurve(NamedTuple):
    """One curve set: CAPFT and EIRFT biquadratics, the EIRFPLR quadratic and the valid input ranges [°C]."""

    capft: np.ndarray
    eirft: np.ndarray
    eirfplr: np.ndarray
    t_chw_range_c: tuple[float, float]
    t_amb_range_c: tuple[float, float]


@lru_cache(maxsize=1)
def chiller_curves() -> dict[str, ChillerCurve]:
    """The named curve sets of :data:`CURVES_FILE`."""
    doc = tomllib.loads(CURVES_FILE.read_text())
    return {name: ChillerCurve(np.array(c["capft"], float), np.array(c["eirft"], float), np.array(c["eirfplr"], float),
                               tuple(c["t_chw_range_c"]), tuple(c["t_amb_range_c"]))
            for name, c in doc.items()}
