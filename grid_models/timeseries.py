"""Time series of AC load flows: T operating points solved in one numba call.

:func:`solve_timeseries` takes the net injection of every pandapower bus at every step (a ``T × buses``
matrix, built from element profiles by :func:`bus_injections`) and solves them in order inside one
compiled call (:func:`grid_models.newton_numba.timeseries`): each step starts from the previous
step's voltages and slack, and the chord Newton keeps each island's LU factors for as long as the
mismatch keeps falling fast (refactorising when it slows; Tinney & Hart 1967 for the Newton–Raphson
polar form, distributed slack by participation factors as pandapower's ``newtonpf``). Small islands
(a campus's, up to ``SPARSE_MIN_DIM`` Jacobian rows) keep a dense inverse; larger ones a sparse LU
whose ordering and pivots are analysed once per compiled net (:mod:`grid_models.sparse_lu`; every
state of that net gets its own numeric factors), so the cost per step grows with the factors' fill
rather than with the square of the network. The returned
:class:`LoadFlowState` continues the next chunk where this one stopped.

The engine calls it once per chunk of simulated seconds; a scipy twin
(:func:`grid_models.newton.timeseries`) serves the tests.
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from . import newton as _np_newton
from . import newton_numba as _nb
from .compile import GridArrays
from .powerflow import LoadFlowState, dense_lu_sizes, solve
from .sparse_lu import SPARSE_MIN_DIM, SparseLU, analyse, empty, sparse_islands

__all__ = ["TimeSeriesResult", "bus_injections", "solve_timeseries"]


class TimeSeriesResult(NamedTuple):
    """Outcome of :func:`solve_timeseries`; arrays have one row per step.

    Attributes
    ----------
    vm_pu, va_degree : ndarray (n_steps, n_pp_bus)
        Voltage per pandapower bus (``net.bus`` row order) [pu], [degree]; NaN if not energised or
        if the bus's island did not converge at that step.
    converged : ndarray(bool, n_steps)
    iterations : ndarray(int64, n_steps)
        Largest number of Newton updates among the islands.
    max_mismatch_mva : ndarray(n_steps)
        Largest final power mismatch [MVA].
    slack_mw : ndarray (n_steps, n_island)
        Power each island's slack machines pick up beyond their set points [MW]: in a
        distributed-slack island the amount shared by participation factors (machine ``g`` of the
        island produces its set point plus ``w_g · slack_mw``), in a single-slack island the extra
        injection of its REF bus (an ext_grid's import, a lone slack unit's pick-up); NaN where the
        island did not converge.
    p_from_mw, q_from_mvar, p_to_mw, q_to_mvar, i_ka, loading_percent : ndarray (n_steps, n_branch) or None
        Branch flows (lines, then trafos; ``arrays.line_branch`` / ``trafo_branch`` map rows), at the
        from (hv) and to (lv) ends [MW], [Mvar], larger-end current [kA], loading [%].
    factorisations : int
        Jacobian factorisations over the whole series.
    state : LoadFlowState
        Where the series ended: pass it to the next call to continue.
    """

    vm_pu: np.ndarray
    va_degree: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    max_mismatch_mva: np.ndarray
    slack_mw: np.ndarray
    p_from_mw: np.ndarray | None
    q_from_mvar: np.ndarray | None
    p_to_mw: np.ndarray | None
    q_to_mvar: np.ndarray | None
    i_ka: np.ndarray | None
    loading_percent: np.ndarray | None
    factorisations: int
    state: LoadFlowState


def _add_profile(out, values, nominal, pos, active, sign, kernel):
    """Add one element table's profile (or its nominal values) to the bus injections ``out``."""
    if values is None or np.ndim(values) == 1:
        const = nominal if values is None else np.asarray(values, dtype=float)
        if len(const) != len(nominal):
            raise ValueError(f"expected {len(nominal)} values, got {len(const)}")
        per_bus = np.zeros(out.shape[1])
        np.add.at(per_bus, pos[active], sign * const[active])
        out += per_bus[None, :]
        return
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.shape != (out.shape[0], len(nominal)):
        raise ValueError(f"expected a ({out.shape[0]}, {len(nominal)}) profile, got {values.shape}")
    if kernel:
        _nb.add_element_columns(values, pos, active, float(sign), out)
    else:  # numpy twin: element -> bus incidence matrix
        agg = sp.csr_matrix((np.where(active, sign, 0.0), (np.arange(len(pos)), pos)), shape=(len(pos), out.shape[1]))
        out += np.asarray((agg.T @ values.T).T)


