"""Compile the stepping kernel in a second process while the engine builds everything else.

On an empty numba cache (the first run after an install, or after a source change: :mod:`twin._jit`)
compiling :func:`twin.stepping.step_segment` is most of a run: about 48 of 70 s for
``twin run memphis --scenario southaven-largest-trip`` on a 2-core machine, in one piece (its stages are
inlined, which numba compiles together; called as functions they cost the kernel a fifth of its speed).
Nothing else a run compiles needs it: the engine first builds the plant and the network and compiles
their kernels (the load flow, about 20 s), the KPIs' after. So :meth:`twin.engine.Engine.__init__`
calls :func:`start`, which, when the kernel is missing from numba's cache, starts one helper process that
compiles it for the types the engine will call it with and writes numba's on-disk cache, and
:meth:`~twin.engine.Engine._kernel_pass` calls :func:`wait` before the kernel's first call: numba then
loads the kernel from the cache instead of compiling it a second time.

It never gets in the way:

* with the kernel in numba's cache (every run but the first) nothing starts; the check is one read of
  the kernel's small cache index, once per process;
* whatever happens to the helper (it cannot start, fails, is killed, takes longer than :data:`WAIT_S`),
  the engine compiles the kernel itself as it always did; the helper prints nothing (its stderr is kept
  in a temporary file and logged at debug level if it fails);
* the helper leaves with its parent (a watchdog thread) and is stopped if the parent exits first;
* the helpers of processes that start together on a cold cache (a sweep's workers, test sessions) compile
  one at a time (a lock file beside numba's cache): the next one then loads what the first wrote (it waits
  at most :data:`LOCK_WAIT_S` for the lock, then compiles anyway).

``TWIN_COMPILE_AHEAD=0`` turns it off.
"""

from __future__ import annotations

import atexit
import importlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ._jit import NUMBA_ENABLED

__all__ = ["cached", "start", "wait", "enabled", "WAIT_S"]

log = logging.getLogger(__name__)

#: Longest wait for the helper before the engine compiles the kernel itself [s] (the helper takes about a
#: minute on a quiet 2-core machine).
WAIT_S = 600.0
#: Longest wait of a helper for another process's helper (the lock beside numba's cache) before it compiles
#: the kernel anyway [s]: a lock holder that is stopped (Ctrl-Z) or hangs must not hold every other process's
#: first run for :data:`WAIT_S`.
LOCK_WAIT_S = 180.0
#: Environment switch (``0`` turns compiling ahead off).
ENV = "TWIN_COMPILE_AHEAD"

#: this process's helpers still to be waited for: kernel → (process, its stderr file)
_helpers: dict[str, tuple[subprocess.Popen, Any]] = {}
#: kernels checked in this process (the cache is looked at once per process)
_checked: set[str] = set()
_lock = threading.Lock()


def enabled() -> bool:
    """Whether kernels are compiled ahead on a cold cache (numba on and ``TWIN_COMPILE_AHEAD`` not ``0``)."""
    return NUMBA_ENABLED and os.environ.get(ENV, "1").lower() not in ("0", "false", "off", "no")


def _resolve(path: str):
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _digests() -> dict[str, str]:
    """The hashes of the kernels' packages' sources as this process imported them (``grid_models._jit.DIGESTS``)."""
    try:
        from grid_models._jit import DIGESTS

        return dict(DIGESTS)
    except Exception:  # noqa: BLE001 - nothing to compare
        return {}


def _root(top: str) -> str:
    """The directory from which the top-level module or package ``top`` is imported."""
    module = importlib.import_module(top)
    path = Path(module.__file__).resolve()
    return str(path.parent.parent if hasattr(module, "__path__") else path.parent)


def _in_cache(kernel, argtypes: tuple) -> bool:
    """Whether numba's on-disk cache of ``kernel`` (a ``cache=True`` dispatcher) holds a compilation for these
    argument types. Reads numba's cache index (a read-only use of numba's ``FunctionCache``); anything
    unexpected counts as cached, so that nothing is started."""
    try:
        index = kernel._cache._cache_file._load_index()  # {} when absent, stale or of another numba version
    except Exception:  # noqa: BLE001 - another numba: behave as without compiling ahead
        return True
    return any(key[0] == argtypes for key in index)


def cached(kernel: str, types: str) -> bool:
    """Whether ``kernel`` is compiled for the types of ``types()`` in this process or in numba's on-disk cache
    (``False``: its first call will compile it). Never raises; anything unexpected counts as cached."""
    try:
        disp = _resolve(kernel)
        argtypes = tuple(_resolve(types)())
        return argtypes in disp.overloads or _in_cache(disp, argtypes)
    except Exception:  # noqa: BLE001 - only a hint for the user
        return True


