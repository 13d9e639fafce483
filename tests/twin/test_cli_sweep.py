"""``twin sweep`` with bad input, interrupted, resumed: a clear message naming the option, file or field
and exit code 2 (130 when interrupted), never a traceback.

Most tests run the cases in this process (``inprocess``: :func:`twin.sweep.run_case` one after the other,
no dask), the executor itself is tested on dask in test_sweep.py and test_cluster.py.
"""

from __future__ import annotations

import contextlib
import json

import pytest
import xarray as xr
from typer.testing import CliRunner

import twin.sweep as sw
from sites import InputError
from twin.cli import EXIT_BAD_INPUT, EXIT_INTERRUPTED, app
from twin.scenario import ScenarioError, parse_time_s

BASE = ('[scenario]\nname = "short"\nsite = "memphis"\nstart = "2026-07-15T14:30:00"\nhorizon = "00:03:00"\n'
        '[workload]\nseed = 3\n')
#: a case that fails once it runs (its workload trace does not exist)
BAD_TRACE = '[[cases]]\nname = "bad trace"\n[cases.workload]\ntrace = "no-such-trace.csv"\n'
runner = CliRunner()


@pytest.fixture
def base(tmp_path):
    path = tmp_path / "base.toml"
    path.write_text(BASE)
    return path


@pytest.fixture
def inprocess(monkeypatch):
    """Cases run here, in order, by the sweep's own ``run_case``; returns the names of the cases run."""
    ran: list[str] = []

    @contextlib.contextmanager
    def no_cluster(scheduler=None, n_workers=None):
        yield None

    def run_here(client, site_name, cases, on_result):
        for name, doc in cases:
            ran.append(name)
            on_result(sw.run_case(site_name, name, doc))

    monkeypatch.setattr(sw, "dask_client", no_cluster)
    monkeypatch.setattr(sw, "run_cases", run_here)
    return ran


def _no_traceback(res) -> str:
    """The command's output, asserting it ended by an exit code and not by an exception."""
    assert isinstance(res.exception, SystemExit) or res.exception is None, repr(res.exception)
    assert "Traceback" not in res.output
    return " ".join(res.output.split())  # rich wraps long lines


@pytest.mark.parametrize("args,option", [
    (["--workers", "-2"], "--workers"), (["--workers", "0"], "--workers"), (["--sample", "0"], "--sample"),
    (["--k", "0"], "--k"), (["--top", "0"], "--top"), (["--seed", "-1"], "--seed"),
    (["--workload-seed", "-1"], "--workload-seed"), (["--workload-seed", str(2**32)], "--workload-seed"),
])
def test_counts_out_of_range_name_the_option(args, option):
    res = runner.invoke(app, ["sweep", "memphis", "--n-1", "bess", *args])
    out = _no_traceback(res)
    assert res.exit_code == EXIT_BAD_INPUT and f"Invalid value for '{option}'" in out and "than or" in out, out


def test_zero_sample_and_workers_are_refused_by_the_library_too(base, tmp_path):
    with pytest.raises(ScenarioError, match="sample"):  # not the full N-1 instead
        sw.sweep("memphis", base, n1=["bess"], sample=0, out_dir=tmp_path / "out")
    with pytest.raises(InputError, match="--workers"):  # not one per core
        with sw.dask_client(n_workers=0):
            pass


