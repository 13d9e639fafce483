"""Sweeps: many cases of one base scenario (every N-1 contingency, random N-k samples, a list of
what-ifs) on dask.distributed.

Cases are independent and seeded by the base scenario, so a sweep gives the same numbers with one
worker or many. Each case runs the full engine but keeps only its KPIs (computed from the segments in
memory). A case that fails (an unsupported contingency, a bad input, a worker that dies) is recorded
with its reason and the sweep goes on: it never aborts on a case.

Results are appended to ``cases.jsonl`` in the output folder as cases finish, so an interrupted sweep
keeps what it finished; running the same sweep into the same folder again runs only the cases not
done yet (a case counts as done when a record of its name and scenario document says so: failed and
cancelled cases run again, their new record replacing the old one). At the end the
sweep's result is a KPI :class:`xarray.Dataset` with a ``case`` dimension (and ``status``/``error``
per case), written as netCDF and CSV, the ranking of the finished cases worst first, the failures
with their reasons (``failures.json``), and on request a report.

This is the one executor of the project's sweeps: ``twin sweep`` calls :func:`sweep`, the API's
``POST /sweeps`` (``api.workers.SweepExecutor``) :func:`submit_cases` and :func:`collect_cases`; both
make their cases (N-1, random N-k, listed) with :func:`generate_cases`.

By default a :class:`dask.distributed.LocalCluster` is started (one single-threaded worker process per
core, with :data:`WORKER_ENV`); pass ``scheduler="tcp://host:8786"`` to use an existing cluster (the
workers need this package and the same site files). Give such workers one thread each and no nanny
(``dask worker ADDR --nthreads 1 --no-nanny``, one command per worker process): the engine's kernels
hold the GIL (only the load flow releases it), so threads of one worker would take turns; and dask's
nanny spawns its worker process with ``MALLOC_TRIM_THRESHOLD_`` set whatever the environment says (see
:data:`WORKER_ENV`), which only ``--no-nanny`` avoids (a worker without a nanny keeps the environment
of its command: leave the variable out of it). Workers keep the loaded sites and, per site and
operating point, the built network and its compilations (:func:`grid_models.cache.share_in_process`),
the day of workload samples (``twin.engine._day_samples``) and the engine's output arrays from case to
case; each case builds a fresh engine state (about a quarter of a one-hour case's CPU time).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import json
import logging
import math
import os
import re
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import xarray as xr

from sites import InputError, load_site

from .scenario import ScenarioError, SweepCases, load_scenario, parse_time_s

__all__ = ["N1_KINDS", "WORKER_ENV", "read_cases", "expand_cases", "sample_cases", "generate_cases", "TooManyCases", "run_case", "dask_client", "submit_cases",
           "collect_cases", "run_cases", "wait_stopped", "RecordLog", "sweep", "write_results", "kpi_dataset", "rank_cases",
           "read_records", "write_sweep_report", "contingency_time", "sweep_islands", "SchedulerError",
           "CONNECT_TIMEOUT_S"]

#: N-1 kinds → (site list, action).
N1_KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "turbines": (("turbines",), "trip"),
    "branches": (("lines", "transformers"), "trip"),
    "bess": (("bess",), "fail"),
    "chillers": (("chillers",), "fail"),
    "grid-ties": (("grid_ties",), "open"),
}

#: Environment of LocalCluster worker processes (dask's ``distributed.nanny.pre-spawn-environ``; None
#: removes a variable). dask sets ``MALLOC_TRIM_THRESHOLD_=65536``, which also turns off glibc's
#: dynamic mmap threshold: every segment's arrays are then mapped and unmapped afresh (measured: 14 M
#: page faults and ≈ 50 % more wall time on 100 one-hour cases). Single-threaded BLAS as dask's default.
WORKER_ENV: dict[str, Any] = {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1,
                              "OPENBLAS_NUM_THREADS": 1}

#: file of the finished cases, one JSON object per line, appended as they finish
RECORDS = "cases.jsonl"


def _components(site, kinds: Iterable[str]) -> list[tuple[str, str]]:
    """(action, component id) of every contingency of the given N-1 kinds, in site order (a kind named twice
    counts once)."""
    out = []
    for kind in dict.fromkeys(kinds):
        if kind not in N1_KINDS:
            raise ScenarioError("sweep", [("n-1", f"unknown kind {kind!r}; expected one of {', '.join(N1_KINDS)}")])
        lists, action = N1_KINDS[kind]
        for lst in lists:
            for comp in getattr(site, lst):
                if lst == "turbines" and comp.state == "out":
                    continue
                out.append((action, comp.id))
    return out


def _default_at(base_doc: dict, at):
    horizon = parse_time_s(base_doc["scenario"].get("horizon", "24:00:00"))
    if at is None:
        at = "15:00:00" if horizon > 15 * 3600 else horizon / 10.0
    if isinstance(at, str) and at.strip().replace(".", "", 1).isdigit():  # seconds, as from the command line
        at = float(at) if "." in at else int(at)
    try:
        t_s = parse_time_s(at)
    except ValueError as exc:
        raise ScenarioError("sweep", [("at", str(exc))]) from None
    if t_s >= horizon:
        raise ScenarioError("sweep", [("at", f"contingency time {at!r} is not before the horizon")])
    return at


def contingency_time(base_doc: dict, at: str | float | None = None) -> str:
    """The contingency time of a sweep as ``HH:MM:SS`` (``at``, or its default for the base scenario)."""
    t_s = parse_time_s(_default_at(base_doc, at))
    h, rem = divmod(t_s, 3600.0)
    m, sec = divmod(rem, 60.0)
    return f"{int(h):02d}:{int(m):02d}:{sec:02.0f}" if sec == int(sec) else f"{int(h):02d}:{int(m):02d}:{sec:06.3f}"


def read_cases(path: str | Path) -> list[dict]:
    """The listed cases of a ``--cases`` TOML file (``[[cases]]`` tables, :class:`twin.scenario.SweepCase`), as
    documents for :func:`expand_cases`.

    Raises
    ------
    ScenarioError
        Naming the file and the field (``cases[1].events[0].do``), as for a scenario file.
    """
    from sites.inputs import read_toml, validate

    doc = read_toml(Path(path), ScenarioError)
    spec = validate(SweepCases, doc, path, ScenarioError)
    return [c.model_dump(exclude_none=True, mode="json") for c in spec.cases]


def _case_field(j: int, n_base_events: int, path: str) -> str:
    """Field path of a problem of listed case ``j`` (found in its document merged with the base scenario)
    as a path of the cases file: ``events[5].target`` → ``cases[j].events[3].target``."""
    m = re.fullmatch(r"events\[(\d+)\](.*)", path)
    if m and int(m.group(1)) >= n_base_events:
        return f"cases[{j}].events[{int(m.group(1)) - n_base_events}]{m.group(2)}"
    return f"cases[{j}].{path}" if path else f"cases[{j}]"


def expand_cases(site, base_doc: dict, n1: list[str] | None = None, at: str | float | None = None,
                 case_docs: list[dict] | None = None) -> list[tuple[str, dict]]:
    """(case name, scenario document) for the base case plus every N-1 contingency and listed case.

    ``at`` is the contingency time (default: 15:00 if within the horizon, else a tenth of it).
    """
    at = _default_at(base_doc, at)
    cases = [("base", base_doc)]
    for action, target in _components(site, n1 or []):
        doc = copy.deepcopy(base_doc)
        doc.setdefault("events", []).append({"at": at, "do": action, "target": target})
        cases.append((f"{action} {target}", doc))
    for i, extra in enumerate(case_docs or []):
        doc = copy.deepcopy(base_doc)
        doc.setdefault("events", []).extend(extra.get("events", []))
        for key in ("weather", "workload"):
            if key in extra:
                doc[key] = {**doc.get(key, {}), **extra[key]}
        cases.append((extra.get("name", f"case-{i + 1}"), doc))
    return cases


def sample_cases(site, base_doc: dict, kinds: list[str], k: int, n: int, seed: int = 0,
                 at: str | float | None = None) -> list[tuple[str, dict]]:
    """``n`` distinct random N-``k`` contingencies (all of them if there are fewer), seeded.

    Each case takes ``k`` different components of the given N-1 kinds out at ``at``; combinations are
    drawn with ``numpy.random.default_rng(seed)``, so the same arguments give the same cases. Case
    names join the events (``"trip a + trip b"``, in site order).
    """
    if k < 1:
        raise ScenarioError("sweep", [("k", f"expected at least 1 component per case, got {k}")])
    if n < 1:
        raise ScenarioError("sweep", [("sample", f"expected at least 1 case, got {n}")])
    at = _default_at(base_doc, at)
    pool = _components(site, kinds)
    if len(pool) < k:
        raise ScenarioError("sweep", [("k", f"{k} components per case, but the kinds give only {len(pool)}")])
    total = math.comb(len(pool), k)
    if n >= total:
        combos = list(itertools.combinations(range(len(pool)), k))
    else:
        rng = np.random.default_rng(seed)
        seen: set[tuple[int, ...]] = set()
        combos = []
        while len(combos) < n:
            c = tuple(sorted(int(x) for x in rng.choice(len(pool), size=k, replace=False)))
            if c not in seen:
                seen.add(c)
                combos.append(c)
    cases = []
    for c in combos:
        doc = copy.deepcopy(base_doc)
        doc.setdefault("events", []).extend({"at": at, "do": pool[i][0], "target": pool[i][1]} for i in c)
        cases.append((" + ".join(f"{pool[i][0]} {pool[i][1]}" for i in c), doc))
    return cases


class TooManyCases(ScenarioError):
    """A sweep would have more cases than the caller's limit (:func:`generate_cases` ``max_cases``).

    Attributes: ``n_cases`` (what the sweep would have), ``max_cases``, ``breakdown`` (e.g. ``"base + 39 N-1 + 1 listed"``)
    and ``field`` (``sample``, ``n-1`` or ``cases``: what made it large).
    """

    def __init__(self, origin, field: str, n_cases: int, max_cases: int, breakdown: str):
        self.field, self.n_cases, self.max_cases, self.breakdown = field, n_cases, max_cases, breakdown
        super().__init__(origin, [(field, f"the sweep expands to {n_cases} cases ({breakdown}); expected at most {max_cases}")])


def generate_cases(site, base_doc: dict, n1: list[str] | None = None, at: str | float | None = None,
                   case_docs: list[dict] | None = None, sample: int | None = None, k: int = 2, seed: int = 0, *,
                   max_cases: int | None = None, cases_origin: str | Path = "sweep") -> tuple[list[tuple[str, dict]], str]:
    """The cases of a sweep, as ``twin sweep`` (:func:`sweep`) and the API's ``POST /sweeps`` make them.

    ``base`` (the base scenario as is), then one case per N-1 contingency of the ``n1`` kinds
    (:func:`expand_cases`) or, with ``sample``, that many random N-``k`` cases drawn with ``seed`` from
    those kinds, all kinds if none (:func:`sample_cases`), then the listed cases ``case_docs``; the
    contingencies come at ``at`` (default: :func:`contingency_time`).

    Returns
    -------
    (cases, sample_text)
        ``[(case name, scenario document)]`` and how the N-k cases were drawn: ``""`` without ``sample``,
        ``"20 random N-2 cases, seed 0"``, or ``"all 6 N-2 combinations (20 asked)"`` when the kinds give fewer.

    Raises
    ------
    TooManyCases
        More than ``max_cases`` cases, counted before any case is built.
    ScenarioError
        A bad ``at``, ``k`` or ``sample``, an unknown kind (field ``n-1``), or repeated case names (field
        ``cases``, naming ``cases_origin``: the cases file).
    """
    listed = case_docs or []
    kinds = list(n1 or []) if sample is None else list(n1 or N1_KINDS)
    if max_cases is not None:
        pool = len(_components(site, kinds))
        n_made = pool if sample is None else min(sample, math.comb(pool, k) if k >= 0 else 0)
        n_cases = 1 + n_made + len(listed)
        if n_cases > max_cases:
            made = f"{n_made} N-1" if sample is None else f"{n_made} random N-{k}"
            field = "sample" if sample is not None else ("n-1" if n_made >= len(listed) else "cases")
            raise TooManyCases("sweep", field, n_cases, max_cases, f"base + {made} + {len(listed)} listed")
    sample_text = ""
    if sample is not None:
        drawn = sample_cases(site, base_doc, kinds, k, sample, seed, at)
        sample_text = (f"{len(drawn)} random N-{k} cases, seed {seed}" if len(drawn) >= sample
                       else f"all {len(drawn)} N-{k} combinations ({sample} asked)")
        cases = [("base", base_doc)] + drawn + expand_cases(site, base_doc, None, at, listed)[1:]
    else:
        cases = expand_cases(site, base_doc, kinds, at, listed)
    names = [n for n, _ in cases]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ScenarioError(cases_origin, [("cases", f"case names must be unique; repeated: {', '.join(dupes)}")])
    return cases, sample_text


@functools.lru_cache(maxsize=8)
def _site(site_name: str):
    """Sites loaded in this (worker) process, kept from case to case."""
    return load_site(site_name)


@functools.lru_cache(maxsize=1)
def _worker_setup() -> None:
    """Once per worker process: share built networks and compilations between cases."""
    from grid_models.cache import share_in_process

    share_in_process(True)


_THREAD = threading.local()


def _buffers():
    """The engine's output arrays, reused from case to case by this worker thread (each case reduces a
    segment before the next, as ``Engine(reuse_outputs=True)`` requires): no fresh memory per case,
    ≈ 8 % of a one-hour case's CPU time."""
    buf = getattr(_THREAD, "buffers", None)
    if buf is None:
        from .engine import output_buffer_pair

        buf = _THREAD.buffers = output_buffer_pair(True)
    return buf


