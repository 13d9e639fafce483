"""The run catalog: every run and sweep, its status, progress, KPIs and store, in SQLite.

The CLI and the API read and write the same catalog (``$TWIN_HOME/catalog.sqlite``; ``TWIN_HOME``
defaults to ``./runs``). Writes are short transactions, so a crash never leaves a half-written row;
:meth:`Catalog.fail_interrupted` marks runs that were ``running`` or ``queued`` when their process died
as ``failed`` with a reason (call it when a server starts).

A run's process is identified by its pid *and* the kernel's start time of that process (with the boot
id), recorded together when the pid is set: :meth:`RunRecord.process_alive` is therefore not fooled
by a later, unrelated process that was given the same pid after a crash.

A catalog on a read-only or full disk still answers reads (opened immutable when it cannot be opened
for writing); every write raises :class:`CatalogUnavailable`, naming the reason.
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.parse
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

__all__ = ["STATUSES", "RunRecord", "Catalog", "CatalogUnavailable", "twin_home", "new_run_id", "RUN_ID_PATTERN",
           "process_start", "process_alive"]

STATUSES = ("queued", "running", "done", "failed", "cancelled")
#: Run ids are generated here; anything else is refused before it reaches the file system.
RUN_ID_PATTERN = r"^[a-z]{1,8}-[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL DEFAULT 'run',
    parent TEXT,
    site TEXT NOT NULL,
    scenario TEXT NOT NULL,
    scenario_json TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    eta_s REAL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    error TEXT,
    store TEXT,
    kpis_json TEXT,
    pid INTEGER,
    pid_start TEXT
);
CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent);
"""
#: Columns added after the first schema: (name, SQL type), added to older catalogs when opened.
_ADDED_COLUMNS = (("pid_start", "TEXT"),)


class CatalogUnavailable(OSError):
    """The catalog cannot be written (read-only or full disk, permissions); ``str()`` says why."""


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


_BOOT_ID = _boot_id()


def process_start(pid: int | None) -> str | None:
    """The identity of the process now holding ``pid``: boot id and kernel start time (None if none).

    Two processes that were given the same pid one after the other have different start times.
    """
    if not pid or pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):  # a zombie or a dead process is not running anything
        return None
    return f"{_BOOT_ID}:{fields[19]}"


def process_alive(pid: int | None, start: str | None = None) -> bool:
    """Whether ``pid`` is a live process and, when ``start`` is given, the same one (:func:`process_start`)."""
    if not pid or pid <= 0:
        return False
    now = process_start(pid)
    if now is None:
        if os.path.isdir("/proc/self"):
            return False
        try:  # no /proc: existence only
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return start is None or now == start


def twin_home() -> Path:
    """Where runs and the catalog live: ``$TWIN_HOME`` or ``./runs``."""
    return Path(os.environ.get("TWIN_HOME", "runs")).resolve()


def new_run_id(kind: str = "run") -> str:
    """A sortable, unique id: ``run-20260715-140000-a1b2c3``."""
    return f"{kind}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"


@dataclass
class RunRecord:
    id: str
    kind: str
    parent: str | None
    site: str
    scenario: str
    scenario_doc: dict[str, Any]
    status: str
    progress: float
    eta_s: float | None
    created: float
    started: float | None
    finished: float | None
    error: str | None
    store: str | None
    kpis: dict[str, Any] | None = field(default=None)
    pid: int | None = None
    pid_start: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def process_alive(self) -> bool:
        """Whether the process recorded as running this run is still that process (not a reuse of its pid)."""
        return process_alive(self.pid, self.pid_start)