def bus_injections(arrays: GridArrays, *, load_p_mw=None, load_q_mvar=None, sgen_p_mw=None, sgen_q_mvar=None,
                   storage_p_mw=None, storage_q_mvar=None, gen_p_mw=None, n_steps: int | None = None,
                   kernel: bool = True, out: tuple[np.ndarray, np.ndarray] | None = None):
    """Net injection per pandapower bus from element profiles.

    Each argument is a profile of one element table, shape ``(n_steps, n_element)`` (or
    ``(n_element,)`` for a constant), in the table's row order and in actual MW/Mvar (pandapower's
    ``p_mw · scaling``); ``None`` keeps the net's values. Elements that are out of service or on a
    dead bus contribute nothing. Generators contribute active power only (their reactive power is
    solved); ext_grids nothing (they are slack).

    Parameters
    ----------
    arrays : GridArrays
    load_p_mw, load_q_mvar, sgen_p_mw, sgen_q_mvar, storage_p_mw, storage_q_mvar, gen_p_mw : array_like, optional
        Consumption of loads and storage, production of sgens and gens [MW], [Mvar].
    n_steps : int, optional
        Number of steps when every profile is constant (default 1).
    kernel : bool
        Sum with the numba kernel (``add_element_columns``) or its numpy twin (sparse incidence).
    out : (ndarray, ndarray), optional
        Arrays of the result's shape to overwrite instead of allocating new ones (a caller that builds
        chunk after chunk saves the first-touch cost of fresh memory); otherwise ignored.

    Returns
    -------
    p_mw, q_mvar : ndarray (n_steps, n_pp_bus)
        Generation − consumption at each bus of ``net.bus`` [MW], [Mvar].
    """
    given = [x for x in (load_p_mw, load_q_mvar, sgen_p_mw, sgen_q_mvar, storage_p_mw, storage_q_mvar, gen_p_mw)
             if x is not None and np.ndim(x) == 2]
    if n_steps is None:
        n_steps = len(given[0]) if given else 1
    n_pp = arrays.n_pp_bus
    if out is not None and all(x.shape == (n_steps, n_pp) and x.dtype == np.float64 and x.flags.c_contiguous
                               for x in out):
        p, q = out
        p.fill(0.0)
        q.fill(0.0)
    else:
        p = np.zeros((n_steps, n_pp))
        q = np.zeros((n_steps, n_pp))
    parts = (
        (arrays.load_pp_bus, arrays.load_active, -1.0, (load_p_mw, arrays.load_p_mw), (load_q_mvar, arrays.load_q_mvar)),
        (arrays.storage_pp_bus, arrays.storage_active, -1.0, (storage_p_mw, arrays.storage_p_mw),
         (storage_q_mvar, arrays.storage_q_mvar)),
        (arrays.sgen_pp_bus, arrays.sgen_active, 1.0, (sgen_p_mw, arrays.sgen_p_mw), (sgen_q_mvar, arrays.sgen_q_mvar)),
        (arrays.gen_pp_bus, arrays.gen_active, 1.0, (gen_p_mw, arrays.gen_p_mw), None),
    )
    for pos, active, sign, p_prof, q_prof in parts:
        if not len(pos):
            continue
        _add_profile(p, p_prof[0], p_prof[1], pos, active, sign, kernel)
        if q_prof is not None:
            _add_profile(q, q_prof[0], q_prof[1], pos, active, sign, kernel)
    return p, q