@pytest.mark.parametrize("text,where", [
    ("cases = 3\n", "cases: expected a valid list, got 3"),
    ('[[cases]]\nname = "a"\nevnets = []\n', "cases[0].evnets: unknown field"),
    ('[[case]]\nname = "a"\n', "case: unknown field"),
    ('[[cases]]\nname = "a"\n[[cases]]\nname = "b"\nevents = "trip everything"\n', "cases[1].events: expected a valid list"),
    ('[[cases]]\nname = "a"\n[cases.weather]\nt_amb_c = 99\n', "cases[0].weather.t_amb_c: expected less than or equal to 60"),
    ('[[cases]]\nname = "a"\n[[cases.events]]\nat = "00:01:00"\ndo = "trip"\ntarget = "southaven/nothing-*"\n',
     "cases[0].events[0].target: 'southaven/nothing-*' matches no component"),
])
def test_a_bad_cases_file_names_the_file_and_the_case_field(base, tmp_path, text, where):
    cases = tmp_path / "cases.toml"
    cases.write_text(text)
    res = runner.invoke(app, ["sweep", "memphis", "-s", str(base), "--cases", str(cases), "--out", str(tmp_path / "out")])
    out = _no_traceback(res)
    assert res.exit_code == EXIT_BAD_INPUT and f"{cases}: {where}" in out, out
    assert out.count("error:") == 1 and "[0]" not in out.replace("cases[0]", "").replace("events[0]", "")  # one problem, not one per character


def test_listed_case_events_are_named_in_the_cases_file_when_the_base_has_events(tmp_path):
    base = tmp_path / "base.toml"
    base.write_text(BASE + '[[events]]\nat = "00:00:30"\ndo = "trip"\ntarget = "southaven/titan350-01"\n')
    cases = tmp_path / "cases.toml"
    cases.write_text('[[cases]]\nname = "a"\n[[cases.events]]\nat = "00:01:00"\ndo = "open"\ntarget = "southaven/titan350-02"\n')
    with pytest.raises(ScenarioError) as info:
        sw.sweep("memphis", base, cases_file=cases, out_dir=tmp_path / "out")
    assert info.value.file == str(cases) and [p for p, _ in info.value.problems] == ["cases[0].events[0].do"]


def test_the_api_and_the_cli_share_one_case_schema():
    from api.models import SweepCase as ApiCase
    from api.models import SweepCreate

    assert ApiCase is sw.SweepCases.model_fields["cases"].annotation.__args__[0]
    assert SweepCreate.model_fields["cases"].annotation.__args__[0] is ApiCase


@pytest.mark.parametrize("address", ["bogus-address", "tcp://127.0.0.1:1"])
def test_an_unreachable_scheduler_is_a_message_naming_the_option(base, tmp_path, monkeypatch, address):
    monkeypatch.setattr(sw, "CONNECT_TIMEOUT_S", 1.0)
    res = runner.invoke(app, ["sweep", "memphis", "-s", str(base), "--n-1", "grid-ties", "--out", str(tmp_path / "out"),
                              "--scheduler", address])
    out = _no_traceback(res)
    assert res.exit_code == EXIT_BAD_INPUT, out
    assert "--scheduler / TWIN_DASK_SCHEDULER" in out and repr(address) in out and "dask scheduler" in out, out


def test_ctrl_c_tells_what_was_kept_and_how_to_resume(base, tmp_path, monkeypatch):
    """A Ctrl-C after the first case: exit 130, the folder shown at the start, the cases kept, the command to resume."""
    @contextlib.contextmanager
    def no_cluster(scheduler=None, n_workers=None):
        yield None

    def one_then_ctrl_c(client, site_name, cases, on_result):
        on_result(sw.run_case(site_name, *cases[0]))
        raise KeyboardInterrupt

    monkeypatch.setattr(sw, "dask_client", no_cluster)
    monkeypatch.setattr(sw, "run_cases", one_then_ctrl_c)
    out_dir = tmp_path / "out"
    res = runner.invoke(app, ["sweep", "memphis", "-s", str(base), "--n-1", "grid-ties", "--out", str(out_dir)])
    out = _no_traceback(res)
    assert res.exit_code == EXIT_INTERRUPTED == 130, out
    assert out.index(f"sweep into {out_dir}") < out.index("interrupted")
    assert f"interrupted: 1 of 3 cases kept in {out_dir / sw.RECORDS}; run the same command with --out {out_dir} to resume" in out
    assert len(sw.read_records(out_dir)) == 1


