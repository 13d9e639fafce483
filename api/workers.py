"""The bounded worker pool: every run executes in its own process, never in a request; sweeps run on
dask (:class:`SweepExecutor`, the executor of ``twin sweep``).

Submitting a run records it as ``queued`` in the catalog and puts it on a queue; a dispatcher thread
starts at most ``workers`` processes at once (``multiprocessing`` *forkserver* context, with the engine
modules preloaded so a start costs milliseconds). Each process calls :func:`twin.runner.run`, which keeps
the catalog and the run directory consistent for every way a run ends that Python sees: done, failed,
cancelled (a flag file, checked between segments), or stopped by SIGTERM: sent by the server on a
graceful shutdown, and by the run process to itself when a watchdog thread sees the server process gone
(the server was killed). The run then records itself ``failed`` ("the server stopped during the run").

What Python cannot see (SIGKILL, a segfault, the machine going down) leaves ``running`` behind; the
reaper turns those into ``failed`` with a reason: at start for every run no live process holds, then
every ``reap_interval_s`` for runs whose process is gone. A process is the one that ran the run only
if its kernel start time is the one recorded with its pid (:func:`twin.catalog.process_alive`), so a
pid reused by an unrelated process after a crash does not keep a run ``running``. Partial results
are kept, marked in ``status.json`` and in the store's attributes; deleting a run removes them.
"""

from __future__ import annotations

import ctypes
import json
import logging
import multiprocessing as mp
import os
import queue
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from twin.catalog import Catalog, CatalogUnavailable, RunRecord, new_run_id, process_alive, process_start

__all__ = ["RunPool", "SweepExecutor", "ServerStopped", "reap_interrupted", "pid_alive", "safe_run_dir"]

log = logging.getLogger("twin.api.workers")

_PRELOAD = ["numpy", "xarray", "zarr", "sites", "twin.scenario", "twin.runner", "twin.recorder", "twin.kpi",
            "twin.engine", "grid_models"]
_PR_SET_PDEATHSIG = 1
ACTIVE = ("queued", "running")


class ServerStopped(Exception):
    """Raised inside a run process when the server stops (SIGTERM)."""


class _FlagFile:
    """A cancel flag visible across processes: set when the file exists (duck-types threading.Event)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def is_set(self) -> bool:
        return self.path.exists()

    def set(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()


def _on_sigterm(signum, frame):  # pragma: no cover - runs in the child
    raise ServerStopped("the server stopped during the run")


def _watch_server(server_pid: int, started: str | None, period_s: float = 0.5) -> None:  # pragma: no cover - child
    """Stop this run (SIGTERM to ourselves) when the server process is gone."""
    while True:
        time.sleep(period_s)
        if not process_alive(server_pid, started):
            os.kill(os.getpid(), signal.SIGTERM)
            return


def _child_main(run_id: str, site: str, doc: dict, run_dir: str, catalog_path: str, cancel_path: str,
                server_pid: int, server_started: str | None) -> None:  # pragma: no cover - child process
    """Entry point of a run process."""
    try:  # die with the forkserver (which holds on while we run, so also watch the server itself)
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (OSError, AttributeError):
        pass
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops us with SIGTERM
    threading.Thread(target=_watch_server, args=(server_pid, server_started), daemon=True).start()
    from twin.runner import run

    try:
        run(site, doc, run_id=run_id, run_dir=run_dir, catalog=Catalog(catalog_path), cancel=_FlagFile(Path(cancel_path)))
    except BaseException:  # the runner has recorded the failure
        os._exit(3)
    os._exit(0)


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this id exists and is not a zombie (whichever process it is)."""
    return process_alive(pid)


def safe_run_dir(store: str | None, home: Path) -> Path | None:
    """The run directory if it lies inside ``home`` (the only files the service deletes), else None."""
    if not store:
        return None
    path = Path(store).resolve()
    return path if path != home and path.is_relative_to(home) else None