def _doc_hash(doc: dict) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


class CaseCancelled(Exception):
    """The dask task running a case was cancelled (a cancelled sweep): the case stops between segments."""


def _task_cancelled() -> bool:
    """Whether the dask task this thread executes has been cancelled (False outside a dask worker).

    Reads the worker's own task state (no message to the scheduler): a running task that its client
    cancels goes from ``executing`` to ``cancelled``.
    """
    try:
        from distributed import get_worker
        from distributed.worker import thread_state

        ts = get_worker().state.tasks.get(thread_state.key)
    except (ImportError, ValueError, AttributeError):  # not in a worker's task thread
        return False
    return ts is None or ts.state != "executing"


class _NoCatalog:
    """The run catalog of a case recorded by :func:`run_case`: nothing, the sweep's driver records each
    case's end (the workers of an external cluster need not reach the service's catalog)."""

    def get(self, run_id):
        return run_id  # known: the runner does not create it

    def create(self, **fields) -> None:
        pass

    def update(self, run_id, **fields) -> None:
        pass


class _TaskCancel:
    """The runner's cancel flag of a case: its dask task was cancelled."""

    def is_set(self) -> bool:
        return _task_cancelled()


def run_case(site_name: str, name: str, doc: dict, store: str | None = None) -> dict[str, Any]:
    """Run one case and return its KPIs (what a dask worker executes); never raises.

    In memory (only the KPIs), or with ``store`` a run directory that gets what a run writes
    (:func:`twin.runner.run`: ``results.zarr``, ``events.csv``, ``kpis.json``, ``status.json``): the
    API's sweeps keep each case's time series. The KPIs are the same either way.

    Returns the KPIs plus ``case``, ``status`` (``"done"`` or ``"failed"``), ``error`` (the reason
    of a failure: exception type and message, e.g. a workload trace that does not exist), ``doc_hash``
    (identifies the scenario document), ``wall_s`` and ``cpu_s`` (the worker process's CPU time: what a
    case costs on a loaded machine). On a dask worker, a case whose task is cancelled stops at its next
    segment (at most 3,600 steps: an hour at 1 s) instead of running to its end unread.
    """
    from .engine import Engine
    from .kpi import KpiAccumulator
    from .scenario import resolve_events

    t0, c0 = time.perf_counter(), time.process_time()
    try:
        _worker_setup()
        site = _site(site_name)
        sc = load_scenario(doc, origin=f"case {name!r}")
        if store is not None:
            from .runner import run

            out = dict(run(site, sc, run_id=Path(store).name, run_dir=store, catalog=_NoCatalog(), cancel=_TaskCancel()).kpis)
        else:
            events = resolve_events(sc, site, origin=f"case {name!r}")
            eng = Engine(site, sc, events, reuse_outputs=True, output_buffers=_buffers())  # each segment is reduced before the next
            kpi = KpiAccumulator(eng.plant, sc.scenario.step_s, t_ref_s=events[0].t_s if events else 0.0, site=site)
            for seg in eng.segments(overlap=False):  # the workers already keep the cores busy
                if _task_cancelled():  # nobody waits for this case any more: free the worker
                    raise CaseCancelled(f"case {name!r} stopped at {eng.k * eng.step_s:g} s: its sweep was cancelled")
                kpi.update(seg)
            out = kpi.result(eng.event_log)
        out.update(status="done", error=None)
    except Exception as exc:  # recorded, not raised: one case never stops a sweep
        out = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    out["case"] = name
    out["doc_hash"] = _doc_hash(doc)
    out["wall_s"] = time.perf_counter() - t0
    out["cpu_s"] = time.process_time() - c0
    return out


