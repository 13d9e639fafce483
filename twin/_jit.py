"""One switch for numba: ``njit`` is numba's ``njit(cache=True)`` when available.

Every kernel in :mod:`twin` is written once in the numba-compatible subset of Python and decorated
with :func:`njit`; its pure-Python twin is ``kernel.py_func`` (tests run both and compare). Setting
the environment variable ``TWIN_DISABLE_NUMBA=1`` makes :func:`njit` a no-op, for debugging.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["njit", "NUMBA_ENABLED"]

NUMBA_ENABLED = os.environ.get("TWIN_DISABLE_NUMBA", "0") not in ("1", "true", "True")


def _drop_stale_cache(package_dir: Path) -> None:
    """Delete numba's cached kernels of a package whose sources changed since they were compiled.

    numba invalidates a cached kernel only when the file defining it changes, but the kernels here
    compile in constants and functions of *other* modules (column indices of :mod:`twin.plant` and
    :mod:`twin.state`, the stage functions): a change there would leave stale machine code in use.
    So the cache is stamped with a hash of every source of the package and dropped when it differs.
    """
    import hashlib

    cache = package_dir / "__pycache__"
    digest = hashlib.sha256()
    for f in sorted(package_dir.glob("*.py")):
        digest.update(f.name.encode() + f.read_bytes())
    stamp = cache / "numba-sources.sha256"
    try:
        if stamp.exists() and stamp.read_text() == digest.hexdigest():
            return
        cache.mkdir(exist_ok=True)
        for f in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            f.unlink(missing_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:  # a read-only install: numba falls back to its own cache locations
        pass


if NUMBA_ENABLED:
    import numba

    _drop_stale_cache(Path(__file__).parent)

    def njit(*args, **kwargs):
        """``numba.njit`` with ``cache=True`` by default."""
        kwargs.setdefault("cache", True)
        return numba.njit(*args, **kwargs)

else:  # pragma: no cover - debugging path

    def njit(*args, **kwargs):
        if args and callable(args[0]):
            fn = args[0]
            fn.py_func = fn
            return fn

        def wrap(fn):
            fn.py_func = fn
            return fn

        return wrap