def mark_store_interrupted(store: str | None, status: str, reason: str) -> None:
    """Record in a run directory that the run ended without its process recording it."""
    if not store or not Path(store).is_dir():
        return
    run_dir = Path(store)
    tmp = run_dir / "status.json.tmp"
    try:
        tmp.write_text(json.dumps({"status": status, "time": time.time(), "error": reason}, indent=2))
        tmp.replace(run_dir / "status.json")
        zpath = run_dir / "results.zarr"
        if (zpath / "zarr.json").exists() or (zpath / ".zgroup").exists():
            import zarr

            zarr.open_group(str(zpath), mode="a").attrs.update({"status": f"incomplete ({status})", "error": reason})
    except Exception as exc:  # a damaged directory must not stop the server
        log.warning("could not mark %s as %s: %s", run_dir, status, exc)


def store_status(store: str | None) -> str | None:
    """The status a run directory records (``status.json``), None when it has none (the run never started)."""
    try:
        return json.loads((Path(store) / "status.json").read_text()).get("status")
    except (OSError, TypeError, ValueError, AttributeError):
        return None


def finished_kpis(store: str | None) -> dict | None:
    """The KPIs of a run that finished (its directory says ``done`` and holds ``kpis.json``), else None.

    ``status.json`` is written ``done`` last (:func:`twin.runner.run`), so a directory that says so holds
    every result; this is what a sweep's case finished when nobody was left to read its result.
    """
    if store_status(store) != "done":
        return None
    try:
        kpis = json.loads((Path(store) / "kpis.json").read_text())
    except (OSError, ValueError):
        return None
    return kpis if isinstance(kpis, dict) else None


def settle_store(store: str | None, status: str, reason: str | None) -> None:
    """Make a run directory say what the catalog records of a run that did not finish (``status``, ``reason``),
    unless it already does: e.g. a case stopped by its cancel flag says ``cancelled`` while the server,
    shutting down, records it ``failed`` (interrupted)."""
    have = store_status(store)
    if have is not None and have != status:
        mark_store_interrupted(store, status, reason or status)


def reap_interrupted(catalog: Catalog, *, at_start: bool, owned: set[str] = frozenset()) -> list[str]:
    """Mark runs that no process will finish as ``failed``, with the reason; return their ids.

    At start every ``queued`` run and every ``running`` run whose process is gone is interrupted;
    later only ``running`` runs (not ``owned`` by this server) whose process is gone. A run whose
    directory says it finished (a sweep's case whose worker wrote its results after the server that
    records it was killed) is recorded ``done`` with its KPIs instead, and not returned. Sweeps follow
    their cases; one that has ended gets the files its server would have written (:func:`write_sweep_files`).
    """
    now = time.time()
    reaped, ended = [], set()
    records = [r for r in catalog.list(limit=1_000_000) if r.status in ACTIVE and r.id not in owned]
    for r in records:
        if r.kind == "sweep":
            continue
        if r.status == "queued" and at_start and not r.process_alive():
            reason = "interrupted: the server stopped before the run started"
        elif r.status == "running" and not r.process_alive():
            reused = " (its pid now belongs to another process)" if pid_alive(r.pid) else ""
            reason = f"interrupted: the process running it (pid {r.pid}) stopped before the run finished{reused}"
        else:
            continue
        kpis = finished_kpis(r.store)
        if kpis is not None:
            catalog.update(r.id, status="done", error=None, progress=1.0, eta_s=0.0, finished=now, kpis=kpis)
            if r.parent:
                _append_case_record(catalog.get(r.id))
        else:
            catalog.update(r.id, status="failed", error=reason, finished=now)
            mark_store_interrupted(r.store, "failed", reason)
            reaped.append(r.id)
        ended.add(r.id)
    for r in records:
        if r.kind == "sweep":
            if at_start or any(c.parent == r.id for c in records if c.id in ended):
                update_sweep(catalog, r.id, interrupted=at_start)
                write_sweep_files(catalog, r.id)
    return reaped


def _case_record(case: RunRecord) -> dict[str, Any]:
    """A sweep case's record (as :func:`twin.sweep.run_case` returns it) from its catalog row."""
    from twin.sweep import _doc_hash

    return {"case": case.scenario, "status": case.status, "error": case.error, "doc_hash": _doc_hash(case.scenario_doc),
            "wall_s": None, **(case.kpis or {})}


