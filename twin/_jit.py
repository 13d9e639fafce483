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


if NUMBA_ENABLED:
    import numba

    from grid_models._jit import drop_stale_cache

    drop_stale_cache(Path(__file__).parent)  # the kernels compile in other modules' constants (see there)

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
