"""Session-wide test settings."""

from __future__ import annotations

import os
import tempfile

# compiled networks are cached on disk (grid_models.cache): keep the tests' copies out of the user's home
os.environ.setdefault("TWIN_CACHE_DIR", tempfile.mkdtemp(prefix="twin-test-cache-"))