def _append_case_record(case: RunRecord | None) -> None:
    """Add a case recorded from its directory to its sweep's ``cases.jsonl`` (the cases that ran)."""
    from twin.sweep import RecordLog

    if case is None or not case.store or not Path(case.store).parent.is_dir():
        return
    try:
        with RecordLog(Path(case.store).parent) as log_:
            log_.append(_case_record(case))
    except OSError as exc:
        log.warning("could not add case %s to its sweep's cases.jsonl: %s", case.id, exc)


def write_sweep_files(catalog: Catalog, sweep_id: str) -> None:
    """Write an ended sweep's ``kpis.nc``, ``kpis.csv``, ``ranking.json`` and ``failures.json``
    (:func:`twin.sweep.write_results`) from its cases' rows: what its server writes when every case has
    ended, for a sweep whose server was killed first. Nothing when the sweep has not ended or has no directory."""
    from twin.sweep import write_results

    from .services import get_site

    rec = catalog.get(sweep_id)
    if rec is None or rec.status in ACTIVE or not rec.store or not Path(rec.store).is_dir():
        return
    body = rec.scenario_doc or {}
    attrs = {"base_scenario": rec.scenario, "n-1": ",".join(body.get("n1") or []), "contingency_at": str(body.get("at"))}
    cases = sorted(catalog.list(parent=sweep_id, limit=1_000_000), key=lambda c: c.created)
    try:
        write_results(rec.store, get_site(rec.site), [_case_record(c) for c in cases], attrs)
    except Exception as exc:  # a damaged directory or an unknown site must not stop the server
        log.warning("could not write the results of sweep %s: %s", sweep_id, exc)


def sweep_summary(children: list[RunRecord]) -> tuple[str, float, str | None, dict[str, int]]:
    """(status, progress, error, counts) of a sweep from its cases."""
    counts: dict[str, int] = {}
    for c in children:
        counts[c.status] = counts.get(c.status, 0) + 1
    n = len(children)
    progress = sum(1.0 if c.status in ("done",) else c.progress for c in children) / n if n else 1.0
    if counts.get("running") or (counts.get("queued") and len(counts) > 1):
        return "running", progress, None, counts
    if counts.get("queued"):
        return "queued", progress, None, counts
    bad = counts.get("failed", 0) + counts.get("cancelled", 0)
    if not bad:
        return "done", 1.0, None, counts
    status = "cancelled" if counts.get("cancelled") and not counts.get("failed") else "failed"
    return status, progress, f"{bad} of {n} cases did not finish ({', '.join(f'{v} {k}' for k, v in counts.items())})", counts


def update_sweep(catalog: Catalog, sweep_id: str, interrupted: bool = False, final: bool = True) -> None:
    """Recompute a sweep's row from its cases (``final=False``: progress only, the sweep stays ``running``)."""
    rec = catalog.get(sweep_id)
    if rec is None:
        return
    children = catalog.list(parent=sweep_id, limit=1_000_000)
    status, progress, error, _ = sweep_summary(children)
    if interrupted and status in ACTIVE:
        status, error = "failed", "interrupted: the server stopped before the sweep finished"
    if not final:
        status, error = "running", None
    fields: dict[str, Any] = {"status": status, "progress": progress, "error": error}
    if status not in ACTIVE and rec.finished is None:
        fields["finished"] = time.time()
    if status == "running" and rec.started is None:
        fields["started"] = time.time()
    catalog.update(sweep_id, **fields)