#: The branch-flow fields of :class:`TimeSeriesResult`, in order.
_FLOWS = ("p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar", "i_ka", "loading_percent")


def _reusable(out: TimeSeriesResult, n_steps, n_pp, n_br, n_isl, with_flow, dtype) -> bool:
    """Whether ``out``'s arrays have the shapes and dtypes of the requested result."""
    if out.vm_pu.shape != (n_steps, n_pp) or out.vm_pu.dtype != dtype or out.slack_mw.shape != (n_steps, n_isl):
        return False
    for k, want in zip(_FLOWS, with_flow):
        x = getattr(out, k)
        if want != (x is not None) or (want and (x.shape != (n_steps, n_br) or x.dtype != dtype)):
            return False
    return True


def _to_internal(arrays: GridArrays, p_pp: np.ndarray) -> np.ndarray:
    out = np.zeros(arrays.n_bus)
    live = arrays.pp_bus_internal >= 0
    np.add.at(out, arrays.pp_bus_internal[live], p_pp[live])
    return out


class _Plan:
    """What :func:`solve_timeseries` derives from a compiled net alone, kept once per net (topology).

    ``sparse``: which islands are factorised sparse; ``analysis``: their ordering, pivot sequence and
    factor patterns (:func:`grid_models.sparse_lu.analyse`, at the voltages of the first state that
    needed them; every later state of the net gets a copy with its own numeric factors, as KLU's
    ``klu_analyze`` once then ``klu_refactor``); ``kv_f``, ``kv_t``: base voltage at each branch end.
    """

    __slots__ = ("sparse", "analysis", "kv_f", "kv_t", "dense_room", "empty")

    def __init__(self, arrays: GridArrays, sparse_min_dim: int):
        self.sparse = sparse_islands(arrays, sparse_min_dim)
        self.analysis: SparseLU | None = None
        self.empty = empty(arrays)
        kv = arrays.bus_base_kv
        self.kv_f = np.where(arrays.branch_from >= 0, kv[np.maximum(arrays.branch_from, 0)], 1.0)
        self.kv_t = np.where(arrays.branch_to >= 0, kv[np.maximum(arrays.branch_to, 0)], 1.0)
        self.dense_room = int(dense_lu_sizes(arrays).sum())


#: the fields of GridArrays a plan depends on (compared by identity: compiled arrays are never modified in place)
_PLAN_FIELDS = ("ybus_data", "ybus_indices", "ybus_indptr", "bus_p_row", "bus_q_row", "bus_va_col", "bus_vm_col",
                "bus_slack_weight", "island_slack_col", "island_bus_ptr", "island_buses", "island_dim",
                "island_offset", "bus_base_kv", "branch_from", "branch_to")
_PLANS: dict[tuple[int, int], tuple[tuple, _Plan]] = {}


def _plan(arrays: GridArrays, sparse_min_dim: int) -> _Plan:
    """The cached :class:`_Plan` of ``arrays`` (a new one if any field it depends on is another object)."""
    key = (id(arrays.ybus_indices), int(sparse_min_dim))
    hit = _PLANS.get(key)
    if hit is not None and all(ref() is getattr(arrays, name) for name, ref in hit[0]):
        return hit[1]
    plan = _Plan(arrays, sparse_min_dim)
    _PLANS[key] = (tuple((name, weakref.ref(getattr(arrays, name))) for name in _PLAN_FIELDS), plan)
    weakref.finalize(arrays.ybus_indices, _PLANS.pop, key, None)
    return plan


