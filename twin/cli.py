"""The ``twin`` command line.

Bad input (a malformed site file, an unknown name) prints one clear message naming the file, the field
path and what was expected, and exits with code 2, without a traceback.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sites import InputError, list_sites, load_site

app = typer.Typer(
    name="twin",
    help="Digital twin of the power and cooling of gigawatt AI campuses (reference: xAI Colossus, Memphis).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output (CI logs, files) gets a wide console rather than rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 150)

#: Exit code for bad input (a malformed file, an unknown name).
EXIT_BAD_INPUT = 2


def _print_error(exc: Exception) -> None:
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)


def _user_errors(fn):
    """Turn input errors into a message on stderr and exit code 2, and a run stopped by a numerical failure
    (:class:`twin.engine.SimulationDiverged`) into a message and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            _print_error(exc)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except RuntimeError as exc:
            from twin.engine import SimulationDiverged

            if not isinstance(exc, SimulationDiverged):
                raise
            err_console.print(f"[bold red]run failed:[/] {escape(str(exc))} (recorded as failed in the catalog)")
            raise typer.Exit(1) from None

    return wrapper


@app.command("sites")
@_user_errors
def sites_cmd() -> None:
    """List the reference sites, campuses and variants."""
    table = Table(title="Reference sites")
    for col in ("name", "kind", "as of", "description"):
        table.add_column(col)
    for name in list_sites():
        s = load_site(name)
        table.add_row(name, s.kind, s.as_of, s.description)
    console.print(table)


@app.command("show")
@_user_errors
def show_cmd(
    name: Annotated[str, typer.Argument(help="site, campus or variant (e.g. memphis, colossus1:sub22) or a .toml path")],
    t_amb_c: Annotated[Optional[float], typer.Option("--t-amb-c", help="ambient dry-bulb [°C]; default: design day")] = None,
) -> None:
    """A table per electrical island: generation (ISO and derated), batteries, loads and reserve margin."""
    from twin.operating_point import nominal_operating_point

    site = load_site(name)
    op = nominal_operating_point(site, t_amb_c)
    console.print(f"[bold]{site.name}[/] ({site.label}, as of {site.as_of or 'n/a'}) at {op.t_amb_c:.1f} °C ambient")
    table = Table(title="Islands at the nominal operating point")
    table.add_column("quantity")
    table.add_column("unit")
    for isl in op.islands:
        table.add_column(isl.name, justify="right")

    def pct(x: float) -> str:
        return "n/a" if x != x else (f"[red]{x:+.1f}[/]" if x < 0 else f"{x:+.1f}")

    rows = (
        ("reference", "", lambda i: "grid tie" if i.grid_tied else "droop (islanded)"),
        ("turbines, ISO", "MW", lambda i: f"{i.p_iso_mw:,.1f}"),
        (f"turbines at {op.t_amb_c:.1f} °C", "MW", lambda i: f"{i.p_derated_mw:,.1f}"),
        ("  of which online", "MW", lambda i: f"{i.p_online_derated_mw:,.1f}"),
        ("grid import limit", "MW", lambda i: f"{i.p_grid_limit_mw:,.1f}"),
        ("BESS power", "MW", lambda i: f"{i.p_bess_mw:,.1f}"),
        ("BESS energy", "MWh", lambda i: f"{i.e_bess_mwh:,.0f}"),
        ("IT load", "MW", lambda i: f"{i.p_it_mw:,.1f}"),
        ("cooling load", "MW", lambda i: f"{i.p_cooling_mw:,.1f}"),
        ("other load", "MW", lambda i: f"{i.p_other_mw:,.1f}"),
        ("total load", "MW", lambda i: f"{i.p_load_mw:,.1f}"),
        ("reserve margin", "%", lambda i: pct(i.margin_pct)),
        ("  with BESS", "%", lambda i: pct(i.margin_bess_pct)),
    )
    for label, unit, fmt in rows:
        table.add_row(label, unit, *[fmt(i) for i in op.islands])
    warnings = []
    for isl in op.islands:
        m = isl.margin_pct
        if m == m and m < 0:
            warnings.append(
                f"{isl.name}: firm supply (derated turbines + grid limit) is {-m:.1f} % short of the nominal load; "
                "the batteries or load reduction must cover the gap"
            )
        if isl.q_unmet_mw > 0:
            warnings.append(f"{isl.name}: chillers cannot reject {isl.q_unmet_mw:.1f} MW of heat at {op.t_amb_c:.1f} °C")
    console.print(table)
    console.print(
        "Nominal point: GPUs at 80 % of TDP, chillers sharing the heat at the ambient shown; "
        "margin = (derated turbines incl. standby + grid import limit − load) / load."
    )
    for w in warnings:
        console.print(f"[yellow]warning:[/] {w}")