@dataclass
class _Job:
    run_id: str
    site: str
    doc: dict
    run_dir: Path
    process: Any = None
    cancel: _FlagFile | None = None
    delete: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class RunPool:
    """Queue and execute runs in at most ``workers`` processes.

    Parameters
    ----------
    catalog : Catalog
    home : Path
        Where run directories are created.
    workers : int
        Processes at once.
    max_queued : int
        Runs waiting before :meth:`submit` refuses (:class:`QueueFull`).
    on_finish : callable(run_id, status), optional
        Called after every run process ends (metrics).
    """

    class QueueFull(Exception):
        pass

    def __init__(self, catalog: Catalog, home: Path, workers: int = 1, max_queued: int = 200,
                 reap_interval_s: float = 30.0, on_finish: Callable[[str, str], None] | None = None):
        self.catalog = catalog
        self.home = Path(home).resolve()
        self.workers = workers
        self.max_queued = max_queued
        self.reap_interval_s = reap_interval_s
        self.on_finish = on_finish
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(_PRELOAD)
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(workers)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> list[str]:
        """Reap what a previous server left behind, then start the dispatcher and the reaper."""
        reaped = reap_interrupted(self.catalog, at_start=True)
        if reaped:
            log.warning("marked %d interrupted run(s) failed: %s", len(reaped), ", ".join(reaped))
        for target in (self._dispatch, self._reap_loop):
            t = threading.Thread(target=target, name=f"twin-{target.__name__.strip('_')}", daemon=True)
            t.start()
            self._threads.append(t)
        return reaped

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop: queued runs fail ('server shut down'), running ones are stopped and record themselves."""
        self._stop.set()
        self._queue.put(None)
        with self._lock:
            jobs = list(self._jobs.values())
        reason = "interrupted: the server shut down before the run started"
        for job in jobs:
            if job.process is None:
                try:
                    self.catalog.update(job.run_id, status="failed", error=reason, finished=time.time())
                except CatalogUnavailable as exc:  # the next start reaps it
                    log.error("could not record that run %s was interrupted: %s", job.run_id, exc)
                job.done.set()
            elif job.process.is_alive():
                job.process.terminate()
        deadline = time.monotonic() + timeout_s
        for job in jobs:
            if job.process is not None:
                job.process.join(max(deadline - time.monotonic(), 0.1))
                if job.process.is_alive():
                    job.process.kill()
                    job.process.join(2.0)
                self._finished(job)
        for t in self._threads:
            t.join(2.0)

    # ------------------------------------------------------------------ submit / cancel
    @property
    def n_active(self) -> int:
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.process is not None)

    @property
    def n_queued(self) -> int:
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.process is None)

    def threads_alive(self) -> bool:
        """Whether the dispatcher and the reaper are running (False before start and after shutdown)."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def owned(self) -> set[str]:
        with self._lock:
            return set(self._jobs)

    def submit(self, *, site: str, doc: dict, scenario_name: str) -> str:
        """Record a run as queued (directory ``<home>/<id>``) and put it on the queue; returns its id."""
        if self._stop.is_set():
            raise self.QueueFull("the server is shutting down")
        if self.n_queued >= self.max_queued:
            raise self.QueueFull(f"{self.n_queued} runs are already waiting (limit {self.max_queued})")
        run_id = new_run_id("run")
        run_dir = self.home / run_id
        self.catalog.create(run_id=run_id, site=site, scenario=scenario_name, scenario_doc=doc, store=str(run_dir))
        job = _Job(run_id, site, doc, run_dir)
        with self._lock:
            self._jobs[run_id] = job
        self._queue.put(job)
        return run_id

    def cancel(self, run_id: str, *, delete: bool = False, wait_s: float = 10.0) -> bool:
        """Stop a queued or running run (status ``cancelled``); with ``delete``, remove it once stopped.

        Returns False when this server does not own the run.
        """
        with self._lock:
            job = self._jobs.get(run_id)
        if job is None:
            return False
        job.delete = job.delete or delete
        if job.process is None:  # still queued: the dispatcher skips it
            with self._lock:
                if job.process is None:
                    self._jobs.pop(run_id, None)
                    self.catalog.update(run_id, status="cancelled", error="cancelled on request", finished=time.time())
                    queued_cancel = True
                else:
                    queued_cancel = False
            if queued_cancel:
                self._after(job, "cancelled")
                job.done.set()
                return True
        if job.process.is_alive():
            job.cancel.set()
        if not job.done.wait(wait_s):  # the run checks the flag between segments; do not wait forever
            job.process.terminate()
            if not job.done.wait(5.0):
                job.process.kill()
                job.done.wait(5.0)
        return True

    # ------------------------------------------------------------------ threads
    def _dispatch(self) -> None:
        while not self._stop.is_set():
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                if job.run_id not in self._jobs:  # cancelled while queued
                    continue
            self._slots.acquire()
            if self._stop.is_set():
                self._slots.release()
                return
            with self._lock:
                if job.run_id not in self._jobs:
                    self._slots.release()
                    continue
                job.cancel = _FlagFile(job.run_dir / "cancel.flag")
                proc = self._ctx.Process(
                    target=_child_main, name=f"twin-run-{job.run_id}", daemon=False,
                    args=(job.run_id, job.site, job.doc, str(job.run_dir), str(self.catalog.path), str(job.cancel.path),
                          os.getpid(), process_start(os.getpid())),
                )
                try:
                    proc.start()
                except Exception as exc:  # cannot start a process: record it, free the slot
                    try:
                        self.catalog.update(job.run_id, status="failed", error=f"could not start a worker: {exc}", finished=time.time())
                    except CatalogUnavailable as err:
                        log.error("could not record that run %s failed to start: %s", job.run_id, err)
                    self._jobs.pop(job.run_id, None)
                    self._slots.release()
                    job.done.set()
                    continue
                job.process = proc
            threading.Thread(target=self._watch, args=(job,), name=f"twin-watch-{job.run_id}", daemon=True).start()

    def _watch(self, job: _Job) -> None:
        job.process.join()
        self._finished(job)

    def _finished(self, job: _Job) -> None:
        with self._lock:
            if self._jobs.pop(job.run_id, None) is None:
                return
        self._slots.release()
        try:
            self._record_end(job)
        except CatalogUnavailable as exc:  # a read-only or full disk: the reaper records it once writable
            log.error("could not record the end of run %s: %s", job.run_id, exc)
        job.done.set()

    def _record_end(self, job: _Job) -> None:
        rec = self.catalog.get(job.run_id)
        code = job.process.exitcode
        if rec is not None and rec.status in ACTIVE:  # the process died without recording it
            how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
            reason = f"the worker process died ({how}) before the run finished"
            self.catalog.update(job.run_id, status="failed", error=reason, finished=time.time())
            mark_store_interrupted(rec.store, "failed", reason)
        rec = self.catalog.get(job.run_id)
        self._after(job, rec.status if rec else "deleted")  # job.done is set after: cancel(delete=True) returns once the files are gone

    def _after(self, job: _Job, status: str) -> None:
        if job.delete:
            self.catalog.delete(job.run_id)
            path = safe_run_dir(str(job.run_dir), self.home)
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
        elif job.cancel is not None:
            try:
                job.cancel.path.unlink(missing_ok=True)
            except OSError:
                pass
        if self.on_finish:
            try:
                self.on_finish(job.run_id, status)
            except Exception:  # metrics must not break the pool
                log.exception("on_finish hook failed")

    def _reap_loop(self) -> None:
        while not self._stop.wait(self.reap_interval_s):
            try:
                reap_interrupted(self.catalog, at_start=False, owned=self.owned())
            except CatalogUnavailable as exc:  # a read-only or full disk: try again next time
                log.warning("reaper could not write the catalog: %s", exc)
            except Exception:  # a locked or damaged catalog: try again next time
                log.exception("reaper failed")


