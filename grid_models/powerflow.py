"""``runpf``: our Newton–Raphson load flow behind the ``pandapower.runpp`` interface.

``runpf(net, **options)`` compiles the net (:func:`grid_models.compile.compile_net`), solves it with
the numba kernels (:mod:`grid_models.newton_numba`; dense LU per island) or, for networks too large
for dense factors, with the scipy twin (:mod:`grid_models.newton`; sparse LU), and writes
``net.res_bus``, ``res_line``, ``res_trafo``, ``res_ext_grid``, ``res_gen``, ``res_sgen``,
``res_load``, ``res_storage`` and ``res_shunt`` with pandapower's columns and conventions, so either
function can be called. Unlike ``runpp`` it solves several islands with distributed slack at once
and reports non-convergence as data (``net.converged = False``, NaN results) instead of raising.

Result conventions reproduced from pandapower (``pfsoln``, ``results_*``):

* bus ``p_mw``/``q_mvar`` are the sums of the element results at the bus (consumption positive);
* at a REF bus (and, with distributed slack, at every bus carrying slack weight) the machines that
  are references share the bus power beyond the other machines' set points in proportion to
  ``slack_weight`` (equally if those sum to zero);
* machines of one bus share its reactive power in proportion to their reactive ranges
  (``min_q_mvar``/``max_q_mvar``; an ext_grid's range is zero), equally where the ranges are all zero;
* line loading is ``i_ka / (max_i_ka · df · parallel)``; transformer loading the larger of the
  rated-current ratios at the two sides, ``/ (parallel · df)`` (``trafo_loading="current"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import newton as _np_newton
from . import newton_numba as _nb
from .compile import MACHINE_EXT_GRID, MACHINE_GEN, PQ, REF, GridArrays, compile_net, dc_angles_degree

__all__ = ["LoadFlowState", "PowerFlowResult", "dense_lu_sizes", "solve", "runpf", "write_results"]

from .sparse_lu import DENSE_MAX_DIM  # noqa: E402  (above it: sparse scipy path for solve, sparse LU for the time series)

_RES_COLUMNS = {
    "res_bus": ["vm_pu", "va_degree", "p_mw", "q_mvar"],
    "res_line": ["p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar", "pl_mw", "ql_mvar", "i_from_ka", "i_to_ka",
                 "i_ka", "vm_from_pu", "va_from_degree", "vm_to_pu", "va_to_degree", "loading_percent"],
    "res_trafo": ["p_hv_mw", "q_hv_mvar", "p_lv_mw", "q_lv_mvar", "pl_mw", "ql_mvar", "i_hv_ka", "i_lv_ka",
                  "vm_hv_pu", "va_hv_degree", "vm_lv_pu", "va_lv_degree", "loading_percent"],
    "res_gen": ["p_mw", "q_mvar", "va_degree", "vm_pu"],
    "res_ext_grid": ["p_mw", "q_mvar"],
    "res_sgen": ["p_mw", "q_mvar"],
    "res_load": ["p_mw", "q_mvar"],
    "res_storage": ["p_mw", "q_mvar"],
    "res_shunt": ["p_mw", "q_mvar", "vm_pu"],
}


@dataclass
class LoadFlowState:
    """Mutable solver state carried between calls: voltages, slack and the per-island LU factors.

    Attributes
    ----------
    vm_pu, va_rad : ndarray(float64, n_bus)
        Voltage magnitude [pu] and angle [rad] per internal bus.
    v : ndarray(complex128, n_bus)
        ``vm_pu · exp(j va_rad)``, kept consistent by the kernels.
    slack_pu : ndarray(float64, n_island)
        Slack power of distributed-slack islands [pu].
    lu : ndarray(float64)
        Row-major LU factors of every island's Jacobian, island ``i`` at ``lu_off[i]``.
    piv : ndarray(int64)
        Pivot rows, island ``i`` at ``piv_off[i]``.
    have_lu : ndarray(bool, n_island)
        Whether the island's factors (dense in ``lu``, or sparse in ``sparse``) are valid (the chord
        method reuses them).
    sparse : SparseLU or None
        Pattern, pivot sequence and factors of the islands the time series factorises sparse
        (:mod:`grid_models.sparse_lu`), analysed at the first call that needs them; ``lu`` has no room
        for islands above ``DENSE_MAX_DIM`` rows.
    """

    vm_pu: np.ndarray
    va_rad: np.ndarray
    v: np.ndarray
    slack_pu: np.ndarray
    lu: np.ndarray
    lu_off: np.ndarray
    piv: np.ndarray
    piv_off: np.ndarray
    have_lu: np.ndarray
    sparse: object = None

    @classmethod
    def start(cls, arrays: GridArrays, vm_pu: np.ndarray, va_degree: np.ndarray,
              slack_pu: np.ndarray | None = None, dense: bool = True,
              dense_max_dim: int = DENSE_MAX_DIM) -> "LoadFlowState":
        """A state at the given voltages (set points are imposed at PV and REF buses).

        ``lu`` gets room for the dense factors of the islands up to ``dense_max_dim`` rows (none if
        not ``dense``).
        """
        vm = np.where(arrays.bus_kind != PQ, arrays.bus_vm_set_pu, np.asarray(vm_pu, float)).astype(float)
        va = np.deg2rad(np.where(arrays.bus_va_col < 0, arrays.bus_va_set_degree, np.asarray(va_degree, float)))
        dim = arrays.island_dim
        lu_off = np.zeros(arrays.n_island, np.int64)
        piv_off = np.zeros(arrays.n_island, np.int64)
        if arrays.n_island:
            lu_off[1:] = np.cumsum(dense_lu_sizes(arrays, dense_max_dim))[:-1]
            piv_off[1:] = np.cumsum(dim)[:-1]
        size = int(dense_lu_sizes(arrays, dense_max_dim).sum()) if dense else 0
        slack = np.zeros(arrays.n_island) if slack_pu is None else np.asarray(slack_pu, float).copy()
        return cls(vm, va, vm * np.exp(1j * va), slack, np.zeros(max(size, 1)), lu_off,
                   np.zeros(max(int(dim.sum()), 1), np.int64), piv_off, np.zeros(arrays.n_island, bool))

    def copy(self) -> "LoadFlowState":
        """An independent copy."""
        return LoadFlowState(*(np.array(x, copy=True) for x in (self.vm_pu, self.va_rad, self.v, self.slack_pu,
                                                                 self.lu, self.lu_off, self.piv, self.piv_off,
                                                                 self.have_lu)),
                             sparse=None if self.sparse is None else self.sparse.copy())


def dense_lu_sizes(arrays: GridArrays, max_dim: int = DENSE_MAX_DIM) -> np.ndarray:
    """Room for each island's dense factors in :attr:`LoadFlowState.lu` (``dim²``; none above ``max_dim``)."""
    dim = arrays.island_dim
    return np.where(dim <= max_dim, dim * dim, 0)


