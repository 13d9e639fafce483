"""Malformed site and campus files: one clear message naming file, field path and expectation; exit 2.

Each case mutates the small valid site in ``tests/data/minimal_site.toml`` (or writes a campus file)
and runs ``twin validate`` on it in-process; one case also runs the real console script to show that
no traceback reaches the user.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sites import SiteError, load_site
from twin.cli import app

DATA = Path(__file__).parents[1] / "data"
MINIMAL = (DATA / "minimal_site.toml").read_text()
runner = CliRunner()


def _sub(pattern: str, repl: str, count: int = 1):
    def mutate(text: str) -> str:
        new, n = re.subn(pattern, repl, text, count=count, flags=re.M)
        assert n, f"test setup: pattern {pattern!r} not found"
        return new

    return mutate


CAMPUS_NO_RATING = """
[campus]
id = "camp"
name = "Test campus"
sites = ["{site}"]

[[lines]]
id = "link"
from_bus = "mini/mv"
to_bus = "mini/hall-bus"
length_km = 1.0
r_ohm_per_km = 0.04
x_ohm_per_km = 0.3
assumption = "test link"
"""

# (case id, mutation of the minimal file, expected field path, expected-value words)
CASES = [
    ("bad-toml", _sub(r'^id = "mini"$', 'id = "mini'), "", "not valid TOML"),
    ("unknown-bus", _sub(r'^to_bus = "hall-bus"$', 'to_bus = "nowhere"'), "lines[id=cable].to_bus", "unknown bus 'nowhere'"),
    ("negative-rating", _sub(r"value = 16\.48", "value = -16.48"), "turbine_models.t130.p_iso_mw", "greater than 0, got -16.48"),
    ("missing-rating", _sub(r"^max_i_ka = 1\.0\n", ""), "lines[id=cable].max_i_ka", "required field is missing"),
    ("duplicate-id", _sub(r'^id = "mv"$', 'id = "hv"'), "buses[id=hv].id", "duplicate id 'hv'"),
    ("duplicate-expanded-id", lambda t: t + '\n[[chillers]]\nid = "ch-03"\nplant = "plant"\nbus = "mv"\nq_ref_mw = 1.0\ncop_ref = 3.0\nassumption = "x"\n',
     "chillers[id=ch-03].id", "duplicate id 'ch-03'"),
    ("wrong-unit", _sub(r'p_iso_mw = \{ value = 16\.48, source = "S21" \}', 'p_iso_mw = { value = 16480, unit = "kW", source = "S21" }'),
     "turbine_models.t130", "unit 'kW' given, expected 'MW'"),
    ("wrong-type", _sub(r"^vn_kv = 161\.0$", 'vn_kv = "161 kV"'), "buses[id=hv].vn_kv", "valid number"),
    ("island-no-source", lambda t: t + '\n[[buses]]\nid = "orphan"\nvn_kv = 34.5\nassumption = "x"\n\n[[loads]]\nid = "lonely"\nbus = "orphan"\np_mw = 5.0\nassumption = "x"\n',
     "", "has load but no source"),
    ("no-provenance", _sub(r'^import_limit_mw = \{ value = 150\.0, source = "S6" \}$', "import_limit_mw = 150.0"),
     "grid_ties[id=utility].import_limit_mw", "needs a `source`"),
    ("unknown-source-id", _sub(r'source = "S6"', 'source = "S999"'), "grid_ties[id=utility].import_limit_mw", "unknown source ID 'S999'"),
    ("unknown-field", _sub(r"^gpus_per_rack = 64$", "gpus_per_rack = 64\ngpu_per_rack = 64"), "halls[id=hall].gpu_per_rack", "unknown field"),
    ("unknown-model", _sub(r'^model = "t130"$', 'model = "t131"'), "turbines[id=gt].model", "unknown turbine model 't131'"),
    ("trafo-voltage", _sub(r"^vn_lv_kv = 34\.5$", "vn_lv_kv = 13.8"), "transformers[id=t1].vn_lv_kv", "does not match bus 'mv' at 34.5 kV"),
    ("soc-window", lambda t: t + '\n[[bess]]\nid = "b"\nbus = "mv"\nunits = 10\nunit_p_mw = 1.0\nunit_e_mwh = 4.0\nrte_frac = 0.9\nsoc_min_frac = 0.9\nsoc_max_frac = 0.5\nsoc_init_frac = 0.6\nassumption = "x"\n',
     "bess[id=b]", "soc_min_frac must be below soc_max_frac"),
    ("zero-count", _sub(r"^count = 6$", "count = 0"), "chillers[id=ch].count", "greater than or equal to 1"),
]


@pytest.mark.parametrize("case,mutate,path,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_site_file(tmp_path, case, mutate, path, expected):
    f = tmp_path / f"{case}.toml"
    f.write_text(mutate(MINIMAL))
    with pytest.raises(SiteError) as info:
        load_site(f)
    msg = str(info.value)
    assert msg.startswith(str(f)), msg
    assert f"{path}:" in msg if path else True, msg
    assert expected in msg, msg
    result = runner.invoke(app, ["validate", str(f)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert expected in " ".join(result.output.split()), result.output
    if path:
        assert f"{path}:" in result.output, result.output


def test_campus_link_without_rating(tmp_path):
    (tmp_path / "mini.toml").write_text(MINIMAL)
    f = tmp_path / "camp.toml"
    f.write_text(CAMPUS_NO_RATING.format(site=(tmp_path / "mini.toml").as_posix()))
    with pytest.raises(SiteError) as info:
        load_site(f)
    assert "lines[id=link].max_i_ka: required field is missing" in str(info.value)
    assert runner.invoke(app, ["validate", str(f)]).exit_code == 2


def test_unknown_variant_and_name():
    with pytest.raises(SiteError, match=r"variants: no variant 'nope'; expected one of sub22, 2025"):
        load_site("colossus1:nope")
    result = runner.invoke(app, ["show", "atlantis"])
    assert result.exit_code == 2
    assert "unknown site; expected one of" in result.output


def test_minimal_site_is_valid():
    site = load_site(DATA / "minimal_site.toml")
    assert [c.id for c in site.chillers] == [f"mini/ch-0{i}" for i in range(1, 7)]
    assert runner.invoke(app, ["validate", str(DATA / "minimal_site.toml")]).exit_code == 0


def test_console_script_prints_no_traceback(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text(CASES[1][1](MINIMAL))
    proc = subprocess.run([sys.executable, "-m", "twin.cli", "validate", str(f)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "lines[id=cable].to_bus: unknown bus 'nowhere'" in proc.stderr


def test_console_command_exit_codes_and_output(tmp_path):
    """twin.cli.main (the console script) leaves at once, with the command's code and its output flushed."""
    ok = subprocess.run([sys.executable, "-m", "twin.cli", "sites"], capture_output=True, text=True)
    assert ok.returncode == 0 and "memphis" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "twin.cli", "show", "nosuchsite"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown site" in bad.stderr
    usage = subprocess.run([sys.executable, "-m", "twin.cli", "--no-such-option"], capture_output=True, text=True)
    assert usage.returncode == 2 and "No such option" in usage.stderr
