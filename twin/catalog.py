"""The run catalog: every run and sweep, its status, progress, KPIs and store, in SQLite.

The CLI and the API read and write the same catalog (``$TWIN_HOME/catalog.sqlite``; ``TWIN_HOME``
defaults to ``./runs``). Writes are short transactions, so a crash never leaves a half-written row;
:meth:`Catalog.fail_interrupted` marks runs that were ``running`` or ``queued`` when their process died
as ``failed`` with a reason (call it when a server starts).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

__all__ = ["STATUSES", "RunRecord", "Catalog", "twin_home", "new_run_id", "RUN_ID_PATTERN"]

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
    pid INTEGER
);
CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent);
"""


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

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class Catalog:
    """SQLite-backed catalog of runs (thread-safe; one connection per call)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else twin_home() / "catalog.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._conn() as c:
            c.executescript(_SCHEMA)

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.row_factory = sqlite3.Row
        try:
            yield conn
        finally:
            conn.close()

    def create(self, *, run_id: str, site: str, scenario: str, scenario_doc: dict, kind: str = "run",
               parent: str | None = None, status: str = "queued", store: str | None = None) -> RunRecord:
        with self._lock, self._conn() as c:
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
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._lock, self._conn() as c:
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
        with self._lock, self._conn() as c:
            c.execute("DELETE FROM runs WHERE id = ? OR parent = ?", (run_id, run_id))

    def fail_interrupted(self, reason: str = "interrupted: the process running it stopped") -> list[str]:
        """Mark every ``queued``/``running`` run as failed (call at server start). Returns their ids."""
        with self._lock, self._conn() as c:
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
        pid=row["pid"],
    )