class PowerFlowResult(NamedTuple):
    """Outcome of one load flow (also the return value of :func:`runpf`).

    Attributes
    ----------
    converged : bool
        Every island converged.
    iterations : int
        Largest number of Newton updates among the islands.
    max_mismatch_mva : float
        Largest final power mismatch [MVA].
    solver : str
        ``"numba"`` (dense LU per island) or ``"numpy"`` (sparse LU).
    factorisations : int
    island_converged : ndarray(bool, n_island)
    vm_pu, va_degree : ndarray(float64, n_bus)
        Internal bus voltages [pu], [degree].
    slack_mw : ndarray(float64, n_island)
        Power each island's slack machines pick up beyond their set points [MW]: the shared slack
        of a distributed-slack island, the REF buses' extra injection (e.g. an ext_grid's import)
        of a single-slack island; NaN for an island that did not converge.
    arrays : GridArrays
    """

    converged: bool
    iterations: int
    max_mismatch_mva: float
    solver: str
    factorisations: int
    island_converged: np.ndarray
    vm_pu: np.ndarray
    va_degree: np.ndarray
    slack_mw: np.ndarray
    arrays: GridArrays


def _initial_slack(arrays: GridArrays, p_mw: np.ndarray) -> np.ndarray:
    """Initial guess of each distributed island's slack: its scheduled imbalance [pu]."""
    imbalance = np.bincount(arrays.bus_island, weights=p_mw, minlength=arrays.n_island)
    return np.where(arrays.island_slack_col >= 0, -imbalance / arrays.base_mva, 0.0)


