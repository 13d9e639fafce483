"""Compiling the stepping kernel ahead in a helper process on a cold numba cache (twin._compile_ahead).

The mechanism is exercised on a small probe kernel in a package of its own (its own cold cache): compiling
the real kernel twice from cold would take two minutes. The probe's types function misbehaves on request, in
the helper only (the helper runs with ``TWIN_COMPILE_AHEAD=0``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from twin import _compile_ahead as ca
from twin._jit import NUMBA_ENABLED

pytestmark = pytest.mark.skipif(not NUMBA_ENABLED, reason="compiling ahead needs numba")

PROBE = '''
import os
import time

import numba
import numpy as np


@numba.njit(cache=True)
def blend(a, b):
    out = np.empty_like(a)
    for i in range(a.size):
        out[i] = np.sin(a[i]) * b + np.sqrt(abs(a[i])) / (1.0 + b * a[i] * a[i])
    return out


def blend_types():
    if os.environ.get("TWIN_COMPILE_AHEAD") == "0":  # in the helper
        if os.environ.get("PROBE_HELPER") == "fail":
            raise RuntimeError("the probe's helper fails on purpose")
        if os.environ.get("PROBE_HELPER") == "hang":
            time.sleep(120)
    return (numba.typeof(np.zeros(1)), numba.float64)
'''


def _probe(where: Path, monkeypatch):
    """A fresh probe package under ``where`` (a new name: its own module and its own empty cache), imported."""
    name = f"ca_probe_{uuid.uuid4().hex[:10]}"
    (where / name).mkdir(parents=True)
    (where / name / "__init__.py").write_text(textwrap.dedent(PROBE))
    monkeypatch.syspath_prepend(str(where))
    return __import__(name)


@pytest.fixture
def fresh(monkeypatch):
    """This process has checked no kernel and started no helper."""
    monkeypatch.delenv(ca.ENV, raising=False)
    monkeypatch.setattr(ca, "_checked", set())
    monkeypatch.setattr(ca, "_helpers", {})
    yield
    ca._stop_all()


def _start(mod) -> tuple[str, subprocess.Popen | None]:
    kernel = f"{mod.__name__}:blend"
    ca.start(kernel, f"{mod.__name__}:blend_types")
    helper = ca._helpers.get(kernel)
    return kernel, (helper[0] if helper else None)


def test_helper_compiles_the_kernel_which_this_process_then_loads(tmp_path, monkeypatch, fresh, capfd):
    mod = _probe(tmp_path / "ahead", monkeypatch)
    assert not ca.cached(f"{mod.__name__}:blend", f"{mod.__name__}:blend_types")  # what the CLI's first-run notice asks
    kernel, proc = _start(mod)
    assert proc is not None  # cold cache: a helper was started
    waiters = [threading.Thread(target=ca.wait, args=(kernel,)) for _ in range(2)]  # threads wait together
    for w in waiters:
        w.start()
    for w in waiters:
        w.join(60)
    assert proc.returncode == 0 and not ca._helpers
    a = np.linspace(-2.0, 3.0, 101)
    ahead = mod.blend(a, 0.7)
    assert sum(mod.blend.stats.cache_hits.values()) == 1  # loaded from what the helper wrote
    assert sum(mod.blend.stats.cache_misses.values()) == 0  # not compiled here
    serial = _probe(tmp_path / "serial", monkeypatch)  # the same kernel compiled in this process, from cold
    np.testing.assert_array_equal(ahead, serial.blend(a, 0.7))
    assert sum(serial.blend.stats.cache_misses.values()) == 1
    np.testing.assert_allclose(ahead, mod.blend.py_func(a, 0.7), rtol=1e-14)
    assert ca.cached(kernel, f"{mod.__name__}:blend_types")
    # warm: another process (here: this one, checking afresh) starts nothing
    monkeypatch.setattr(ca, "_checked", set())
    assert _start(mod)[1] is None
    assert capfd.readouterr().err == ""


def test_a_failing_helper_leaves_the_compilation_to_this_process(tmp_path, monkeypatch, fresh, caplog, capfd):
    monkeypatch.setenv("PROBE_HELPER", "fail")
    mod = _probe(tmp_path, monkeypatch)
    kernel, proc = _start(mod)
    assert proc is not None
    with caplog.at_level(logging.DEBUG, logger=ca.__name__):
        ca.wait(kernel)
    assert proc.returncode != 0
    assert "failed" in caplog.text and "fails on purpose" in caplog.text  # its stderr, at debug level only
    assert capfd.readouterr().err == ""  # nothing reaches the terminal
    a = np.linspace(0.0, 1.0, 11)
    np.testing.assert_allclose(mod.blend(a, 2.0), mod.blend.py_func(a, 2.0), rtol=1e-14)
    assert sum(mod.blend.stats.cache_misses.values()) == 1  # compiled here, as without a helper



@pytest.mark.skipif(not hasattr(os, "fork"), reason="the lock is POSIX only")
def test_a_lock_held_by_a_stuck_process_delays_the_helper_only_so_long(tmp_path, monkeypatch, fresh):
    """Another helper that holds the cache lock and never lets go (its process stopped by Ctrl-Z, or hung):
    this process's helper compiles anyway after LOCK_WAIT_S, instead of this process waiting WAIT_S for it."""
    import fcntl

    mod = _probe(tmp_path, monkeypatch)
    os.makedirs(mod.blend._cache.cache_path, exist_ok=True)
    with open(os.path.join(mod.blend._cache.cache_path, "compile-ahead.lock"), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # the stuck lock holder
        monkeypatch.setattr(ca, "LOCK_WAIT_S", 1.0, raising=False)
        monkeypatch.setattr(ca, "WAIT_S", 20.0)
        kernel, proc = _start(mod)
        assert proc is not None
        ca.wait(kernel)
        assert proc.returncode == 0  # compiled, not stopped at WAIT_S
    mod.blend(np.zeros(3), 1.0)
    assert sum(mod.blend.stats.cache_hits.values()) == 1 and sum(mod.blend.stats.cache_misses.values()) == 0


@pytest.mark.parametrize("where", ["twin", "elsewhere"])
def test_sources_changed_since_this_process_imported_them_are_not_compiled_ahead(tmp_path, monkeypatch, fresh, caplog, where):
    """The helper imports the sources as they are when it starts; if a package's sources changed since this process
    imported them (an edit, an upgrade under a running server), its kernel would compile in other constants than
    this process's code uses, and this process would load it: the helper compiles nothing then. Nor when it does not
    import a package from where this process did (``elsewhere``)."""
    import grid_models._jit as gj

    mod = _probe(tmp_path, monkeypatch)
    twin_dir = str(Path(ca.__file__).resolve().parent)
    assert twin_dir in gj.DIGESTS
    (tmp_path / "other").mkdir()
    gj.drop_stale_cache(tmp_path / "other")  # as tests/grid_models/test_jit_cache.py does: not a package imported
    assert str(tmp_path / "other") not in gj.DIGESTS and str((tmp_path / "other").resolve()) not in gj.DIGESTS
    if where == "twin":
        monkeypatch.setitem(gj.DIGESTS, twin_dir, "0" * 64)  # as if twin's sources changed since this process imported them
    else:
        monkeypatch.setitem(gj.DIGESTS, str(tmp_path / "elsewhere" / "pkg"), "0" * 64)
    kernel, proc = _start(mod)
    assert proc is not None
    with caplog.at_level(logging.DEBUG, logger=ca.__name__):
        ca.wait(kernel)
    assert proc.returncode != 0 and "changed since the parent imported them" in caplog.text
    mod.blend(np.zeros(3), 1.0)
    assert sum(mod.blend.stats.cache_misses.values()) == 1  # compiled here, from what this process imported

def test_switched_off_or_without_numba_cache_nothing_starts(tmp_path, monkeypatch, fresh):
    mod = _probe(tmp_path, monkeypatch)
    monkeypatch.setenv(ca.ENV, "0")
    assert _start(mod)[1] is None
    monkeypatch.delenv(ca.ENV)
    monkeypatch.setattr(ca, "_checked", set())
    mod.blend.py_func.__globals__["nocache"] = __import__("numba").njit(mod.blend.py_func)  # cache=False
    ca.start(f"{mod.__name__}:nocache", f"{mod.__name__}:blend_types")
    assert not ca._helpers


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z"  # exited, not reaped (yet)
    except (FileNotFoundError, ProcessLookupError):
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_no_helper_outlives_its_process(tmp_path, monkeypatch, fresh):
    monkeypatch.setenv("PROBE_HELPER", "hang")
    # stopped when this process exits before waiting for it (atexit)
    mod = _probe(tmp_path / "a", monkeypatch)
    _, proc = _start(mod)
    assert proc is not None and proc.poll() is None
    ca._stop_all()
    assert proc.poll() is not None
    # a parent that dies without any clean-up: its helper's watchdog ends the helper
    name = _probe(tmp_path / "b", monkeypatch).__name__  # another cold kernel
    parent = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import os, sys
        sys.path[:0] = [{str(tmp_path / "b")!r}, {ca._root("twin")!r}]
        from twin import _compile_ahead as ca
        ca.start("{name}:blend", "{name}:blend_types")
        print(ca._helpers["{name}:blend"][0].pid, flush=True)
        os._exit(0)
    """)], capture_output=True, text=True, timeout=60)
    pid = int(parent.stdout.split()[-1])
    deadline = time.monotonic() + 15
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _gone(pid)


def test_the_engine_calls_the_kernel_with_the_types_compiled_ahead(monkeypatch):
    import numba

    from sites import load_site
    from twin import engine as engine_mod
    from twin.scenario import load_scenario

    seen = []
    real = engine_mod.step_segment

    def spy(*args):
        seen.append(tuple(numba.typeof(a) for a in args))
        return real(*args)

    monkeypatch.setattr(engine_mod, "step_segment", spy)
    for record in (False, True):
        sc = load_scenario("southaven-largest-trip").model_copy(deep=True)
        sc.scenario.horizon = "00:00:30"
        eng = engine_mod.Engine(load_site("memphis"), sc, [], reuse_outputs=True, record_substeps=record)
        for _ in eng.segments(overlap=False):
            pass
    assert seen and set(seen) == {engine_mod.step_segment_types()}


# ---- inlining (twin._jit): inlined everywhere but into a function that is itself inlined
if NUMBA_ENABLED:
    from twin._jit import njit

    @njit(inline="always", cache=False)
    def _inner(x):  # pragma: no cover - jitted
        return x * x + 1.0

    @njit(inline="always", cache=False)
    def _middle(x):  # pragma: no cover - jitted
        return _inner(x) - _inner(-x) + 2.0 * x

    @njit(cache=False)
    def _outer(x):  # pragma: no cover - jitted
        return _middle(x) + _inner(x)


def test_inlined_kernels_land_in_the_outermost_function():
    x = 1.5  # (a py_func would call the other kernels' dispatchers, compiling them)
    inner = lambda y: y * y + 1.0  # noqa: E731
    middle = inner(x) - inner(-x) + 2.0 * x
    assert _outer(x) == middle + inner(x)
    # both inlined into _outer, _inner's two calls in _middle included: neither was compiled on its own
    assert _middle.signatures == [] and _inner.signatures == []
    # compiled on its own, an inlined kernel calls its inlined callees (they are inlined where it lands)
    assert _middle(x) == middle
    assert len(_inner.signatures) == 1


@pytest.mark.parametrize("compiled", [False, True])
def test_twin_run_says_when_it_compiles(tmp_path, monkeypatch, compiled):
    """``twin run`` explains the long wait of a first run (the kernel not yet in numba's cache), and only then."""
    from typer.testing import CliRunner

    import twin.engine
    from twin.cli import app

    real = twin.engine.kernel_compiled
    monkeypatch.setattr(twin.engine, "kernel_compiled", lambda: compiled)
    f = tmp_path / "short.toml"
    f.write_text('[scenario]\nname = "short"\nsite = "memphis"\nhorizon = "00:01:00"\n')
    result = CliRunner().invoke(app, ["run", "memphis", "--scenario", str(f), "--out", str(tmp_path / "run"), "--no-plots"])
    assert result.exit_code == 0, result.output
    assert ("numba compiles the kernels" in " ".join(result.output.split())) is not compiled
    assert real()  # the run compiled (or loaded) the kernel for the engine's argument types in this process

