"""Grid models: site → pandapower network, compiled arrays, and the numba AC load flow."""

from .build import build_net
from .compile import GridArrays, compile_net
from .powerflow import LoadFlowState, PowerFlowResult, runpf, solve
from .timeseries import TimeSeriesResult, bus_injections, solve_timeseries

__all__ = ["build_net", "GridArrays", "compile_net", "LoadFlowState", "PowerFlowResult", "runpf", "solve",
           "TimeSeriesResult", "bus_injections", "solve_timeseries"]
