"""Ambient temperature: named design days, profile files, constants; evaluated chunk by chunk.

A design day follows the ASHRAE daily temperature profile: ``T(h) = T_max − f(h)·DR`` with the
hourly fractions of the daily range ``f`` of ASHRAE Handbook—Fundamentals (2009), ch. 14, Table 6
(peak at 15:00, minimum at 05:00), interpolated linearly between hours.

| name | T_max | daily range | basis |
|---|---|---|---|
| ``memphis-0.4pct`` | 35.6 °C | 10 K | 0.4 % cooling dry-bulb, Memphis Intl [S58]; the daily range is an assumption (not in the source) |
| ``memphis-july-1980`` | 42.2 °C | 13.9 K | record high of 1980-07-13 (S59); lows "in the 80s °F" (S59): 83 °F = 28.3 °C assumed |
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .scenario import ScenarioError, WeatherSpec, parse_time_s

__all__ = ["DESIGN_DAYS", "DAILY_RANGE_FRACTION", "design_day_c", "AmbientProfile"]

#: Fraction of the daily range below the maximum, hours 1..24 (ASHRAE Fundamentals 2009, ch. 14, Table 6).
DAILY_RANGE_FRACTION = np.array(
    [0.87, 0.92, 0.96, 0.99, 1.00, 0.98, 0.93, 0.84, 0.71, 0.56, 0.39, 0.23,
     0.11, 0.03, 0.00, 0.03, 0.10, 0.21, 0.34, 0.47, 0.58, 0.68, 0.76, 0.82]
)

#: name → (T_max [°C], daily range [K])
DESIGN_DAYS: dict[str, tuple[float, float]] = {
    "memphis-0.4pct": (35.6, 10.0),
    "memphis-july-1980": (42.2, 13.9),
}


def design_day_c(name: str, seconds_of_day: np.ndarray) -> np.ndarray:
    """Ambient dry-bulb [°C] of a named design day at the given seconds after local midnight."""
    t_max, dr = DESIGN_DAYS[name]
    hours = np.arange(1, 25, dtype=float)  # the table's hour h is the hour ending at h:00
    frac = np.interp(np.mod(seconds_of_day, 86400.0) / 3600.0, np.r_[0.0, hours], np.r_[DAILY_RANGE_FRACTION[-1], DAILY_RANGE_FRACTION])
    return t_max - frac * dr


class AmbientProfile:
    """Ambient temperature of a scenario, evaluated at any simulation times.

    Parameters
    ----------
    spec : twin.scenario.WeatherSpec
    start_s_of_day : float
        Seconds after local midnight at the scenario start.
    base_dir : Path, optional
        Where a relative ``profile`` path is looked up (the scenario file's folder).
    """

    def __init__(self, spec: WeatherSpec, start_s_of_day: float = 0.0, base_dir: Path | None = None):
        self.spec = spec
        self.offset_s = start_s_of_day
        self._t = self._v = None
        if spec.profile is not None:
            path = Path(spec.profile)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            self._t, self._v = self._read(path)

    @staticmethod
    def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
        if not path.exists():
            raise ScenarioError(path, [("weather.profile", "no such file; expected a CSV with columns time, t_amb_c")])
        ts, vs = [], []
        with open(path, newline="") as fh:
            rows = csv.reader(fh)
            header = next(rows, None)
            if not header or len(header) < 2 or header[1].strip() != "t_amb_c":
                raise ScenarioError(path, [("weather.profile", f"expected a header 'time,t_amb_c', got {header!r}")])
            for n, row in enumerate(rows, start=2):
                try:
                    ts.append(parse_time_s(row[0] if ":" in row[0] else float(row[0])))
                    vs.append(float(row[1]))
                except (ValueError, IndexError):
                    raise ScenarioError(path, [(f"line {n}", f"expected 'time,t_amb_c' with a time and a number, got {row!r}")]) from None
        if len(ts) < 1 or np.any(np.diff(ts) <= 0):
            raise ScenarioError(path, [("weather.profile", "expected at least one row and strictly increasing times")])
        return np.asarray(ts), np.asarray(vs)

    def __call__(self, t_s: np.ndarray) -> np.ndarray:
        """Ambient dry-bulb [°C] at simulation times ``t_s`` [s from the start]."""
        t_s = np.asarray(t_s, dtype=float)
        if self.spec.t_amb_c is not None:
            return np.full(t_s.shape, float(self.spec.t_amb_c))
        if self._t is not None:
            return np.interp(t_s, self._t, self._v)
        return design_day_c(self.spec.design_day, t_s + self.offset_s)