#: How long :func:`dask_client` tries to reach an external scheduler [s].
CONNECT_TIMEOUT_S = 10.0


class SchedulerError(InputError):
    """The dask scheduler given (``--scheduler``, ``TWIN_DASK_SCHEDULER``) cannot be reached."""

    def __init__(self, scheduler: str, reason: str):
        super().__init__("--scheduler / TWIN_DASK_SCHEDULER", [("", f"cannot reach a dask scheduler at {scheduler!r}: {reason}; "
                                                                 "expected the address of a running scheduler, e.g. tcp://127.0.0.1:8786 "
                                                                 "(start one with `dask scheduler`)")])


def _probe_scheduler(scheduler: str, timeout_s: float) -> None:
    """Open (and close) one connection to ``scheduler``, as a client would; :class:`SchedulerError` if that fails.

    Done before the :class:`~dask.distributed.Client` is made: a client that fails to connect still
    tries to close its connection when it is collected, and prints a traceback after a second timeout.
    """
    import asyncio

    from distributed.comm import connect
    from distributed.security import Security

    async def probe():
        comm = await connect(scheduler, timeout=timeout_s, **Security().get_connection_args("client"))
        await comm.close()

    try:
        asyncio.run(probe())
    except (OSError, ValueError, TypeError) as exc:
        raise SchedulerError(scheduler, str(exc) or type(exc).__name__) from None