def solve(arrays: GridArrays, p_mw: np.ndarray | None = None, q_mvar: np.ndarray | None = None, *,
          init: str | LoadFlowState = "dc", tolerance_mva: float = 1e-8, max_iteration: int = 20,
          solver: str = "auto") -> PowerFlowResult:
    """Solve one operating point of compiled arrays by Newton–Raphson (polar, distributed slack).

    Parameters
    ----------
    arrays : GridArrays
    p_mw, q_mvar : ndarray(n_bus), optional
        Net injections per internal bus (generation − load) [MW], [Mvar]; default: the net's.
    init : {"dc", "flat"} or LoadFlowState
        Initial point: DC angles, flat start, or a previous state (warm start; updated in place).
    tolerance_mva : float
        Convergence when every power mismatch is below this [MVA] (``tolerance_mva / base_mva`` pu).
    max_iteration : int
        Newton updates per island; a diverging case stops here (bounded time).
    solver : {"auto", "numba", "numpy"}
        ``"auto"``: numba unless an island's Jacobian exceeds ``DENSE_MAX_DIM`` rows.

    Returns
    -------
    PowerFlowResult
    """
    p = arrays.p_mw if p_mw is None else np.asarray(p_mw, float)
    q = arrays.q_mvar if q_mvar is None else np.asarray(q_mvar, float)
    if solver == "auto":
        solver = "numba" if arrays.n_island == 0 or arrays.island_dim.max() <= DENSE_MAX_DIM else "numpy"
    if solver not in ("numba", "numpy"):
        raise ValueError(f"solver must be 'auto', 'numba' or 'numpy', not {solver!r}")
    room = int(arrays.island_dim.max(initial=0)) if solver == "numba" else DENSE_MAX_DIM  # dense factors asked for
    if isinstance(init, LoadFlowState):
        state = init
    elif init == "flat":
        state = LoadFlowState.start(arrays, np.ones(arrays.n_bus), arrays.bus_va_set_degree, _initial_slack(arrays, p),
                                    dense_max_dim=room)
    elif init == "dc":
        va0 = arrays.va_init_degree if p_mw is None else dc_angles_degree(arrays, p)
        state = LoadFlowState.start(arrays, np.ones(arrays.n_bus), va0, _initial_slack(arrays, p), dense_max_dim=room)
    else:
        raise ValueError(f"init must be 'dc', 'flat' or a LoadFlowState, not {init!r}")
    if solver == "numba" and len(state.lu) < int((arrays.island_dim ** 2).sum()):
        raise ValueError(f"solver='numba' factorises dense: the state has no room for an island of "
                         f"{arrays.island_dim.max()} rows (LoadFlowState.start(dense_max_dim=...)); use solver='auto'")
    tol_pu = tolerance_mva / arrays.base_mva
    p_pu, q_pu = p / arrays.base_mva, q / arrays.base_mva
    n_isl = arrays.n_island
    if solver == "numba":
        ok = np.zeros(n_isl, bool)
        its = np.zeros(n_isl, np.int64)
        norms = np.zeros(n_isl)
        nfact = _nb.solve_snapshot(
            arrays.ybus_indptr, arrays.ybus_indices, arrays.ybus_data, state.v, state.vm_pu, state.va_rad,
            state.slack_pu, p_pu, q_pu, arrays.bus_slack_weight, arrays.island_bus_ptr, arrays.island_buses,
            arrays.island_dim, arrays.bus_va_col, arrays.bus_vm_col, arrays.bus_p_row, arrays.bus_q_row,
            arrays.island_slack_col, state.lu, state.lu_off, state.piv, state.piv_off, state.have_lu, tol_pu,
            int(max_iteration), 0.0, ok, its, norms)
        state.have_lu[:] = False  # full Newton leaves LU factors, not the inverse the chord method reuses
        converged, iterations = bool(ok.all()), int(its.max(initial=0))
        norm = float(norms.max(initial=0.0))
    else:
        res = _np_newton.newton(arrays, state.vm_pu, state.va_rad, state.slack_pu, p_pu, q_pu, tol_pu,
                                int(max_iteration), 0.0)
        state.v[:] = state.vm_pu * np.exp(1j * state.va_rad)
        converged, iterations, norm, nfact = res.converged, res.iterations, res.norm_pu, res.factorisations
        ok = np.full(n_isl, converged)
    slack_mw = _np_newton.slack_pickup_pu(arrays, state.v, state.slack_pu, p_pu) * arrays.base_mva
    slack_mw[~ok] = np.nan
    return PowerFlowResult(converged, iterations, norm * arrays.base_mva, solver, int(nfact), ok,
                           state.vm_pu.copy(), np.rad2deg(state.va_rad), slack_mw, arrays)


