"""The twin engine: physics kernels, the stepping engine, scenarios, results and the CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("colossus-twin")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"