def start(kernel: str, types: str) -> None:
    """Start a helper that compiles ``kernel`` into numba's cache, if the cache lacks it.

    ``kernel`` and ``types`` name (``"module:attribute"``) an ``njit(cache=True)`` dispatcher and a function
    returning the tuple of numba types of its arguments. Once per process and kernel; never raises.
    """
    with _lock:
        if kernel in _checked or not enabled():
            return
        _checked.add(kernel)
    if cached(kernel, types):
        return
    try:
        disp = _resolve(kernel)
        # the helper imports the kernel's package, this one and those whose sources the kernels compile in
        # from where this process has them
        digests = _digests()
        roots = list(dict.fromkeys([_root(name) for name in (kernel.split(":")[0].split(".")[0], __name__.split(".")[0])]
                                   + [str(Path(d).parent) for d in digests]))
        source = str(Path(disp.py_func.__code__.co_filename).resolve())
        digests = json.dumps(digests)
        err = tempfile.TemporaryFile()
        code = ("import sys; sys.path[:0] = sys.argv[1].split(sys.argv[2]); "
                "from twin._compile_ahead import main; main(sys.argv[3:])")
        proc = subprocess.Popen([sys.executable, "-c", code, os.pathsep.join(roots), os.pathsep, kernel, types, source,
                                 str(os.getpid()), str(LOCK_WAIT_S), digests],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, close_fds=True,
                                env={**os.environ, ENV: "0"})
    except Exception as e:  # noqa: BLE001 - compiling ahead is an optimisation: the engine compiles as before
        log.debug("not compiling %s ahead: %s", kernel, e)
        return
    with _lock:
        _helpers[kernel] = (proc, err)
    log.debug("compiling %s ahead in process %d", kernel, proc.pid)


def wait(kernel: str) -> None:
    """Before ``kernel``'s first call in this process: wait for its helper, if one was started (at most
    :data:`WAIT_S`; then the helper is stopped and the caller compiles the kernel itself). Threads that call
    it together all wait for the one helper. Never raises but for an interruption of the wait (the helper
    is stopped then too)."""
    if not _helpers:
        return
    with _lock:
        helper = _helpers.get(kernel)
    if helper is None:
        return
    proc, err = helper
    t0 = time.perf_counter()
    try:
        code = proc.wait(WAIT_S)
    except subprocess.TimeoutExpired:
        code = None
    except BaseException:
        if _forget(kernel, helper):
            err.close()
        raise
    if not _forget(kernel, helper):
        return  # another thread waited for it too and reports
    if code is None:
        log.debug("the helper compiling %s took more than %.0f s: compiling here", kernel, WAIT_S)
    elif code != 0:
        err.seek(0)
        tail = err.read()[-2000:].decode(errors="replace")
        log.debug("the helper compiling %s failed (exit code %s): compiling here\n%s", kernel, code, tail)
    else:
        log.debug("waited %.1f s for the helper compiling %s", time.perf_counter() - t0, kernel)
    err.close()


def _forget(kernel: str, helper) -> bool:
    """Drop ``helper`` (stopping it if it still runs); False if another thread already did."""
    with _lock:
        if _helpers.get(kernel) is not helper:
            return False
        del _helpers[kernel]
    _stop(helper[0])
    return True


def _stop(proc: subprocess.Popen, err=None) -> None:
    try:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    except Exception:  # noqa: BLE001 - nothing left to do about it at exit
        pass
    if err is not None:
        err.close()


@atexit.register
def _stop_all() -> None:
    """At exit, stop the helpers not waited for (the process ended before its kernel's first call)."""
    while _helpers:
        _, (proc, err) = _helpers.popitem()
        _stop(proc, err)


# ---------------------------------------------------------------------------------------------- the helper
def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _cache_lock(disp, wait_s: float):
    """An exclusive lock beside numba's cache of ``disp``, waited for at most ``wait_s`` (POSIX; elsewhere, if it
    cannot be made or is still held then, none)."""
    try:
        import fcntl

        os.makedirs(disp._cache.cache_path, exist_ok=True)
        f = open(os.path.join(disp._cache.cache_path, "compile-ahead.lock"), "a")
    except Exception:  # noqa: BLE001 - without the lock concurrent helpers only compile twice
        return None
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return f
        except BlockingIOError:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        except Exception:  # noqa: BLE001 - as without the lock
            break
    f.close()
    return None


def main(argv: list[str]) -> None:
    """The helper: ``argv`` is the kernel, its types function, the kernel's source file as the parent sees it,
    the parent's process id, the longest wait for another helper (:data:`LOCK_WAIT_S`) and the hashes of the
    sources the parent imported (JSON). Compiles the kernel (or loads it, when another helper was first) into
    numba's cache; exits without compiling if the sources changed since the parent imported them (its kernel
    would compile in other constants than the parent's code uses)."""
    kernel, types, source, parent, lock_wait_s, digests = argv
    threading.Thread(target=_exit_with_parent, args=(int(parent),), daemon=True).start()
    disp = _resolve(kernel)
    if str(Path(disp.py_func.__code__.co_filename).resolve()) != source:
        sys.exit(f"{kernel} is {disp.py_func.__code__.co_filename} here, {source} in the parent")
    here, there = _digests(), json.loads(digests)
    changed = sorted(d for d in there if here.get(d) != there[d])  # or not imported from there
    if changed:
        sys.exit(f"the sources in {', '.join(changed)} changed since the parent imported them")
    argtypes = tuple(_resolve(types)())
    lock = _cache_lock(disp, float(lock_wait_s))
    try:
        disp.compile(argtypes)
    finally:
        if lock is not None:
            lock.close()