@app.command("validate")
def validate_cmd(
    files: Annotated[list[Path], typer.Argument(help="site or campus files (or reference names) to check")],
) -> None:
    """Check site files: schema, units, sources, references, islands. Exit 2 on the first bad file."""
    bad = False
    for f in files:
        try:
            site = load_site(f)
        except InputError as exc:
            _print_error(exc)
            bad = True
            continue
        n = sum(len(getattr(site, k)) for k in ("buses", "lines", "transformers", "turbines", "bess", "halls", "chillers"))
        console.print(f"[green]ok[/] {f}: {site.kind} {site.label!r}, {n} components, {len(site.islands())} island(s)")
    if bad:
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command("export-net")
@_user_errors
def export_net_cmd(
    name: Annotated[str, typer.Argument(help="site, campus or variant, or a .toml path")],
    out: Annotated[Path, typer.Option("--out", "-o", help="pandapower JSON file to write")] = Path("net.json"),
    t_amb_c: Annotated[Optional[float], typer.Option("--t-amb-c", help="ambient dry-bulb [°C]; default: design day")] = None,
) -> None:
    """Write the pandapower network at the nominal operating point (load it with pandapower.from_json)."""
    import pandapower as pp

    from twin.operating_point import nominal_net

    net = nominal_net(load_site(name), t_amb_c)
    out.parent.mkdir(parents=True, exist_ok=True)
    pp.to_json(net, str(out))
    console.print(f"wrote {out} ({len(net.bus)} buses, {len(net.line) + len(net.trafo)} branches, {len(net.gen)} units, {len(net.load)} loads)")


@app.command("scenarios")
@_user_errors
def scenarios_cmd() -> None:
    """List the shipped scenarios (use them with --scenario NAME)."""
    from twin.scenario import list_scenarios, load_scenario

    table = Table(title="Scenarios")
    for col in ("name", "site", "horizon", "weather", "events", "description"):
        table.add_column(col)
    for name in list_scenarios():
        sc = load_scenario(name)
        w = sc.weather.design_day or sc.weather.profile or f"{sc.weather.t_amb_c} °C"
        table.add_row(name, sc.scenario.site, str(sc.scenario.horizon), w, str(len(sc.events)), sc.scenario.description)
    console.print(table)


def _compile_notice() -> None:
    """Say why the first run after an install (or an upgrade) sits at 0 % for a while."""
    from twin.engine import kernel_compiled

    if not kernel_compiled():
        err_console.print("[dim]First run after an install or an upgrade: numba compiles the kernels into its cache "
                          "(about a minute on 2 cores); later runs start in seconds.[/]", highlight=False)


