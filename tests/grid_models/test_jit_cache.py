"""The numba cache of a package is dropped when any of its sources changes, and only then."""

from pathlib import Path

from grid_models._jit import drop_stale_cache


def _cached(pkg: Path) -> list[str]:
    return sorted(p.name for p in (pkg / "__pycache__").glob("*.nb*"))


def test_cache_dropped_when_any_source_changes(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "kernels.py").write_text("X = 1\n")
    (pkg / "constants.py").write_text("COL = 3\n")
    for name in ("kernels.step-1.py311.nbi", "kernels.step-1.py311.1.nbc"):
        (pkg / "__pycache__" / name).write_bytes(b"old")

    drop_stale_cache(pkg)  # no stamp yet: whatever is cached may be stale
    assert _cached(pkg) == []
    (pkg / "__pycache__" / "kernels.step-1.py311.nbi").write_bytes(b"new")
    drop_stale_cache(pkg)  # sources unchanged: the fresh cache is kept
    assert _cached(pkg) == ["kernels.step-1.py311.nbi"]
    (pkg / "constants.py").write_text("COL = 4\n")  # a module the kernel compiles in, not the kernel's own file
    drop_stale_cache(pkg)
    assert _cached(pkg) == []

