"""``twin show``: summed ISO ratings agree with the site sources (sites/data/sources.toml); derated values follow the file's slope."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from sites import load_site
from twin.cli import app

runner = CliRunner()


def _row(output: str, label: str) -> list[float]:
    """Numbers of one row of the transposed island table."""
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 3 and cells[1] == label:
            return [float(c.replace(",", "")) for c in cells[3:-1]]
    raise AssertionError(f"row {label!r} not in:\n{output}")


# the site sources (sites/data/sources.toml): C1 12 × 16.48 MW = 197.8 MW (§9); 15 × = 247 MW (§1 permit); Southaven permanent ≈1,272 MW
# derived ISO (§3: 17×16.5 + 16×38 + 8×48); temporary 27 and 46 Titan 350 at 38 MW (§3, §5).
ISO_CASES = [
    ("colossus1", 197.8, 0.1),
    ("colossus1:2025", 247.2, 0.5),
    ("southaven:permanent", 1272.0, 1.0),
    ("southaven", 27 * 38.0, 0.1),
    ("southaven:temp46", 46 * 38.0, 0.1),
]


@pytest.mark.parametrize("name,expected,tol", ISO_CASES)
def test_iso_sum_matches_sites_md(name, expected, tol):
    result = runner.invoke(app, ["show", name])
    assert result.exit_code == 0, result.output
    assert sum(_row(result.output, "turbines, ISO")) == pytest.approx(expected, abs=tol)


@pytest.mark.parametrize("name", ["southaven:permanent", "memphis:full-build", "colossus1"])
@pytest.mark.parametrize("t_amb_c", [None, 42.2, 5.0])
def test_derated_follows_file_slope(name, t_amb_c):
    """Σ P_iso·(1 − a·(T − 15)) with a and P_iso read from the site file, summed per island."""
    site = load_site(name)
    t = site.weather.design_t_amb_c if t_amb_c is None else t_amb_c
    args = ["show", name] + ([] if t_amb_c is None else ["--t-amb-c", str(t_amb_c)])
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"at {t:.1f} °C ambient" in result.output
    shown = _row(result.output, f"turbines at {t:.1f} °C")
    expected = sum(
        site.turbine_model(u).p_iso_mw * (1 - site.turbine_model(u).derate_per_c * (t - 15.0))
        for u in site.turbines
        if u.state != "out"
    )
    assert sum(shown) == pytest.approx(expected, abs=0.05 * len(shown))


def test_show_flags_short_supply_and_hot_chillers():
    result = runner.invoke(app, ["show", "colossus1"])
    assert re.search(r"colossus1: firm supply .* short", " ".join(result.output.split()))
    hot = runner.invoke(app, ["show", "colossus2", "--t-amb-c", "46"])
    assert "chillers cannot reject" in " ".join(hot.output.split())


def test_sites_lists_every_name():
    result = runner.invoke(app, ["sites"])
    assert result.exit_code == 0
    for name in ("colossus1:sub22", "colossus2:full-build", "southaven:permanent", "memphis"):
        assert name in result.output