def solve_timeseries(arrays: GridArrays, p_mw, q_mvar, *, state: LoadFlowState | None = None,
                     tolerance_mva: float = 1e-8, max_iteration: int = 20, refactor_ratio: float = 0.1,
                     branch_flows: bool | str = True, dtype=np.float64, solver: str = "numba",
                     out: TimeSeriesResult | None = None, sparse_min_dim: int = SPARSE_MIN_DIM) -> TimeSeriesResult:
    """Solve a sequence of operating points, warm-started, reusing factorisations (chord Newton).

    Parameters
    ----------
    arrays : GridArrays
        From :func:`grid_models.compile.compile_net` (usually with ``distributed_slack=True``).
    p_mw, q_mvar : array_like (n_steps, n_pp_bus)
        Net injection (generation − consumption) at each bus of ``net.bus`` [MW], [Mvar], e.g. from
        :func:`bus_injections`. Reactive injection at PV/REF buses is solved, not imposed; active
        injection at REF buses of single-slack islands likewise.
    state : LoadFlowState, optional
        Where to start (the ``state`` of a previous result; updated in place). Default: a full
        Newton solve of the first step from a DC start.
    tolerance_mva : float
        Largest power mismatch at convergence [MVA].
    max_iteration : int
        Newton updates per island and step; a diverging step stops there and is reported.
    refactor_ratio : float
        Refactorise an island's Jacobian when an iteration reduces its mismatch by less than this
        factor (0: every iteration, i.e. full Newton).
    branch_flows : bool or "loading"
        Also compute branch flows and loading at every step. ``"loading"``: only ``p_from_mw``,
        ``p_to_mw`` and ``loading_percent`` (equal to the full mode's to round-off; losses are
        ``p_from_mw + p_to_mw``), the other three are None — cheaper when that is all the caller needs.
    dtype : numpy dtype
        Of the voltage and flow outputs (``np.float32`` halves their memory).
    solver : {"numba", "numpy"}
        The compiled kernel or its scipy twin (slow; for tests).
    out : TimeSeriesResult, optional
        A previous result of the same number of steps, ``branch_flows`` mode and ``dtype``: its
        arrays are overwritten instead of new ones allocated (numba solver; a caller that solves
        chunk after chunk saves the first-touch cost of fresh memory). Its previous contents are lost.
    sparse_min_dim : int
        Islands whose Jacobian has more rows than this are factorised sparse (:mod:`grid_models.sparse_lu`:
        ordering and pivots analysed once per state, numeric refactorisation and triangular solves in
        numba), smaller ones dense (inverse applied as a matrix–vector product). The default is the
        measured crossover; a state keeps its analysis while this split stays the same.

    Returns
    -------
    TimeSeriesResult
    """
    if isinstance(branch_flows, str):
        if branch_flows != "loading":
            raise ValueError(f"branch_flows must be True, False or 'loading', not {branch_flows!r}")
        mode = 2
    else:
        mode = 1 if branch_flows else 0
    lean = ("q_from_mvar", "q_to_mvar", "i_ka") if mode == 2 else ()
    wanted = [bool(mode) and k not in lean for k in _FLOWS]
    p = np.ascontiguousarray(np.atleast_2d(np.asarray(p_mw, dtype=np.float64)))  # [MW]: per unit in the kernel
    q = np.ascontiguousarray(np.atleast_2d(np.asarray(q_mvar, dtype=np.float64)))
    if p.shape != q.shape or p.shape[1] != arrays.n_pp_bus:
        raise ValueError(f"p_mw and q_mvar must both be (n_steps, {arrays.n_pp_bus}); got {p.shape}, {q.shape}")
    n_steps = p.shape[0]
    if state is None:
        first = solve(arrays, _to_internal(arrays, p[0]), _to_internal(arrays, q[0]),
                      init="dc", tolerance_mva=tolerance_mva, max_iteration=max(max_iteration, 20),
                      solver="auto" if solver == "numba" else "numpy")
        if first.converged:
            slack0 = np.where(arrays.island_slack_col >= 0, np.nan_to_num(first.slack_mw), 0.0) / arrays.base_mva
            state = LoadFlowState.start(arrays, first.vm_pu, first.va_degree, slack0)
        else:  # the first step itself fails: start from the DC point and let the series report it
            state = LoadFlowState.start(arrays, np.ones(arrays.n_bus), arrays.va_init_degree)
    plan = _plan(arrays, sparse_min_dim) if solver == "numba" else None
    if state is not None and (state.vm_pu.shape != (arrays.n_bus,) or state.slack_pu.shape != (arrays.n_island,)
                              or len(state.lu) < (plan.dense_room if plan else int(dense_lu_sizes(arrays).sum()))):
        raise ValueError("state does not belong to these arrays (recompiled net?): start a new one with state=None")
    tol_pu = tolerance_mva / arrays.base_mva
    n_pp, n_br, n_isl = arrays.n_pp_bus, arrays.n_branch, arrays.n_island

    if solver == "numpy":
        out = _np_newton.timeseries(arrays, state.vm_pu, state.va_rad, state.slack_pu, p / arrays.base_mva,
                                    q / arrays.base_mva, tol_pu, max_iteration,
                                    refactor_ratio, branch_flows)
        state.v[:] = state.vm_pu * np.exp(1j * state.va_rad)
        state.have_lu[:] = False
        flows = [out[k].astype(dtype) if w else None for k, w in zip(_FLOWS, wanted)]
        return TimeSeriesResult(out["vm_pu"].astype(dtype), out["va_degree"].astype(dtype), out["converged"],
                                out["iterations"], out["max_mismatch_mva"], out["slack_mw"], *flows,
                                int(out["factorisations"]), state)
    if solver != "numba":
        raise ValueError(f"solver must be 'numba' or 'numpy', not {solver!r}")

    if out is not None and _reusable(out, n_steps, n_pp, n_br, n_isl, wanted, dtype):
        vm_out, va_out, conv, iters, norms, slack = out.vm_pu, out.va_degree, out.converged, out.iterations, \
            out.max_mismatch_mva, out.slack_mw
        flows = [getattr(out, k) if w else np.empty((0, n_br), dtype) for k, w in zip(_FLOWS, wanted)]
    else:
        vm_out = np.empty((n_steps, n_pp), dtype)
        va_out = np.empty((n_steps, n_pp), dtype)
        conv = np.zeros(n_steps, np.bool_)
        iters = np.zeros(n_steps, np.int64)
        norms = np.zeros(n_steps)
        slack = np.empty((n_steps, n_isl))
        flows = [np.empty((n_steps, n_br) if w else (0, n_br), dtype) for w in wanted]
    sparse = plan.sparse
    if state.sparse is None or not np.array_equal(state.sparse.is_sparse, sparse):
        if not sparse.any():
            state.sparse = plan.empty
        else:
            if plan.analysis is None:
                plan.analysis = analyse(arrays, state.v, sparse)
            state.sparse = plan.analysis.copy()
        state.have_lu[sparse] = False
    kv_f, kv_t = plan.kv_f, plan.kv_t
    nfact = _nb.timeseries(
        arrays.ybus_indptr, arrays.ybus_indices, arrays.ybus_data, state.v, state.vm_pu, state.va_rad, state.slack_pu,
        arrays.bus_slack_weight, arrays.bus_island, arrays.island_bus_ptr, arrays.island_buses, arrays.island_dim,
        arrays.bus_va_col, arrays.bus_vm_col, arrays.bus_p_row, arrays.bus_q_row, arrays.island_slack_col, state.lu,
        state.lu_off, state.piv, state.piv_off, state.have_lu, arrays.pp_bus_internal, p, q, tol_pu,
        int(max_iteration), float(refactor_ratio), arrays.base_mva, arrays.branch_from, arrays.branch_to,
        arrays.branch_yff, arrays.branch_yft, arrays.branch_ytf, arrays.branch_ytt, kv_f, kv_t,
        arrays.branch_i_rated_from_ka, arrays.branch_i_rated_to_ka, mode, vm_out, va_out, conv, iters,
        norms, slack, *flows, tuple(state.sparse))
    flows = [x if w else None for x, w in zip(flows, wanted)]
    return TimeSeriesResult(vm_out, va_out, conv, iters, norms, slack, *flows, int(nfact), state)