def test_resume_runs_the_failed_cases_again(base, tmp_path, inprocess):
    cases = tmp_path / "cases.toml"
    cases.write_text(BAD_TRACE)
    out = tmp_path / "out"
    kw = dict(n1=["grid-ties"], cases_file=cases, at="00:01:00", out_dir=out)
    ds, _ = sw.sweep("memphis", base, **kw)
    assert inprocess == ["base", "open colossus1/mlgw-63", "open colossus2/mlgw-service", "bad trace"]
    assert list(ds.status.values) == ["done"] * 3 + ["failed"]
    inprocess.clear()
    seen = []
    ds2, _ = sw.sweep("memphis", base, progress=lambda d, n: seen.append((d, n)), **kw)
    assert inprocess == ["bad trace"] and seen[0] == (3, 4)  # the done cases are kept, the failed one runs again
    lines = [json.loads(x) for x in (out / sw.RECORDS).read_text().splitlines()]
    assert sorted(r["case"] for r in lines) == sorted(ds.case.values)  # one record per case: the old one replaced
    assert list(ds2.status.values) == ["done"] * 3 + ["failed"]  # the trace is still missing


def test_islands_split_off_by_a_branch_outage_keep_their_kpis(tmp_path, inprocess):
    """Tripping southaven's GSU makes an island of its generators (southaven/gen-t1, not an island of the site):
    its frequency is in kpis.nc, kpis.csv and the ranking's frequency key."""
    base = tmp_path / "base.toml"
    base.write_text(BASE.replace('site = "memphis"', 'site = "memphis:full-build"'))
    cases = tmp_path / "cases.toml"
    cases.write_text('[[cases]]\nname = "gsu"\n[[cases.events]]\nat = "00:01:00"\ndo = "trip"\ntarget = "southaven/gsu-t1"\n')
    ds, ranking = sw.sweep("memphis:full-build", base, cases_file=cases, out_dir=tmp_path / "out")
    rec = sw.read_records(tmp_path / "out")["gsu"]
    from sites import load_site

    site_islands = [i.name for i in load_site("memphis:full-build").islands()]
    split = sorted(set(rec["f_min_hz"]) - set(site_islands))
    assert split == ["southaven/gen-t1"]  # the premise: the trip made an island the site does not have
    assert list(ds.island.values) == site_islands + split
    assert float(ds.f_min_hz.sel(case="gsu", island=split[0])) == rec["f_min_hz"][split[0]]
    with xr.open_dataset(tmp_path / "out" / "kpis.nc", engine="h5netcdf") as nc:
        assert split[0] in nc.island.values
    csv = (tmp_path / "out" / "kpis.csv").read_text()
    assert split[0] in csv
    assert sw.sweep_islands([rec], site_islands) == site_islands + split


def test_sample_larger_than_the_population_says_so_and_the_default_time_is_stated(base, tmp_path, inprocess):
    out_dir = tmp_path / "out"
    res = runner.invoke(app, ["sweep", "memphis", "-s", str(base), "--n-1", "bess", "--sample", "1000", "--out", str(out_dir)])
    out = _no_traceback(res)
    assert res.exit_code == 0, out
    n_bess = len([c for c in inprocess if c != "base"])
    assert n_bess == 3 and f"note: --sample 1000: the kinds give only {n_bess} distinct N-2 combinations" in out
    with xr.open_dataset(out_dir / "kpis.nc", engine="h5netcdf") as ds:
        at = ds.attrs["contingency_at"]
        assert ds.attrs["sample"] == f"all {n_bess} N-2 combinations (1000 asked)"
    assert at != "None" and f"contingency at {at})" in (out_dir / "report.md").read_text()
    from sites import load_site

    drawn = sw.sample_cases(load_site("memphis"), sw.load_scenario(base).model_dump(mode="json"), ["bess"], 2, 1000)
    assert {parse_time_s(e["at"]) for _, d in drawn for e in d["events"]} == {parse_time_s(at)}  # the time stated is the time used
    rec = sw.read_records(out_dir)
    assert set(rec) == set(inprocess)


def test_help_shows_the_cases_table_name():
    res = runner.invoke(app, ["sweep", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "[[cases]]" in res.output, res.output