@dataclass
class _Sweep:
    id: str
    site: str
    cases: list[tuple[str, dict]]
    dir: Path
    ids: dict[str, str]  # case name -> its run id
    attrs: dict[str, Any]
    futures: dict[Any, tuple[str, dict]] = field(default_factory=dict)
    records: dict[str, dict] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)  # cases cancelled one by one
    stop: tuple[str, str] | None = None  # (status, reason) of every unfinished case once the sweep is stopped
    settle_by: float | None = None  # monotonic time until which a stopped sweep waits for its running cases
    delete: bool = False
    thread: threading.Thread | None = None
    recorded: threading.Condition = field(default_factory=threading.Condition)
    done: threading.Event = field(default_factory=threading.Event)


class SweepExecutor:
    """The service's sweeps on dask.distributed, through :mod:`twin.sweep`'s executor (the CLI's).

    A sweep's cases are recorded ``queued`` in the catalog (runs whose ``parent`` is the sweep, each with
    its run directory ``<sweep dir>/<case id>``, which the case's worker fills as a run's: time series,
    events, KPIs; so the workers of an external cluster need the service's ``TWIN_HOME`` at the same path),
    then a driver thread submits them to the cluster (:func:`twin.sweep.submit_cases`) and records each one as it finishes
    (:func:`twin.sweep.collect_cases`): the case's row (``done`` with its KPIs, or ``failed`` with the
    reason), ``cases.jsonl`` in the sweep's directory, and the sweep's row (status and progress from its
    cases). When every case has ended the directory gets ``kpis.nc``, ``kpis.csv``, ``ranking.json`` and
    ``failures.json``, as from the CLI.

    The cluster is the dask scheduler at ``scheduler`` (``TWIN_DASK_SCHEDULER``), or a LocalCluster of
    ``n_workers`` processes started with the first sweep and closed by :meth:`shutdown`. Cancelling a
    sweep or a case cancels its futures (a case already running on a worker stops at its next segment, or
    finishes if it was past its last one); once its worker no longer runs it (a wait of at most
    ``stop_wait_s``; on a shutdown the LocalCluster is closed after that), a case is recorded from its
    directory: ``done`` with its KPIs if it finished, else ``cancelled``, or ``failed`` with the reason
    when the server shuts down, and the directory is marked so. A server killed outright leaves them
    ``queued``: the next start records them from their directories too (:func:`reap_interrupted`).
    """

    SHUTDOWN = ("failed", "interrupted: the server shut down before the case finished")
    CANCELLED = ("cancelled", "cancelled on request")

    def __init__(self, catalog: Catalog, home: Path, scheduler: str | None = None, n_workers: int = 1,
                 on_finish: Callable[[str, str], None] | None = None, stop_wait_s: float = 10.0):
        self.catalog = catalog
        self.home = Path(home).resolve()
        self.scheduler = scheduler or None
        self.n_workers = n_workers
        self.on_finish = on_finish
        self.stop_wait_s = stop_wait_s
        self._stopping = False  # shutdown has begun
        self._cluster_closed = threading.Event()  # set once shutdown has closed the cluster (no LocalCluster worker writes)
        self._lock = threading.Lock()
        self._client_lock = threading.Lock()
        self._cluster = None  # the dask_client context manager
        self._client = None
        self._sweeps: dict[str, _Sweep] = {}
        self._closed = False

    # ------------------------------------------------------------------ cluster
    def client(self):
        """The dask client (connected, or the LocalCluster started, on first use)."""
        from twin.sweep import dask_client

        with self._client_lock:
            if self._closed:
                raise ServerStopped("the server is shutting down")
            if self._client is None:
                cm = dask_client(self.scheduler, self.n_workers)
                self._client = cm.__enter__()
                self._cluster = cm
            return self._client

    @property
    def cluster(self) -> str:
        """What executes the cases: ``external`` (the scheduler's address is not shown), ``local`` or ``local (not started)``."""
        return "external" if self.scheduler else ("local" if self._client is not None else "local (not started)")

    # ------------------------------------------------------------------ submit / cancel
    @property
    def n_pending(self) -> int:
        """Cases submitted and not yet ended."""
        with self._lock:
            return sum(len(s.cases) - len(s.records) for s in self._sweeps.values())

    def submit(self, sweep_id: str, site: str, cases: list[tuple[str, dict]], sweep_dir: Path,
               attrs: dict[str, Any] | None = None) -> None:
        """Record every case of the (already recorded) sweep ``sweep_id`` as queued and start running them."""
        if self._closed:
            raise RunPool.QueueFull("the server is shutting down")
        ids = {}
        for name, doc in cases:
            ids[name] = new_run_id("run")
            self.catalog.create(run_id=ids[name], site=site, scenario=name, scenario_doc=doc, parent=sweep_id,
                                store=str(Path(sweep_dir) / ids[name]))
        sw = _Sweep(sweep_id, site, list(cases), Path(sweep_dir), ids, dict(attrs or {}))
        sw.thread = threading.Thread(target=self._drive, args=(sw,), name=f"twin-{sweep_id}", daemon=True)
        with self._lock:
            self._sweeps[sweep_id] = sw
        sw.thread.start()

    def cancel(self, run_id: str, *, delete: bool = False, wait_s: float = 30.0) -> bool:
        """Stop a sweep (every unfinished case) or one of its cases (``cancelled``); with ``delete``, remove
        it from the catalog once stopped (and the sweep's directory). False when no sweep of this server owns it."""
        with self._lock:
            sw = self._sweeps.get(run_id)
            case = None
            if sw is None:
                for s in self._sweeps.values():
                    case = next((n for n, i in s.ids.items() if i == run_id), None)
                    if case is not None:
                        sw = s
                        break
        if sw is None:
            return False
        if case is None:
            sw.delete = sw.delete or delete
            self._stop(sw, self.CANCELLED)
            sw.done.wait(wait_s)
            return True
        with self._lock:
            sw.cancelled.add(case)
            futs = [f for f, (n, _) in sw.futures.items() if n == case]
        for f in futs:
            f.cancel()
        with sw.recorded:
            sw.recorded.wait_for(lambda: case in sw.records or sw.done.is_set(), wait_s)
        if delete:
            self._wait_stopped([f.key for f in futs], wait_s)  # its worker writes no more into its directory
            self.catalog.delete(run_id)
            path = safe_run_dir(str(sw.dir / run_id), self.home)
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
        return True

    def _wait_stopped(self, prefixes: list[str], timeout_s: float) -> None:
        from twin.sweep import wait_stopped

        for prefix in prefixes:
            if self._client is not None and not wait_stopped(self._client, str(prefix), timeout_s):
                log.warning("a cancelled case (%s) still runs on a worker", prefix)

    def _stop(self, sw: _Sweep, how: tuple[str, str]) -> None:
        with self._lock:
            if sw.stop is None:
                sw.stop = how
                sw.settle_by = time.monotonic() + self.stop_wait_s
            futs = list(sw.futures)
        if futs:
            try:
                self._client.cancel(futs)
            except Exception as exc:  # a lost scheduler: the driver records what is left
                log.warning("could not cancel the cases of %s: %s", sw.id, exc)

    def shutdown(self, timeout_s: float | None = None) -> None:
        """Stop every sweep, wait (at most ``timeout_s``, default ``stop_wait_s`` plus 2 s) until each has
        recorded its cases (the finished ones ``done``, the others ``failed`` with the reason), then close
        the cluster (and let the sweeps still waiting for a case record it from what it left)."""
        self._stopping = True
        with self._lock:
            sweeps = list(self._sweeps.values())
        for sw in sweeps:
            self._stop(sw, self.SHUTDOWN)
        deadline = time.monotonic() + (self.stop_wait_s + 2.0 if timeout_s is None else timeout_s)
        for sw in sweeps:
            sw.thread.join(max(deadline - time.monotonic(), 0.1))
        with self._client_lock:
            self._closed = True
            if self._cluster is not None:
                try:
                    self._cluster.__exit__(None, None, None)
                except Exception as exc:  # closing must not stop the shutdown
                    log.warning("closing the dask cluster: %s", exc)
                self._cluster = self._client = None
        self._cluster_closed.set()
        deadline = time.monotonic() + 10.0
        for sw in sweeps:
            sw.thread.join(max(deadline - time.monotonic(), 0.1))

    # ------------------------------------------------------------------ the driver of one sweep
    def _drive(self, sw: _Sweep) -> None:
        try:
            self._run(sw)
        except Exception as exc:  # an unreachable scheduler, an unwritable directory…: the cases record why
            log.exception("sweep %s stopped", sw.id)
            self._end_unfinished(sw, ("failed", f"the sweep could not go on: {type(exc).__name__}: {exc}"))
        finally:
            try:
                update_sweep(self.catalog, sw.id)
            except CatalogUnavailable as exc:
                log.error("could not record the end of sweep %s: %s", sw.id, exc)
            with self._lock:
                self._sweeps.pop(sw.id, None)
            if sw.delete:
                self._wait_stopped([sw.id], 30.0)  # no worker writes into the directory any more
                self.catalog.delete(sw.id)
                path = safe_run_dir(str(sw.dir), self.home)
                if path is not None:
                    shutil.rmtree(path, ignore_errors=True)
            sw.done.set()
            with sw.recorded:
                sw.recorded.notify_all()

    def _run(self, sw: _Sweep) -> None:
        from twin.sweep import RecordLog, collect_cases, submit_cases, write_results

        from .services import get_site

        client = self.client() if sw.stop is None else None
        if client is not None:
            self.catalog.update(sw.id, status="running", started=time.time())
            with self._lock:
                if sw.stop is None:
                    sw.futures = submit_cases(client, sw.site, sw.cases, prefix=sw.id,
                                              stores=[str(sw.dir / sw.ids[n]) for n, _ in sw.cases])
                    for f, (n, _) in sw.futures.items():
                        if n in sw.cancelled:
                            f.cancel()
        if sw.futures:
            with RecordLog(sw.dir) as records:
                collect_cases(sw.futures, lambda rec: self._record(sw, rec, records))
        self._end_unfinished(sw, sw.stop or self.CANCELLED)
        if not sw.delete:
            write_results(sw.dir, get_site(sw.site), [sw.records[n] for n, _ in sw.cases], sw.attrs)

    def _record(self, sw: _Sweep, rec: dict, records=None) -> None:
        """Record one case's end: ``cases.jsonl`` (cases that ran), its catalog row and the sweep's."""
        from twin.sweep import RECORD_FIELDS

        name = rec["case"]
        ran = rec["status"] != "cancelled"
        if not ran:
            how = self.CANCELLED if name in sw.cancelled else (sw.stop or self.CANCELLED)
            rec = {**rec, "status": how[0], "error": how[1]}
        if rec["status"] != "done":
            rec = self._settle(sw, name, rec)
            ran = ran or rec["status"] == "done"
        if ran and records is not None:
            records.append(rec)
        elif ran:  # found finished after the sweep's log was closed
            from twin.sweep import RecordLog

            with RecordLog(sw.dir) as log_:
                log_.append(rec)
        now = time.time()
        fields: dict[str, Any] = {"status": rec["status"], "error": rec.get("error"), "finished": now, "eta_s": 0.0,
                                  "progress": 1.0 if rec["status"] == "done" else 0.0}
        if rec.get("wall_s") is not None:
            fields["started"] = now - rec["wall_s"]
        if rec["status"] == "done":
            fields["kpis"] = {k: v for k, v in rec.items() if k not in RECORD_FIELDS}
        try:
            self.catalog.update(sw.ids[name], **fields)
            update_sweep(self.catalog, sw.id, final=False)
        except CatalogUnavailable as exc:  # a read-only or full disk: the next start reaps what is left
            log.error("could not record case %r of sweep %s: %s", name, sw.id, exc)
        with sw.recorded:
            sw.records[name] = rec
            sw.recorded.notify_all()
        if self.on_finish:
            try:
                self.on_finish(sw.ids[name], rec["status"])
            except Exception:  # metrics must not break the executor
                log.exception("on_finish hook failed")

    def _settle(self, sw: _Sweep, name: str, rec: dict) -> dict:
        """What a case that did not report a result left: its record from its directory once its worker no longer
        runs it: ``done`` with its KPIs if it finished (a cancel that came after its last segment, or a result
        lost with its future), else ``rec``, which the directory is made to say (:func:`settle_store`)."""
        from twin.sweep import wait_stopped

        store = str(sw.dir / sw.ids[name])
        with self._lock:
            keys = [str(f.key) for f, (n, _) in sw.futures.items() if n == name]
        client = self._client
        if keys and client is not None:
            budget = max((sw.settle_by or time.monotonic() + self.stop_wait_s) - time.monotonic(), 0.0)
            if not wait_stopped(client, keys[0], budget):
                # still running (or the cluster is gone): on a shutdown the LocalCluster's workers are closed next
                if not (self._stopping and not self.scheduler and self._cluster_closed.wait(15.0)):
                    log.warning("case %r of sweep %s may still run on a worker; recorded from its directory now", name, sw.id)
        kpis = finished_kpis(store)
        if kpis is not None:
            return {**{k: v for k, v in rec.items() if k in ("case", "doc_hash", "wall_s", "cpu_s")}, **kpis,
                    "status": "done", "error": None}
        settle_store(store, rec["status"], rec.get("error"))
        return rec

    def _end_unfinished(self, sw: _Sweep, how: tuple[str, str]) -> None:
        """Record every case that has not ended as ``how`` (status, reason); cases cancelled one by one as cancelled."""
        from twin.sweep import _doc_hash

        for name, doc in sw.cases:
            if name not in sw.records:
                status, reason = self.CANCELLED if name in sw.cancelled else how
                self._record(sw, {"case": name, "status": status, "error": reason, "doc_hash": _doc_hash(doc), "wall_s": None})