@contextmanager
def _sigint_ignored():
    """SIGINT ignored in this process meanwhile (in the main thread; elsewhere nothing changes).

    Worker processes spawned meanwhile inherit it: a Ctrl-C at the terminal, which reaches every
    process of the foreground group, then interrupts the sweep's driver only, and the workers, closed
    by it, do not each print a KeyboardInterrupt traceback.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, saved)


@contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None) -> Iterator[Any]:
    """A dask client: of the cluster at ``scheduler``, or of a LocalCluster started (and stopped) here.

    The LocalCluster has ``n_workers`` (default: one per core) single-threaded worker processes
    spawned with :data:`WORKER_ENV`, ignoring SIGINT (the driver stops them). An unreachable
    ``scheduler`` (within :data:`CONNECT_TIMEOUT_S`, or dask's ``distributed.comm.timeouts.connect`` if
    shorter) or a malformed address raises :class:`SchedulerError`.
    """
    import dask
    from dask.distributed import Client, LocalCluster

    if n_workers is not None and n_workers < 1:
        raise InputError("--workers", [("", f"expected at least 1 worker process, got {n_workers}")])
    if scheduler:
        from dask.utils import parse_timedelta

        timeout_s = min(CONNECT_TIMEOUT_S, parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s"))
        _probe_scheduler(scheduler, timeout_s)
        try:
            client = Client(scheduler, timeout=timeout_s)
        except (OSError, ValueError) as exc:  # gone since the probe
            raise SchedulerError(scheduler, str(exc)) from None
        try:
            yield client
        finally:
            client.close()
        return
    env = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_ENV.items()}
    with dask.config.set(env), _sigint_ignored():
        cluster = LocalCluster(n_workers=n_workers or max(os.cpu_count() or 1, 1), threads_per_worker=1,
                               processes=True, dashboard_address=":0")
    client = Client(cluster)
    log = logging.getLogger("distributed")
    level = log.level
    try:
        yield client
    except BaseException:  # an interrupted sweep: its running cases are cancelled, busy workers killed
        log.setLevel(logging.ERROR)  # no warning per cancelled case or killed worker
        try:
            client.run(_quiet_logs)
        except Exception:
            pass
        raise
    finally:
        client.close()
        cluster.close()
        log.setLevel(level)


def _quiet_logs() -> None:
    """In a worker: log only errors from now on."""
    logging.getLogger("distributed").setLevel(logging.ERROR)


#: fields of a case's record that are not KPIs
RECORD_FIELDS = ("case", "status", "error", "doc_hash", "wall_s", "cpu_s")


def submit_cases(client, site_name: str, cases: list[tuple[str, dict]], prefix: str = "case",
                 stores: list[str] | None = None) -> dict[Any, tuple[str, dict]]:
    """Submit every case to ``client`` (one task each, keys ``<prefix>-<doc hash>-<i>``; with ``stores``, each
    case's run directory, see :func:`run_case`); {future: (name, doc)}."""
    return {client.submit(run_case, site_name, name, doc, stores[i] if stores else None,
                          key=f"{prefix}-{_doc_hash(doc)}-{i}", pure=False): (name, doc)
            for i, (name, doc) in enumerate(cases)}


def collect_cases(futures: dict[Any, tuple[str, dict]], on_result: Callable[[dict[str, Any]], None]) -> None:
    """Call ``on_result`` with each case's record as its future finishes.

    A case whose task itself fails (a worker that died, a result that cannot be sent back) is a
    ``failed`` record with the reason; a cancelled future (``client.cancel``) a ``cancelled`` record.
    """
    from dask.distributed import as_completed

    for fut in as_completed(list(futures)):
        name, doc = futures[fut]
        if fut.cancelled():
            rec = {"case": name, "status": "cancelled", "error": "cancelled", "doc_hash": _doc_hash(doc), "wall_s": None}
        else:
            try:
                rec = fut.result()
            except Exception as exc:  # the task, not the case, failed (e.g. KilledWorker)
                rec = {"case": name, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                       "doc_hash": _doc_hash(doc), "wall_s": None}
        fut.release()
        on_result(rec)


def run_cases(client, site_name: str, cases: list[tuple[str, dict]],
              on_result: Callable[[dict[str, Any]], None]) -> None:
    """Submit every case to ``client`` and call ``on_result`` with each record as it finishes.

    The one executor of the project's sweeps (the CLI's :func:`sweep` and the API's ``POST /sweeps``,
    which uses :func:`submit_cases` and :func:`collect_cases` to be able to cancel).
    """
    collect_cases(submit_cases(client, site_name, cases), on_result)


def _executing_keys(dask_worker) -> list[str]:
    """Keys of the tasks a worker's threads still execute (cancelled ones included, until they return)."""
    return [str(ts.key) for ts in list(dask_worker.state.tasks.values()) if ts.state in ("executing", "cancelled", "long-running")]


def wait_stopped(client, prefix: str, timeout_s: float = 30.0) -> bool:
    """Wait until no worker executes a task whose key starts with ``prefix`` (cancelled cases stop at their
    next segment); False on timeout or when the workers cannot be asked."""
    t_end = time.monotonic() + timeout_s
    while True:
        try:
            busy = [k for keys in client.run(_executing_keys).values() for k in keys if k.startswith(prefix)]
        except Exception:  # a lost cluster runs nothing of ours any more
            return False
        if not busy:
            return True
        if time.monotonic() > t_end:
            return False
        time.sleep(0.1)


class RecordLog:
    """``cases.jsonl`` of a sweep directory, one record appended (and flushed) per finished case."""

    def __init__(self, out_dir: str | Path):
        self.path = Path(out_dir) / RECORDS
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn = self.path.exists() and self.path.stat().st_size and not self.path.read_bytes().endswith(b"\n")
        self._fh = open(self.path, "a")
        if torn:  # a line cut by an interruption: start the next record on a line of its own
            self._fh.write("\n")

    def append(self, rec: dict[str, Any]) -> None:
        self._fh.write(json.dumps(rec, default=_json_default) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "RecordLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _rewrite_records(out_dir: str | Path, records: list[dict[str, Any]]) -> None:
    """Replace ``out_dir/cases.jsonl`` by ``records`` (written aside, then renamed: an interruption keeps the old file)."""
    path = Path(out_dir) / RECORDS
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, default=_json_default) + "\n" for r in records))
    os.replace(tmp, path)