class Catalog:
    """SQLite-backed catalog of runs (thread-safe; one connection per call).

    Raises
    ------
    CatalogUnavailable
        When the catalog cannot be created or written (the message names the path and the reason).
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else twin_home() / "catalog.sqlite"
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CatalogUnavailable(f"cannot create the catalog's directory {self.path.parent}: {exc.strerror}") from None
        with self._conn(write=True, context=f"cannot open the catalog {self.path} for writing") as c:
            c.executescript(_SCHEMA)
            have = {r["name"] for r in c.execute("PRAGMA table_info(runs)")}
            for name, kind in _ADDED_COLUMNS:
                if name not in have:
                    c.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")

    @contextmanager
    def _conn(self, write: bool = False, context: str = "the catalog cannot be written") -> Iterator[sqlite3.Connection]:
        """A connection; a read falls back to an immutable one when the file cannot be opened for writing."""
        try:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            except BaseException:
                conn.close()
                raise
        except sqlite3.OperationalError as exc:
            if write:
                raise CatalogUnavailable(f"{context}: {exc}") from None
            uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?immutable=1"
            try:
                conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None)
            except sqlite3.OperationalError:
                raise CatalogUnavailable(f"cannot read the catalog {self.path}: {exc}") from None
        conn.row_factory = sqlite3.Row
        try:
            yield conn
        except sqlite3.OperationalError as exc:
            if write:
                raise CatalogUnavailable(f"{context}: {exc}") from None
            raise
        finally:
            conn.close()

    def create(self, *, run_id: str, site: str, scenario: str, scenario_doc: dict, kind: str = "run",
               parent: str | None = None, status: str = "queued", store: str | None = None) -> RunRecord:
        with self._lock, self._conn(write=True) as c:
            c.execute(
                "INSERT INTO runs (id, kind, parent, site, scenario, scenario_json, status, created, store) VALUES (?,?,?,?,?,?,?,?,?)",
                (run_id, kind, parent, site, scenario, json.dumps(scenario_doc, default=str), status, time.time(), store),
            )
        return self.get(run_id)

    def update(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run (``kpis`` is stored as JSON)."""
        if not fields:
            return
        if "kpis" in fields:
            fields["kpis_json"] = json.dumps(fields.pop("kpis"), default=_json_default)
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"unknown status {fields['status']!r}")
        if "pid" in fields and "pid_start" not in fields:  # who holds the pid now: a later reuse is told apart
            fields["pid_start"] = process_start(fields["pid"])
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._lock, self._conn(write=True) as c:
            c.execute(f"UPDATE runs SET {cols} WHERE id = ?", (*fields.values(), run_id))

    def get(self, run_id: str) -> RunRecord | None:
        with self._conn() as c:
            row = c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _record(row) if row else None

    def list(self, *, kind: str | None = None, parent: str | None = None, limit: int = 100, offset: int = 0) -> list[RunRecord]:
        q, args = "SELECT * FROM runs", []
        where = []
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if parent:
            where.append("parent = ?")
            args.append(parent)
        if where:
            q += " WHERE " + " AND ".join(where)
        q += " ORDER BY created DESC LIMIT ? OFFSET ?"
        with self._conn() as c:
            rows = c.execute(q, (*args, limit, offset)).fetchall()
        return [_record(r) for r in rows]

    def delete(self, run_id: str) -> None:
        with self._lock, self._conn(write=True) as c:
            c.execute("DELETE FROM runs WHERE id = ? OR parent = ?", (run_id, run_id))

    def fail_interrupted(self, reason: str = "interrupted: the process running it stopped") -> list[str]:
        """Mark every ``queued``/``running`` run as failed (call at server start). Returns their ids."""
        with self._lock, self._conn(write=True) as c:
            ids = [r["id"] for r in c.execute("SELECT id FROM runs WHERE status IN ('queued', 'running')")]
            c.execute(
                "UPDATE runs SET status = 'failed', error = ?, finished = ? WHERE status IN ('queued', 'running')",
                (reason, time.time()),
            )
        return ids


def _json_default(o):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
    except ImportError:  # pragma: no cover
        pass
    return str(o)


def _record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"], kind=row["kind"], parent=row["parent"], site=row["site"], scenario=row["scenario"],
        scenario_doc=json.loads(row["scenario_json"]), status=row["status"], progress=row["progress"],
        eta_s=row["eta_s"], created=row["created"], started=row["started"], finished=row["finished"],
        error=row["error"], store=row["store"], kpis=json.loads(row["kpis_json"]) if row["kpis_json"] else None,
        pid=row["pid"], pid_start=row["pid_start"] if "pid_start" in row.keys() else None,
    )
