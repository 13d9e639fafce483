"""numba's on-disk cache, made safe for kernels that compile in other modules' constants.

numba invalidates a cached kernel only when the file that defines it changes. The kernels here also
compile in constants and functions of *other* modules (:mod:`grid_models.newton_numba` reads the field
numbers and functions of :mod:`grid_models.sparse_lu`; the kernels of :mod:`twin` read :mod:`twin.plant`,
:mod:`twin.state` and the stage functions), so an edit there would leave stale machine code in use.
:func:`drop_stale_cache` stamps a package's cache with a hash of all its sources and drops the cached
kernels when that hash changes; each package calls it before it defines a kernel.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from numba import njit

__all__ = ["drop_stale_cache", "njit", "DIGESTS"]

#: package directory → hash of its sources when this process imported it (what :func:`drop_stale_cache` returned
#: at the package's import); a process that compiles kernels for another (:mod:`twin._compile_ahead`) compares
#: them, so that it never writes to the cache kernels made of other sources than the ones the other process runs
DIGESTS: dict[str, str] = {}


def drop_stale_cache(package_dir: Path) -> str:
    """Delete numba's cached kernels of a package (``package_dir/__pycache__``) whose sources changed since
    they were compiled. A read-only install is left alone (numba then uses its own cache locations). Returns the
    hash of the sources."""
    cache = package_dir / "__pycache__"
    digest = hashlib.sha256()
    for f in sorted(package_dir.glob("*.py")):
        digest.update(f.name.encode() + f.read_bytes())
    stamp = cache / "numba-sources.sha256"
    try:
        if stamp.exists() and stamp.read_text() == digest.hexdigest():
            return digest.hexdigest()
        cache.mkdir(exist_ok=True)
        for f in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            f.unlink(missing_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:
        pass
    return digest.hexdigest()


DIGESTS[str(Path(__file__).resolve().parent)] = drop_stale_cache(Path(__file__).parent)