def read_records(out_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The cases recorded in ``out_dir/cases.jsonl`` by name (a torn last line is ignored)."""
    path = Path(out_dir) / RECORDS
    out: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut by an interruption
            continue
        out[rec["case"]] = rec
    return out


_SCALAR = {"unserved_energy_mwh": "MWh", "gpu_hours_lost": "h", "loading_max_pct": "percent", "vm_min_pu": "1",
           "vm_max_pu": "1", "t_gpu_max_c": "degC", "t_coolant_max_c": "degC", "time_to_gpu_limit_s": "s",
           "bess_soc_min": "1", "turbine_starts": "1", "fuel_mmbtu": "MMBtu", "turbine_energy_mwh": "MWh",
           "heat_rate_mmbtu_per_mwh": "MMBtu/MWh", "co2_t": "t", "nox_t": "t", "pue": "1", "relay_trips": "1",
           "cascade_depth": "1", "tie_limit_violation_mwh": "MWh"}
_PER_ISLAND = {"f_min_hz": "Hz", "f_max_hz": "Hz", "rocof_max_hz_s": "Hz/s", "rocof_500ms_max_hz_s": "Hz/s"}


def _num(x) -> float:
    return np.nan if x is None else float(x)


def sweep_islands(records: Iterable[dict[str, Any]], site_islands: Iterable[str] = ()) -> list[str]:
    """Islands of a sweep's KPIs: the site's (``site_islands``, in that order), then every other island the
    records' per-island KPIs name, sorted (the islands that a case's branch outage split off, e.g.
    ``southaven/gen-t1``)."""
    islands = list(dict.fromkeys(site_islands))
    seen = {i for r in records for k in _PER_ISLAND for i in (r.get(k) or {})}
    return islands + sorted(seen - set(islands))


def kpi_dataset(results: list[dict[str, Any]], islands: list[str] | None = None) -> xr.Dataset:
    """KPIs of many cases as a Dataset with a ``case`` dimension (per-island KPIs gain ``island``).

    ``islands`` default to those the records name (:func:`sweep_islands`). Failed cases
    (``status == "failed"``) have NaN KPIs; ``status`` and ``error`` say what happened.
    """
    if islands is None:
        islands = sweep_islands(results)
    cases = [r["case"] for r in results]
    ds = xr.Dataset(coords={"case": cases, "island": islands})
    for k, unit in _SCALAR.items():
        ds[k] = ("case", np.array([_num(r.get(k)) for r in results], dtype=float), {"units": unit})
    for k, unit in _PER_ISLAND.items():
        ds[k] = (("case", "island"), np.array([[_num((r.get(k) or {}).get(i)) for i in islands] for r in results],
                                              dtype=float).reshape(len(results), len(islands)), {"units": unit})
    ds["status"] = ("case", np.array([r.get("status", "done") for r in results], dtype=str))
    ds["error"] = ("case", np.array([r.get("error") or "" for r in results], dtype=str))
    return ds


def rank_cases(ds: xr.Dataset) -> list[str]:
    """Finished cases ordered worst first: unserved energy, then GPU-hours lost, then lowest frequency
    (failed cases have no KPIs to rank: see ``ds.status`` / ``failures.json``)."""
    done = ds.status.values == "done" if "status" in ds else np.ones(ds.sizes["case"], bool)
    key = list(zip(-ds.unserved_energy_mwh.fillna(0).values, -ds.gpu_hours_lost.fillna(0).values,
                   ds.f_min_hz.min("island").fillna(60).values))
    order = sorted(np.flatnonzero(done), key=lambda i: key[i])
    return [str(ds.case.values[i]) for i in order]


def sweep(site_name: str, base: str | Path | dict, *, n1: list[str] | None = None, cases_file: str | Path | None = None,
          at: str | float | None = None, out_dir: str | Path, scheduler: str | None = None, n_workers: int | None = None,
          progress: Callable[[int, int], None] | None = None, sample: int | None = None, k: int = 2,
          seed: int = 0, workload_seed: int | None = None, resume: bool = True,
          note: Callable[[str], None] | None = None) -> tuple[xr.Dataset, list[str]]:
    """Run every case on dask.distributed; write ``cases.jsonl`` as they finish, then ``kpis.nc``,
    ``kpis.csv``, ``ranking.json`` and ``failures.json`` into ``out_dir``.

    Parameters
    ----------
    n1 : list of str
        N-1 kinds (:data:`N1_KINDS`): one case per component; with ``sample`` the pool of the N-k draws.
    cases_file : path, optional
        Listed cases (:func:`read_cases`), after the N-1 or sampled ones.
    at : str or float, optional
        Contingency time of the N-1 and sampled cases (default: :func:`contingency_time`).
    sample, k, seed
        ``sample`` random N-``k`` cases drawn with ``seed`` (:func:`sample_cases`) instead of the N-1 cases
        (all the combinations when there are fewer: ``note`` says so).
    workload_seed : int, optional
        Overrides the base scenario's ``workload.seed`` (every case).
    resume : bool
        Skip the cases already recorded as done in ``out_dir`` (same name and scenario document); failed
        and cancelled cases run again, their new record replacing the old one.
    progress : callable (done, total), optional
        Called as cases finish (recorded ones count as done).
    note : callable (message), optional
        Told what the user may not expect (a sample larger than the population).

    Returns
    -------
    (Dataset, ranking)
        The KPI dataset (``case`` dimension, failures included) and the finished cases worst first.
    """
    base_sc = load_scenario(base)
    base_doc = base_sc.model_dump(mode="json")
    if workload_seed is not None:
        base_doc.setdefault("workload", {})["seed"] = int(workload_seed)
        base_sc = load_scenario(base_doc, origin="workload_seed")
    site = load_site(site_name)
    extra = read_cases(cases_file) if cases_file is not None else None
    at_text = contingency_time(base_doc, at)
    cases, sample_text = generate_cases(site, base_doc, n1, at, extra, sample, k, seed, cases_origin=cases_file or "sweep")
    n_drawn = len(cases) - 1 - len(extra or [])
    if sample is not None and n_drawn < sample and note:
        note(f"--sample {sample}: the kinds give only {n_drawn} distinct N-{k} combinations; running all of them")
    from .scenario import resolve_events

    first_listed = len(cases) - len(extra or [])
    n_base_events = len(base_doc.get("events") or [])
    for i, (name, doc) in enumerate(cases):  # validate every case before any work is sent
        try:
            resolve_events(load_scenario(doc, origin=f"case {name!r}"), site, origin=f"case {name!r}")
        except ScenarioError as exc:
            if i < first_listed:
                raise
            raise ScenarioError(cases_file, [(_case_field(i - first_listed, n_base_events, p), m) for p, m in exc.problems]) from None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = read_records(out_dir) if resume else {}
    if not resume and (out_dir / RECORDS).exists():
        (out_dir / RECORDS).unlink()
    docs = dict(cases)
    # a case is kept when it finished with the same document; failed and cancelled ones run again
    results = {n: r for n, r in records.items()
               if n in docs and r.get("doc_hash") == _doc_hash(docs[n]) and r.get("status") == "done"}
    todo = [(n, d) for n, d in cases if n not in results]
    if any(n in records for n, _ in todo):  # their old records give way to the new ones
        _rewrite_records(out_dir, [r for n, r in records.items() if n not in {t for t, _ in todo}])
    done = len(cases) - len(todo)
    if progress:
        progress(done, len(cases))
    if todo:
        with RecordLog(out_dir) as log, dask_client(scheduler, n_workers) as client:
            def record(rec):
                nonlocal done
                results[rec["case"]] = rec
                log.append(rec)
                done += 1
                if progress:
                    progress(done, len(cases))

            run_cases(client, site.label, todo, record)
    attrs = {"base_scenario": base_sc.scenario.name, "n-1": ",".join(n1 or []), "contingency_at": at_text,
             "sample": sample_text}
    return write_results(out_dir, site, [results[name] for name, _ in cases], attrs)


def write_results(out_dir: str | Path, site, records: list[dict[str, Any]], attrs: dict[str, Any]) -> tuple[xr.Dataset, list[str]]:
    """Write a sweep's ``kpis.nc``, ``kpis.csv``, ``ranking.json`` and ``failures.json`` (every case's record,
    in case order; cases without KPIs have ``status`` ``failed`` or ``cancelled``); (Dataset, ranking)."""
    out_dir = Path(out_dir)
    ds = kpi_dataset(records, sweep_islands(records, [isl.name for isl in site.islands()]))
    ds.attrs.update({"site": site.label, "cases": len(records), **attrs,
                     "failed": int((ds.status.values == "failed").sum())})
    ds.to_netcdf(out_dir / "kpis.nc", engine="h5netcdf")
    ds.to_dataframe().reset_index().to_csv(out_dir / "kpis.csv", index=False)
    ranking = rank_cases(ds)
    (out_dir / "ranking.json").write_text(json.dumps(ranking, indent=2))
    failures = {r["case"]: r["error"] for r in records if r.get("status") != "done"}
    (out_dir / "failures.json").write_text(json.dumps(failures, indent=2))
    return ds, ranking


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def write_sweep_report(ds: xr.Dataset, ranking: list[str], out_dir: str | Path, top: int = 20) -> Path:
    """``report.md`` with the worst cases first and two figures (worst cases, frequency nadirs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    worst = ranking[:top]
    sel = ds.sel(case=worst)
    fig, axes = plt.subplots(1, 3, figsize=(15, max(3.0, 0.32 * len(worst) + 1)), sharey=True)
    y = np.arange(len(worst))[::-1]
    axes[0].barh(y, sel.unserved_energy_mwh.values, color="#c44e52")
    axes[0].set_xlabel("unserved energy [MWh]")
    axes[1].barh(y, sel.gpu_hours_lost.values, color="#8172b3")
    axes[1].set_xlabel("GPU-hours lost")
    axes[2].barh(y, 60.0 - sel.f_min_hz.min("island").values, color="#dd8452")
    axes[2].set_xlabel("frequency dip below 60 Hz [Hz]")
    axes[0].set_yticks(y, worst, fontsize=7)
    for a in axes:
        a.grid(alpha=0.3, axis="x")
    fig.suptitle(f"Worst {len(worst)} of {ds.sizes['case']} cases — {ds.attrs.get('base_scenario', '')} on {ds.attrs.get('site', '')}")
    fig.tight_layout()
    fig.savefig(fig_dir / "worst_cases.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 4))
    fmin = ds.f_min_hz.min("island").values
    ax.hist(fmin[np.isfinite(fmin)], bins=30, color="#4c72b0")
    ax.set_xlabel("minimum frequency over the run [Hz]")
    ax.set_ylabel("cases")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(fig_dir / "frequency_nadir.png", dpi=110)
    plt.close(fig)
    lines = [f"# Sweep: {ds.attrs.get('base_scenario', '')} on {ds.attrs.get('site', '')}", "",
             f"{ds.sizes['case']} cases (N-1: {ds.attrs.get('n-1') or 'none'}; contingency at {ds.attrs.get('contingency_at')}), worst first.", "",
             "| rank | case | unserved MWh | GPU·h lost | f min Hz | RoCoF Hz/s | max loading % | t GPU max °C |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r, case in enumerate(worst, start=1):
        row = ds.sel(case=case)
        lines.append(f"| {r} | {case} | {float(row.unserved_energy_mwh):.3f} | {float(row.gpu_hours_lost):,.0f} | "
                     f"{float(row.f_min_hz.min()):.3f} | {float(row.rocof_max_hz_s.max()):.3f} | "
                     f"{float(row.loading_max_pct):.1f} | {float(row.t_gpu_max_c):.1f} |")
    failed = [(str(c), str(e)) for c, st, e in zip(ds.case.values, ds.status.values, ds.error.values)
              if st == "failed"] if "status" in ds else []
    if failed:
        lines += ["", f"## Failed cases ({len(failed)})", "", "These cases have no KPIs; the reason each one stopped:", "",
                  "| case | reason |", "|---|---|"]
        lines += [f"| {c} | {e.replace('|', '/')} |" for c, e in failed]
    lines += ["", "![worst cases](figures/worst_cases.png)", "", "![frequency nadirs](figures/frequency_nadir.png)", "",
              "All KPIs: `kpis.nc` (xarray, `case` dimension) and `kpis.csv`; failures with reasons: `failures.json`.", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