def runpf(net, *, distributed_slack: bool = False, calculate_voltage_angles: bool = True, init: str = "auto",
          max_iteration="auto", tolerance_mva: float = 1e-8, trafo_model: str = "t", trafo_loading: str = "current",
          algorithm: str = "nr", enforce_q_lims: bool = False, check_connectivity: bool = True,
          solver: str = "auto", **kwargs) -> PowerFlowResult:
    """Run an AC load flow with our Newton–Raphson kernel and fill ``net.res_*`` like ``pandapower.runpp``.

    Newton–Raphson in polar form (Tinney & Hart 1967) with, if ``distributed_slack``, the slack of
    each island shared by participation factors (the machines' ``slack_weight``, normalised per
    island, as pandapower's ``newtonpf`` does for one island) — several islands are solved at once.

    Parameters
    ----------
    net : pandapowerNet
    distributed_slack : bool
        Share each island's slack by ``slack_weight`` (ext_grid and gen). An island whose weights
        sum to zero keeps a single slack (pandapower would raise).
    calculate_voltage_angles : bool
        Consider ext_grid angles and transformer phase shifts (as ``runpp``).
    init : {"auto", "dc", "flat", "results"}
        Initial point; ``"auto"`` is ``"dc"`` with voltage angles, else ``"flat"``; ``"results"``
        starts from ``net.res_bus`` when it matches the net.
    max_iteration : int or "auto"
        Newton updates per island (``"auto"``: 20).
    tolerance_mva : float
        Largest power mismatch at convergence [MVA].
    trafo_model : {"t", "pi"}
    trafo_loading : {"current"}
        Only ``"current"`` (pandapower's default) is supported.
    algorithm : {"nr"}
    enforce_q_lims, check_connectivity
        Only pandapower's defaults (False, True) are supported.
    solver : {"auto", "numba", "numpy"}
        Dense numba kernels or the sparse scipy twin (``"auto"`` picks by size).
    **kwargs
        Other ``runpp`` options (``numba``, ``lightsim2grid``, ``voltage_depend_loads`` …) are accepted
        and ignored, so calls can be swapped.

    Returns
    -------
    PowerFlowResult
        Also sets ``net.converged``. On non-convergence the result tables hold NaN; nothing is raised.
    """
    if algorithm != "nr":
        raise NotImplementedError("runpf implements Newton-Raphson only (algorithm='nr')")
    if enforce_q_lims:
        raise NotImplementedError("runpf does not enforce reactive power limits")
    if not check_connectivity:
        raise NotImplementedError("runpf always checks connectivity")
    if trafo_loading != "current":
        raise NotImplementedError("runpf computes transformer loading from rated currents only")
    prev_res_bus = net.res_bus.copy() if init == "results" and "res_bus" in net else None
    arrays = compile_net(net, distributed_slack=distributed_slack, calculate_voltage_angles=calculate_voltage_angles,
                         trafo_model=trafo_model)
    max_it = 20 if max_iteration == "auto" else int(max_iteration)
    start: str | LoadFlowState
    if init == "auto":
        start = "dc" if calculate_voltage_angles else "flat"
    elif init == "results":
        start = "dc"
        if prev_res_bus is not None and len(prev_res_bus) == arrays.n_pp_bus and prev_res_bus.index.equals(net.bus.index) \
                and prev_res_bus.vm_pu.notna().any():
            vm0 = np.ones(arrays.n_bus)
            va0 = arrays.va_init_degree.copy()
            live = (arrays.pp_bus_internal >= 0) & prev_res_bus.vm_pu.notna().to_numpy()
            vm0[arrays.pp_bus_internal[live]] = prev_res_bus.vm_pu.to_numpy()[live]
            va0[arrays.pp_bus_internal[live]] = prev_res_bus.va_degree.to_numpy()[live]
            start = LoadFlowState.start(arrays, vm0, va0, _initial_slack(arrays, arrays.p_mw))
    elif init in ("dc", "flat"):
        start = init
    else:
        raise ValueError(f"unknown init {init!r}")
    result = solve(arrays, init=start, tolerance_mva=tolerance_mva, max_iteration=max_it, solver=solver)
    write_results(net, result)
    return result


