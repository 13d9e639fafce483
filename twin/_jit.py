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

    from grid_models._jit import DIGESTS, drop_stale_cache

    # the kernels compile in other modules' constants (see there)
    DIGESTS[str(Path(__file__).resolve().parent)] = drop_stale_cache(Path(__file__).parent)

    #: the Python functions of the kernels that numba inlines (``inline="always"``)
    _INLINED: set = set()

    def _inline_into_outermost(expr, caller_ir, callee_ir) -> bool:
        """numba's inlining decision for the kernels here: inline, but not into a function that is itself
        inlined. Its callees are then inlined where it lands, so numba copies each function's IR on its own
        (a copy costs blocks × variables: copying a stage with all its callees inlined cost the stepping
        kernel most of its 17 s of inlining)."""
        return caller_ir.func_id.func not in _INLINED

    def njit(*args, **kwargs):
        """``numba.njit`` with ``cache=True`` by default; ``inline="always"`` inlines by
        :func:`_inline_into_outermost` (the same code in the end, compiled faster)."""
        kwargs.setdefault("cache", True)
        if kwargs.get("inline") == "always":
            kwargs["inline"] = _inline_into_outermost
            wrap = numba.njit(**kwargs)

            def register(fn):
                _INLINED.add(fn)
                return wrap(fn)

            return register(args[0]) if args and callable(args[0]) else register
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
