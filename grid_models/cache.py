"""Built and compiled networks, reused across processes without importing pandapower.

Importing pandapower costs 2–3 s (it loads its plotting, estimation and I/O stacks eagerly), more
than simulating a day. A time-series run needs pandapower only to build its net
(:func:`grid_models.build.build_net`) and to compile it (:func:`grid_models.compile.compile_net`)
once per configuration (which units, ties and branches are in service, which machines share the
slack). :class:`NetCache` keeps, per *fingerprint* (the caller's description of the site and
operating point, plus this package's network code and pandapower's version), the net's element
tables as plain arrays (:class:`NetTables`) and every :class:`GridArrays` compiled so far, in memory
and on disk under the cache directory (``$TWIN_CACHE_DIR``, default ``~/.cache/colossus-twin``; set it
to ``off`` to disable): one pickle per fingerprint with the tables and an index, one per compilation
beside it, so that a new configuration costs one small write. pandapower is imported, and the net
built, only when a fingerprint or a configuration is new.

The pickles are this program's own output, written atomically; a damaged or foreign file is ignored
and rewritten.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .compile import GridArrays

__all__ = ["NetTables", "NetConfig", "NetCache", "cache_dir", "code_fingerprint", "share_in_process"]

_FORMAT = 2
#: Compilations kept per fingerprint (the most recent ones); a few kB each for a campus net.
MAX_COMPILED = 256


#: fingerprints shared by every NetCache of this process (see :func:`share_in_process`); None: off
_PROCESS: dict[str, "_Entry"] | None = None
#: fingerprints kept in the process (the most recently used)
PROCESS_MAX = 8


@dataclass
class _Entry:
    tables: "NetTables"
    compiled: dict
    net: Any = None


def share_in_process(enabled: bool = True) -> None:
    """Let every :class:`NetCache` of this process with the same fingerprint share tables,
    compilations and the built pandapower net (a sweep worker runs case after case of one site: the
    net is then built once per worker, not once per case). Off by default; ``False`` forgets all.
    """
    global _PROCESS
    _PROCESS = {} if enabled else None


def cache_dir() -> Path | None:
    """Where fingerprints are stored: ``$TWIN_CACHE_DIR`` or ``~/.cache/colossus-twin``; None if ``off``."""
    env = os.environ.get("TWIN_CACHE_DIR")
    if env and env.lower() in ("off", "0", "none", "false"):
        return None
    return Path(env) if env else Path.home() / ".cache" / "colossus-twin"


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Digest of the code that turns a site into compiled arrays (this package's sources, pandapower's version);
    read once per process (a sweep's worker builds an engine per case)."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in ("build.py", "compile.py", "cache.py"):
        h.update((here / name).read_bytes())
    try:
        h.update(metadata.version("pandapower").encode())
    except metadata.PackageNotFoundError:  # pragma: no cover - pandapower is a dependency
        pass
    return h.hexdigest()


@dataclass
class NetTables:
    """The element tables of a net that a time-series run reads, as plain arrays (``net.<table>`` row order)."""

    bus_index: np.ndarray
    bus_name: np.ndarray
    bus_island: np.ndarray
    gen_name: np.ndarray
    gen_bus: np.ndarray
    gen_p_mw: np.ndarray
    gen_in_service: np.ndarray
    ext_grid_name: np.ndarray
    ext_grid_bus: np.ndarray
    load_name: np.ndarray
    load_kind: np.ndarray
    load_bus: np.ndarray
    load_p_mw: np.ndarray
    load_q_mvar: np.ndarray
    load_in_service: np.ndarray
    line_name: np.ndarray
    line_from_bus: np.ndarray
    line_to_bus: np.ndarray
    line_in_service: np.ndarray
    trafo_name: np.ndarray
    trafo_hv_bus: np.ndarray
    trafo_lv_bus: np.ndarray
    trafo_in_service: np.ndarray

    @classmethod
    def from_net(cls, net) -> NetTables:
        col = lambda tab, c, default=None: (tab[c].to_numpy() if c in tab else np.full(len(tab), default, dtype=object))  # noqa: E731
        return cls(
            bus_index=net.bus.index.to_numpy(), bus_name=col(net.bus, "name"), bus_island=col(net.bus, "island"),
            gen_name=col(net.gen, "name"), gen_bus=net.gen.bus.to_numpy(), gen_p_mw=net.gen.p_mw.to_numpy(float),
            gen_in_service=net.gen.in_service.to_numpy(bool),
            ext_grid_name=col(net.ext_grid, "name"), ext_grid_bus=net.ext_grid.bus.to_numpy(),
            load_name=col(net.load, "name"), load_kind=col(net.load, "kind"), load_bus=net.load.bus.to_numpy(),
            load_p_mw=net.load.p_mw.to_numpy(float), load_q_mvar=net.load.q_mvar.to_numpy(float),
            load_in_service=net.load.in_service.to_numpy(bool),
            line_name=col(net.line, "name"), line_from_bus=net.line.from_bus.to_numpy(), line_to_bus=net.line.to_bus.to_numpy(),
            line_in_service=net.line.in_service.to_numpy(bool),
            trafo_name=col(net.trafo, "name"), trafo_hv_bus=net.trafo.hv_bus.to_numpy(), trafo_lv_bus=net.trafo.lv_bus.to_numpy(),
            trafo_in_service=net.trafo.in_service.to_numpy(bool),
        )

    def bus_pos(self, labels) -> np.ndarray:
        """Positions (``net.bus`` rows) of bus labels."""
        order = np.argsort(self.bus_index)
        return order[np.searchsorted(self.bus_index, np.asarray(labels), sorter=order)]


@dataclass
class NetConfig:
    """What is in service and who shares the slack: the inputs of one compilation.

    ``gen_slack`` marks each islanded island's angle reference, ``gen_slack_weight`` the
    participation of each machine in the distributed slack (0 for none).
    """

    gen_in_service: np.ndarray
    gen_slack: np.ndarray
    gen_slack_weight: np.ndarray
    ext_grid_in_service: np.ndarray
    line_in_service: np.ndarray
    trafo_in_service: np.ndarray

    def key(self) -> bytes:
        parts = (self.gen_in_service.astype(bool), self.gen_slack.astype(bool), self.gen_slack_weight.astype(float),
                 self.ext_grid_in_service.astype(bool), self.line_in_service.astype(bool), self.trafo_in_service.astype(bool))
        return b"|".join(p.tobytes() for p in parts)

    def apply(self, net) -> None:
        """Write the configuration into a pandapower net."""
        net.gen["in_service"] = self.gen_in_service.astype(bool)
        net.gen["slack"] = self.gen_slack.astype(bool)
        net.gen["slack_weight"] = self.gen_slack_weight.astype(float)
        net.ext_grid["in_service"] = self.ext_grid_in_service.astype(bool)
        net.line["in_service"] = self.line_in_service.astype(bool)
        net.trafo["in_service"] = self.trafo_in_service.astype(bool)


class NetCache:
    """A net's tables and compilations for one fingerprint; the net itself is built only when needed.

    Parameters
    ----------
    fingerprint : str
        Identifies the net's inputs (e.g. a digest of the site and the operating point); combined
        with :func:`code_fingerprint`.
    build : callable () -> pandapowerNet
        Builds the net (called at most once, and only on a miss).
    directory : Path, optional
        Default :func:`cache_dir`; None (or ``TWIN_CACHE_DIR=off``) keeps everything in memory.
    """

    def __init__(self, fingerprint: str, build: Callable[[], Any], directory: Path | None | str = "default"):
        self._build = build
        self._net = None
        self.key = hashlib.sha256((fingerprint + code_fingerprint()).encode()).hexdigest()[:32]
        self.directory = cache_dir() if directory == "default" else (Path(directory) if directory else None)
        self.tables: NetTables | None = None
        self._compiled: dict[bytes, GridArrays] = {}
        self.hits = self.misses = 0
        self._entry: _Entry | None = None
        if _PROCESS is not None and self.key in _PROCESS:
            self._entry = _PROCESS.pop(self.key)
            _PROCESS[self.key] = self._entry  # most recently used last
            self.tables, self._compiled, self._net = self._entry.tables, self._entry.compiled, self._entry.net
            return
        stored = self._load()
        if stored is not None:
            self.tables, self._compiled = stored
        else:
            self.tables = NetTables.from_net(self.net)
            self._save()
        if _PROCESS is not None:
            self._entry = _PROCESS[self.key] = _Entry(self.tables, self._compiled, self._net)
            while len(_PROCESS) > PROCESS_MAX:
                _PROCESS.pop(next(iter(_PROCESS)))

    @property
    def path(self) -> Path | None:
        return None if self.directory is None else self.directory / "grid" / f"{self.key}.pkl"

    @property
    def net(self):
        """The pandapower net (built, and pandapower imported, on first access)."""
        if self._net is None:
            self._net = self._build()
            if self._entry is not None:
                self._entry.net = self._net
        return self._net

    @property
    def net_built(self) -> bool:
        return self._net is not None

    def compiled(self, config: NetConfig) -> GridArrays:
        """The compiled arrays of the net under ``config`` (compiled with distributed slack on a miss)."""
        from .compile import compile_net

        key = config.key()
        arrays = self._compiled.get(key)
        if arrays is not None:
            self.hits += 1
            return arrays
        self.misses += 1
        net = self.net
        config.apply(net)
        arrays = compile_net(net, distributed_slack=True)
        self._compiled[key] = arrays
        gone = []
        while len(self._compiled) > MAX_COMPILED:  # forget the oldest configurations
            gone.append(next(iter(self._compiled)))
            self._compiled.pop(gone[-1])
        self._save(new=key, gone=gone)
        return arrays

    # ------------------------------------------------------------------ storage
    # One file per fingerprint (``path``: format, key, tables and the digests of the compilations, oldest first) and
    # one per compilation beside it (``<key>/<digest>.pkl``): a new configuration writes its own file and the small
    # index, not every compilation again (a sweep meets hundreds of topologies).
    def _config_path(self, config_key: bytes) -> Path:
        return self.path.parent / self.key / f"{hashlib.sha256(config_key).hexdigest()[:32]}.pkl"

    def _load(self):
        path = self.path
        if path is None or not path.exists():
            return None
        try:
            with open(path, "rb") as fh:
                doc = pickle.load(fh)
            if doc.get("format") != _FORMAT or doc.get("key") != self.key:
                return None
        except Exception:  # damaged, truncated or from another version: rebuild and overwrite
            return None
        compiled = {}
        for digest in doc["compiled"]:
            try:
                with open(path.parent / self.key / f"{digest}.pkl", "rb") as fh:
                    entry = pickle.load(fh)
                compiled[entry["config"]] = entry["arrays"]
            except Exception:  # a compilation lost or damaged: compiled again when needed
                continue
        return doc["tables"], compiled

    def _save(self, new: bytes | None = None, gone: list[bytes] = ()) -> None:
        path = self.path
        if path is None:
            return
        try:
            if new is not None:
                _write_atomic(self._config_path(new), {"config": new, "arrays": self._compiled[new]})
            for k in gone:
                self._config_path(k).unlink(missing_ok=True)
            digests = [self._config_path(k).stem for k in self._compiled]
            _write_atomic(path, {"format": _FORMAT, "key": self.key, "tables": self.tables, "compiled": digests})
        except OSError:  # a read-only or full disk: run without the disk cache
            pass


def _write_atomic(path: Path, doc) -> None:
    """Pickle ``doc`` to ``path``: readers see the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(doc, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
