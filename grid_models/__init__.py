"""Grid models: site → pandapower network, and the numba AC load flow."""

from .build import build_net

__all__ = ["build_net"]