@app.command("run")
@_user_errors
def run_cmd(
    name: Annotated[Optional[str], typer.Argument(help="site, campus or variant (default: the scenario's site)")] = None,
    scenario: Annotated[str, typer.Option("--scenario", "-s", help="preset name (twin scenarios) or a scenario .toml")] = "baseline-day",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="run directory (default: $TWIN_HOME/<run id>, TWIN_HOME=./runs)")] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="write figures and report.md")] = True,
) -> None:
    """Run a scenario second by second: progress, a KPI table, results.zarr, kpis.json, figures and report.md."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from twin.recorder import open_results
    from twin.report import kpi_rows, write_run_report
    from twin.runner import run, scenario_doc
    from twin.scenario import load_scenario

    sc = load_scenario(scenario)
    site = name or sc.scenario.site
    _compile_notice()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f} %"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=False) as bar:
        task = bar.add_task(f"{sc.scenario.name} on {site}", total=1.0)
        result = run(site, sc, run_dir=out, progress=lambda frac, eta: bar.update(task, completed=frac),
                     scenario_origin=scenario)
    table = Table(title=f"KPIs — {sc.scenario.name} on {site} ({result.wall_s:.1f} s wall)")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for row in kpi_rows(result.kpis):
        table.add_row(*row)
    console.print(table)
    if plots:
        from twin.plots import plot_run

        ds = open_results(result.run_dir, dask=False)
        figures = plot_run(ds, result.run_dir / "figures")
        write_run_report(result.run_dir, result.kpis, figures, f"{sc.scenario.name} on {site}", scenario_doc(sc))
    console.print(f"run {result.run_id}: {result.run_dir}" + (" (report.md, figures/)" if plots else ""))


#: Exit code of a command interrupted by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


@app.command("sweep")
@_user_errors
def sweep_cmd(
    name: Annotated[str, typer.Argument(help="site, campus or variant")],
    scenario: Annotated[str, typer.Option("--scenario", "-s", help="base scenario: preset name or .toml")] = "baseline-day",
    n1: Annotated[Optional[str], typer.Option("--n-1", help="comma list of: turbines, branches, bess, chillers, grid-ties")] = None,
    cases: Annotated[Optional[Path], typer.Option("--cases", help=escape("TOML file with [[cases]] tables (name, events, weather, workload)"))] = None,
    at: Annotated[Optional[str], typer.Option("--at", help="contingency time, HH:MM:SS from the start (default 15:00:00 or a tenth of the horizon)")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="sweep directory (default: $TWIN_HOME/<sweep id>)")] = None,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", envvar="TWIN_DASK_SCHEDULER", help="address of a running dask scheduler, e.g. tcp://127.0.0.1:8786 (default: a LocalCluster)")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="LocalCluster worker processes (default: one per core)")] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="worst cases to show")] = 15,
    sample: Annotated[Optional[int], typer.Option("--sample", min=1, help="run this many random N-k cases of the --n-1 kinds (all kinds if none) instead of every N-1 case")] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="components out per random case (with --sample)")] = 2,
    seed: Annotated[int, typer.Option("--seed", min=0, help="seed of the random cases (with --sample)")] = 0,
    workload_seed: Annotated[Optional[int], typer.Option("--workload-seed", min=0, max=2**32 - 1, help="workload seed of every case (default: the scenario's)")] = None,
    resume: Annotated[bool, typer.Option("--resume/--restart", help="with --out: skip the cases already done there (default; failed ones run again) or start over")] = True,
) -> None:
    """Run every case (N-1 contingencies, random N-k cases, listed cases) on dask.distributed; rank the worst first.

    A case that fails is recorded with its reason and the sweep goes on; cases are written to
    cases.jsonl as they finish, so an interrupted sweep resumes where it stopped when run again with
    the same --out (failed cases are run again).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from twin.catalog import new_run_id, twin_home
    from twin.sweep import RECORDS, sweep, write_sweep_report

    kinds = [k.strip() for k in n1.split(",")] if n1 else []
    if not kinds and cases is None and sample is None:
        raise InputError("twin sweep", [("", "nothing to sweep: give --n-1 KINDS, --sample N and/or --cases FILE")])
    out = out or twin_home() / new_run_id("sweep")
    err_console.print(f"sweep into {escape(str(out))}", highlight=False, soft_wrap=True)
    if scheduler is None:  # an external cluster's workers have their own caches
        _compile_notice()
    counts = [0, 0]  # cases recorded, of

    def progress(done: int, total: int) -> None:
        counts[:] = [done, total]
        bar.update(task, completed=done, total=total)

    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err_console) as bar:
            task = bar.add_task(f"sweep {scenario} on {name}", total=None)
            ds, ranking = sweep(name, scenario, n1=kinds, cases_file=cases, at=at, out_dir=out, scheduler=scheduler,
                                n_workers=workers, progress=progress, sample=sample, k=k, seed=seed,
                                workload_seed=workload_seed, resume=resume,
                                note=lambda msg: err_console.print(f"[yellow]note:[/] {escape(msg)}", highlight=False))
    except KeyboardInterrupt:
        done, total = counts
        err_console.print(f"interrupted: {done} of {total} cases kept in {escape(str(out / RECORDS))}; "
                          f"run the same command with --out {escape(str(out))} to resume", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    n_failed = int(ds.attrs.get("failed", 0))
    if n_failed:
        err_console.print(f"{n_failed} of {ds.sizes['case']} cases failed (reasons in {out / 'failures.json'} and the report)")
    table = Table(title=f"Worst cases of {ds.sizes['case']} — {scenario} on {name}")
    for col in ("rank", "case", "unserved MWh", "GPU·h lost", "f min Hz", "RoCoF Hz/s", "max loading %", "t GPU max °C"):
        table.add_column(col, justify="right" if col not in ("case",) else "left")
    for r, case in enumerate(ranking[:top], start=1):
        row = ds.sel(case=case)
        table.add_row(str(r), case, f"{float(row.unserved_energy_mwh):.3f}", f"{float(row.gpu_hours_lost):,.0f}",
                      f"{float(row.f_min_hz.min()):.3f}", f"{float(row.rocof_max_hz_s.max()):.3f}",
                      f"{float(row.loading_max_pct):.1f}", f"{float(row.t_gpu_max_c):.1f}")
    console.print(table)
    report = write_sweep_report(ds, ranking, out)
    console.print(f"sweep: {out} (kpis.nc, kpis.csv, ranking.json, {report.name}, figures/)")


@app.command("plot")
@_user_errors
def plot_cmd(run_dir: Annotated[Path, typer.Argument(help="a run directory (holding results.zarr)")]) -> None:
    """Write PNG figures of a run: power by source, frequency, batteries, temperatures and throttling."""
    from twin.plots import plot_run
    from twin.recorder import STORE_NAME, open_results

    if not (run_dir / STORE_NAME).exists():
        raise InputError(run_dir, [("", f"no {STORE_NAME} here; expected a run directory written by twin run")])
    for p in plot_run(open_results(run_dir, dask=False), run_dir / "figures"):
        console.print(f"wrote {p}")


@app.command("diagram")
@_user_errors
def diagram_cmd(
    name: Annotated[str, typer.Argument(help="site, campus or variant, or a .toml path")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write")] = Path("one-line.png"),
) -> None:
    """Draw a one-line diagram of the network, with load-flow results at the nominal point."""
    from grid_models.diagram import draw_one_line
    from twin.operating_point import nominal_net

    site = load_site(name)
    path = draw_one_line(site, out, nominal_net(site))
    console.print(f"wrote {path}")


def _register_serve() -> None:
    """``twin serve`` lives with the API (api/cli.py); the CLI only registers it."""
    from api.cli import serve

    app.command("serve")(serve)


_register_serve()


def main() -> None:
    """The ``twin`` console command: run the app, then leave without finalising every imported module.

    Tearing down the interpreter after a run (numba, pandas, xarray, matplotlib, …) takes most of a
    second. When a command returns, its stores are closed, its threads joined and the catalog committed
    (autocommit), so the process flushes its output and exits at once with the command's code. An
    uncaught exception takes the normal path (traceback, full shutdown).
    """
    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int) and exc.code is not None:
            print(exc.code, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