def _frame(net, table: str, element: str, values: dict[str, np.ndarray]) -> None:
    import pandas as pd  # only for the result tables of a pandapower net (the engine never needs it)

    df = pd.DataFrame(index=net[element].index.copy(), columns=_RES_COLUMNS[table], dtype=np.float64)
    for col, val in values.items():
        df[col] = np.asarray(val, dtype=np.float64)
    net[table] = df


def _machine_powers(arrays: GridArrays, s_mva: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Active and reactive output of every machine, by pandapower's ``pfsoln`` rules [MW], [Mvar]."""
    n_m = len(arrays.machine_bus)
    bus = arrays.machine_bus
    # reactive power: each bus's total, shared by the machines' reactive ranges
    q_tot = s_mva.imag + arrays.bus_qd_mvar
    count = np.bincount(bus, minlength=arrays.n_bus)
    qmin_bus = np.bincount(bus, weights=arrays.machine_q_min_mvar, minlength=arrays.n_bus)
    qmax_bus = np.bincount(bus, weights=arrays.machine_q_max_mvar, minlength=arrays.n_bus)
    q = np.zeros(n_m)
    if n_m:
        eps = np.finfo(float).eps
        share = (q_tot[bus] - qmin_bus[bus]) / (qmax_bus[bus] - qmin_bus[bus] + eps)
        q = arrays.machine_q_min_mvar + share * (arrays.machine_q_max_mvar - arrays.machine_q_min_mvar)
        flat = qmin_bus[bus] == qmax_bus[bus]
        q[flat] = q_tot[bus[flat]] / count[bus[flat]]
    # active power: set points, except at buses whose power is solved (REF; weighted buses with distributed slack)
    p = arrays.machine_p_mw.copy()
    dist_isl = arrays.island_slack_col >= 0
    m_dist = dist_isl[arrays.bus_island[bus]] if n_m else np.zeros(0, bool)
    ref_m = arrays.machine_is_ref | (m_dist & (arrays.machine_slack_weight != 0))
    solved_bus = arrays.bus_kind == REF
    solved_bus |= dist_isl[arrays.bus_island] & (arrays.bus_slack_weight != 0)
    for b in np.flatnonzero(solved_bus):
        at_bus = np.flatnonzero(bus == b)
        if not len(at_bus):
            continue
        refs = at_bus[ref_m[at_bus]]
        if not len(refs):
            continue
        others = at_bus[~ref_m[at_bus]]
        p_ext = s_mva.real[b] + arrays.bus_pd_mw[b] - arrays.machine_p_mw[others].sum()
        w = arrays.machine_slack_weight[refs]
        if w.sum() > 0:
            p[refs] = arrays.machine_p_mw[refs] + (p_ext - arrays.machine_p_mw[refs].sum()) * w / w.sum()
        else:
            p[refs] = p_ext / len(refs)
    return p, q


def write_results(net, result: PowerFlowResult) -> None:
    """Fill ``net.res_*`` from a :class:`PowerFlowResult` (NaN everywhere if it did not converge)."""
    a = result.arrays
    net["converged"] = bool(result.converged)
    internal = a.pp_bus_internal
    live = internal >= 0
    idx = np.maximum(internal, 0)
    nan_pp = np.full(a.n_pp_bus, np.nan)
    if not result.converged:
        for table, element in (("res_bus", "bus"), ("res_line", "line"), ("res_trafo", "trafo"), ("res_gen", "gen"),
                               ("res_ext_grid", "ext_grid"), ("res_sgen", "sgen"), ("res_load", "load"),
                               ("res_storage", "storage"), ("res_shunt", "shunt")):
            _frame(net, table, element, {})
        return
    vm = result.vm_pu
    va = result.va_degree
    v = vm * np.exp(1j * np.deg2rad(va))
    s_mva = v * np.conj(a.ybus() @ v) * a.base_mva
    vm_pp = np.where(live, vm[idx], np.nan)
    va_pp = np.where(live, va[idx], np.nan)

    # PQ elements and shunts
    def pq(active, p, q):
        return np.where(active, p, 0.0), np.where(active, q, 0.0)

    load_p, load_q = pq(a.load_active, a.load_p_mw, a.load_q_mvar)
    sgen_p, sgen_q = pq(a.sgen_active, a.sgen_p_mw, a.sgen_q_mvar)
    sto_p, sto_q = pq(a.storage_active, a.storage_p_mw, a.storage_q_mvar)
    sh_vm = np.nan_to_num(vm_pp[a.shunt_pp_bus]) if len(a.shunt_pp_bus) else np.zeros(0)
    sh_p = np.where(a.shunt_active, sh_vm ** 2 * a.shunt_p_mw, 0.0)
    sh_q = np.where(a.shunt_active, sh_vm ** 2 * a.shunt_q_mvar, 0.0)
    _frame(net, "res_load", "load", {"p_mw": load_p, "q_mvar": load_q})
    _frame(net, "res_sgen", "sgen", {"p_mw": sgen_p, "q_mvar": sgen_q})
    _frame(net, "res_storage", "storage", {"p_mw": sto_p, "q_mvar": sto_q})
    _frame(net, "res_shunt", "shunt", {"p_mw": sh_p, "q_mvar": sh_q,
                                       "vm_pu": vm_pp[a.shunt_pp_bus] if len(a.shunt_pp_bus) else []})

    # machines
    m_p, m_q = _machine_powers(a, s_mva)
    gen_p, gen_q = np.zeros(len(net.gen)), np.zeros(len(net.gen))
    eg_p, eg_q = np.zeros(len(net.ext_grid)), np.zeros(len(net.ext_grid))
    g = a.machine_kind == MACHINE_GEN
    gen_p[a.machine_element[g]] = m_p[g]
    gen_q[a.machine_element[g]] = m_q[g]
    e = a.machine_kind == MACHINE_EXT_GRID
    eg_p[a.machine_element[e]] = m_p[e]
    eg_q[a.machine_element[e]] = m_q[e]
    # pandapower reports 0 (not NaN) for the voltage of a generator that is not in its table
    gen_vm = np.where(a.gen_active, vm_pp[a.gen_pp_bus], 0.0) if len(a.gen_pp_bus) else np.zeros(0)
    gen_va = np.where(a.gen_active, va_pp[a.gen_pp_bus], 0.0) if len(a.gen_pp_bus) else np.zeros(0)
    _frame(net, "res_gen", "gen", {"p_mw": gen_p, "q_mvar": gen_q, "va_degree": gen_va, "vm_pu": gen_vm})
    _frame(net, "res_ext_grid", "ext_grid", {"p_mw": eg_p, "q_mvar": eg_q})

    # buses: sum of element results (consumption positive)
    bus_p = np.zeros(a.n_pp_bus)
    bus_q = np.zeros(a.n_pp_bus)
    for pos, p, q, sign in ((a.load_pp_bus, load_p, load_q, 1), (a.storage_pp_bus, sto_p, sto_q, 1),
                            (a.shunt_pp_bus, sh_p, sh_q, 1), (a.sgen_pp_bus, sgen_p, sgen_q, -1),
                            (a.gen_pp_bus, gen_p, gen_q, -1), (a.ext_grid_pp_bus, eg_p, eg_q, -1)):
        if len(pos):
            np.add.at(bus_p, pos, sign * p)
            np.add.at(bus_q, pos, sign * q)
    in_service = net.bus.in_service.to_numpy(bool)
    bus_p[~live & ~in_service] = np.nan
    bus_q[~live & ~in_service] = np.nan
    _frame(net, "res_bus", "bus", {"vm_pu": vm_pp, "va_degree": va_pp, "p_mw": bus_p, "q_mvar": bus_q})

    # branches
    flows = _np_newton.branch_flows(a, v)
    f, t = a.branch_from, a.branch_to
    vm_f = np.where(f >= 0, vm[np.maximum(f, 0)], np.nan)
    va_f = np.where(f >= 0, va[np.maximum(f, 0)], np.nan)
    vm_t = np.where(t >= 0, vm[np.maximum(t, 0)], np.nan)
    va_t = np.where(t >= 0, va[np.maximum(t, 0)], np.nan)
    for kind, table, element, names in (
            (0, "res_line", "line", ("from", "to", "from_mw", "from_mvar", "to_mw", "to_mvar")),
            (1, "res_trafo", "trafo", ("hv", "lv", "hv_mw", "hv_mvar", "lv_mw", "lv_mvar"))):
        rows = a.line_branch if kind == 0 else a.trafo_branch
        if not len(rows):
            _frame(net, table, element, {})
            continue
        fl = {k: val[rows] for k, val in flows.items()}
        x, y = names[0], names[1]
        _frame(net, table, element, {
            f"p_{names[2]}": fl["p_from_mw"], f"q_{names[3]}": fl["q_from_mvar"],
            f"p_{names[4]}": fl["p_to_mw"], f"q_{names[5]}": fl["q_to_mvar"],
            "pl_mw": fl["p_from_mw"] + fl["p_to_mw"], "ql_mvar": fl["q_from_mvar"] + fl["q_to_mvar"],
            f"i_{x}_ka": fl["i_from_ka"], f"i_{y}_ka": fl["i_to_ka"],
            **({"i_ka": fl["i_ka"]} if kind == 0 else {}),
            f"vm_{x}_pu": vm_f[rows], f"va_{x}_degree": va_f[rows], f"vm_{y}_pu": vm_t[rows],
            f"va_{y}_degree": va_t[rows], "loading_percent": fl["loading_percent"],
        })
