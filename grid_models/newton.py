"""Numpy/scipy twin of the Newton–Raphson load flow (reference for :mod:`grid_models.newton_numba`).

Same formulation and unknowns as the numba kernels (see that module's docstring): polar Newton–Raphson
with one slack variable per distributed-slack island, the Jacobian built from the sparse polar
derivatives ``∂S/∂θ``, ``∂S/∂|V|`` (Tinney & Hart 1967; pypower's ``dSbus_dV``), solved over the
whole network at once as one sparse block-diagonal system (``scipy.sparse.linalg.splu``). Unknowns
and equations are numbered island by island (``island_offset + local index``), so each island's
block is exactly the dense Jacobian the numba kernel builds.

This path is also what :func:`grid_models.runpf` uses on networks too large for dense per-island
factors (``case1354pegase``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .compile import GridArrays

__all__ = ["Numbering", "numbering", "mismatch", "jacobian", "lu_factor", "lu_solve", "newton", "slack_pickup_pu",
           "branch_flows", "timeseries"]

DIVERGED_PU = 1e10


class Numbering(NamedTuple):
    """Global row and column numbers of the equations and unknowns (island-major)."""

    p_bus: np.ndarray  # buses with a P equation
    p_row: np.ndarray  # their global rows
    q_bus: np.ndarray
    q_row: np.ndarray
    va_bus: np.ndarray  # buses whose angle is unknown
    va_col: np.ndarray
    vm_bus: np.ndarray
    vm_col: np.ndarray
    slack_island: np.ndarray  # islands with a slack unknown
    slack_col: np.ndarray
    p_bus_island: np.ndarray  # island of each P-equation bus
    n: int


def numbering(arrays: GridArrays) -> Numbering:
    """Global numbering of :class:`GridArrays`' per-island index sets."""
    off = arrays.island_offset[arrays.bus_island]

    def pick(local):
        bus = np.flatnonzero(local >= 0)
        return bus, off[bus] + local[bus]

    p_bus, p_row = pick(arrays.bus_p_row)
    q_bus, q_row = pick(arrays.bus_q_row)
    va_bus, va_col = pick(arrays.bus_va_col)
    vm_bus, vm_col = pick(arrays.bus_vm_col)
    s_isl = np.flatnonzero(arrays.island_slack_col >= 0)
    s_col = arrays.island_offset[s_isl] + arrays.island_slack_col[s_isl]
    return Numbering(p_bus, p_row, q_bus, q_row, va_bus, va_col, vm_bus, vm_col, s_isl, s_col,
                     arrays.bus_island[p_bus], int(arrays.island_dim.sum()))


def mismatch(arrays: GridArrays, v: np.ndarray, slack_pu: np.ndarray, p_spec_pu: np.ndarray,
             q_spec_pu: np.ndarray, num: Numbering | None = None) -> np.ndarray:
    """Mismatch vector ``f(x)`` of all islands (global numbering) [pu].

    ``f_P,i = Re S_i − P_i^spec − w_i s_island``, ``f_Q,i = Im S_i − Q_i^spec``, ``S = V ∘ conj(Y V)``.
    """
    num = numbering(arrays) if num is None else num
    s = v * np.conj(arrays.ybus() @ v)
    f = np.zeros(num.n)
    f[num.p_row] = (s.real[num.p_bus] - p_spec_pu[num.p_bus]
                    - arrays.bus_slack_weight[num.p_bus] * slack_pu[num.p_bus_island])
    f[num.q_row] = s.imag[num.q_bus] - q_spec_pu[num.q_bus]
    return f


def jacobian(arrays: GridArrays, v: np.ndarray, num: Numbering | None = None) -> sp.csc_matrix:
    """Sparse Jacobian ``∂f/∂x`` (global numbering), polar form.

    ``∂S/∂θ = j diag(V) conj(diag(I) − Y diag(V))``, ``∂S/∂|V| = diag(V) conj(Y diag(V/|V|)) +
    conj(diag(I)) diag(V/|V|)``, ``∂f_P/∂s = −w``.
    """
    num = numbering(arrays) if num is None else num
    y = arrays.ybus()
    i_bus = y @ v
    vn = v / np.abs(v)
    dv = sp.diags(v)
    ds_dva = (1j * dv @ (sp.diags(np.conj(i_bus)) - np.conj(y) @ sp.diags(np.conj(v)))).tocoo()
    ds_dvm = (dv @ np.conj(y) @ sp.diags(np.conj(vn)) + sp.diags(np.conj(i_bus) * vn)).tocoo()
    n_bus = arrays.n_bus
    prow = np.full(n_bus, -1)
    prow[num.p_bus] = num.p_row
    qrow = np.full(n_bus, -1)
    qrow[num.q_bus] = num.q_row
    acol = np.full(n_bus, -1)
    acol[num.va_bus] = num.va_col
    mcol = np.full(n_bus, -1)
    mcol[num.vm_bus] = num.vm_col
    rows, cols, vals = [], [], []
    for mat, colmap in ((ds_dva, acol), (ds_dvm, mcol)):
        c = colmap[mat.col]
        for rowmap, part in ((prow, mat.data.real), (qrow, mat.data.imag)):
            r = rowmap[mat.row]
            ok = (r >= 0) & (c >= 0)
            rows.append(r[ok])
            cols.append(c[ok])
            vals.append(part[ok])
    # slack columns
    s_of_isl = np.full(arrays.n_island, -1)
    s_of_isl[num.slack_island] = num.slack_col
    sc = s_of_isl[num.p_bus_island]
    ok = sc >= 0
    rows.append(num.p_row[ok])
    cols.append(sc[ok])
    vals.append(-arrays.bus_slack_weight[num.p_bus[ok]])
    return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(num.n, num.n))


def lu_factor(a: np.ndarray):
    """Dense LU with partial pivoting (``scipy.linalg.lu_factor``); twin of the numba ``lu_factor``."""
    return sla.lu_factor(a)


def lu_solve(factors, b: np.ndarray) -> np.ndarray:
    """Solve with the factors of :func:`lu_factor`."""
    return sla.lu_solve(factors, b)


class NewtonResult(NamedTuple):
    """Outcome of :func:`newton` (the voltage arrays are updated in place as well)."""

    converged: bool
    iterations: int
    norm_pu: float
    factorisations: int
    lu: object


def newton(arrays: GridArrays, vm: np.ndarray, va: np.ndarray, slack_pu: np.ndarray, p_spec_pu: np.ndarray,
           q_spec_pu: np.ndarray, tol_pu: float, max_iter: int, refactor_ratio: float = 0.0, lu=None,
           num: Numbering | None = None) -> NewtonResult:
    """Newton–Raphson (polar form, distributed slack per island) on the whole network.

    ``vm`` [pu], ``va`` [rad] and ``slack_pu`` (per island) are updated in place. ``refactor_ratio``
    as in the numba kernel: 0 → full Newton; otherwise the sparse LU ``lu`` (``splu``) is reused
    while the mismatch falls by at least ``1/refactor_ratio`` per iteration (chord method).
    Convergence is returned as data; never raises on divergence or a singular Jacobian.

    Returns
    -------
    NewtonResult
    """
    num = numbering(arrays) if num is None else num
    if num.n == 0:
        return NewtonResult(True, 0, 0.0, 0, lu)
    v = vm * np.exp(1j * va)
    f = mismatch(arrays, v, slack_pu, p_spec_pu, q_spec_pu, num)
    norm = float(np.max(np.abs(f)))
    prev = np.inf
    it = nfact = 0
    while True:
        if norm < tol_pu:
            return NewtonResult(True, it, norm, nfact, lu)
        if it >= max_iter or not norm < DIVERGED_PU:
            return NewtonResult(False, it, norm if np.isfinite(norm) else np.inf, nfact, lu)
        if lu is None or refactor_ratio <= 0 or norm > refactor_ratio * prev:
            try:
                lu = spla.splu(jacobian(arrays, v, num))
            except RuntimeError:  # exactly singular
                return NewtonResult(False, it, norm, nfact, None)
            nfact += 1
        dx = lu.solve(f)
        va[num.va_bus] -= dx[num.va_col]
        vm[num.vm_bus] -= dx[num.vm_col]
        slack_pu[num.slack_island] -= dx[num.slack_col]
        v = vm * np.exp(1j * va)
        it += 1
        prev = norm
        f = mismatch(arrays, v, slack_pu, p_spec_pu, q_spec_pu, num)
        norm = float(np.max(np.abs(f)))
        if not np.isfinite(norm):
            norm = np.inf


def slack_pickup_pu(arrays: GridArrays, v: np.ndarray, slack_pu: np.ndarray, p_spec_pu: np.ndarray) -> np.ndarray:
    """Power each island's slack machines pick up beyond their set points [pu].

    The slack unknown ``s`` of distributed-slack islands; for single-slack islands
    ``Σ_ref (Re S_i − P_i^spec)`` over the buses without a P equation (twin of ``ref_pickup``).
    """
    s = v * np.conj(arrays.ybus() @ v)
    no_p = arrays.bus_p_row < 0
    ref = np.bincount(arrays.bus_island[no_p], weights=s.real[no_p] - p_spec_pu[no_p], minlength=arrays.n_island)
    return np.where(arrays.island_slack_col >= 0, slack_pu, ref)


def branch_flows(arrays: GridArrays, v: np.ndarray) -> dict[str, np.ndarray]:
    """Flows at both ends of every branch (twin of the numba ``branch_flows``).

    Returns
    -------
    dict
        ``p_from_mw``, ``q_from_mvar``, ``p_to_mw``, ``q_to_mvar``, ``i_from_ka``, ``i_to_ka``,
        ``i_ka`` (larger end), ``loading_percent``; zeros for branches with a dead end.
    """
    f, t = arrays.branch_from, arrays.branch_to
    live = (f >= 0) & (t >= 0)
    vf = np.where(live, v[np.maximum(f, 0)], 0)
    vt = np.where(live, v[np.maximum(t, 0)], 0)
    cf = arrays.branch_yff * vf + arrays.branch_yft * vt
    ct = arrays.branch_ytf * vf + arrays.branch_ytt * vt
    sf = vf * np.conj(cf) * arrays.base_mva
    st = vt * np.conj(ct) * arrays.base_mva
    kv_f = arrays.bus_base_kv[np.maximum(f, 0)]
    kv_t = arrays.bus_base_kv[np.maximum(t, 0)]
    i_f = np.where(live, np.abs(cf) * arrays.base_mva / (np.sqrt(3) * kv_f), 0.0)
    i_t = np.where(live, np.abs(ct) * arrays.base_mva / (np.sqrt(3) * kv_t), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        loading = 100 * np.maximum(_ratio(i_f, arrays.branch_i_rated_from_ka), _ratio(i_t, arrays.branch_i_rated_to_ka))
    return {"p_from_mw": sf.real, "q_from_mvar": sf.imag, "p_to_mw": st.real, "q_to_mvar": st.imag,
            "i_from_ka": i_f, "i_to_ka": i_t, "i_ka": np.maximum(i_f, i_t), "loading_percent": loading}


def _ratio(i, rated):
    out = np.full_like(i, np.inf)
    np.divide(i, rated, out=out, where=rated != 0)
    out[(i == 0) & (rated == 0)] = 0.0
    return out


def timeseries(arrays: GridArrays, vm: np.ndarray, va: np.ndarray, slack_pu: np.ndarray, p_pp_pu: np.ndarray,
               q_pp_pu: np.ndarray, tol_pu: float, max_iter: int, refactor_ratio: float,
               with_branches: bool = True) -> dict[str, np.ndarray]:
    """Twin of the numba ``timeseries`` kernel: step by step, warm-started, chord Newton.

    Solves all islands together (one sparse LU for the block-diagonal Jacobian); a step counts as
    converged when every island is (a failed step is NaN everywhere, where the kernel blanks only
    the islands that failed). Arguments as the numba kernel's, in per unit; ``vm``, ``va``,
    ``slack_pu`` are updated in place. Returns a dict of the kernel's outputs.
    """
    num = numbering(arrays)
    n_steps, n_pp = p_pp_pu.shape
    internal = arrays.pp_bus_internal
    live = internal >= 0
    agg = sp.csr_matrix((np.ones(live.sum()), (np.flatnonzero(live), internal[live])), shape=(n_pp, arrays.n_bus))
    p_int = np.asarray(p_pp_pu @ agg)
    q_int = np.asarray(q_pp_pu @ agg)
    out = {k: np.full((n_steps, n_pp), np.nan) for k in ("vm_pu", "va_degree")}
    out["converged"] = np.zeros(n_steps, bool)
    out["iterations"] = np.zeros(n_steps, np.int64)
    out["max_mismatch_mva"] = np.zeros(n_steps)
    out["slack_mw"] = np.full((n_steps, arrays.n_island), np.nan)
    keys = ("p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar", "i_ka", "loading_percent")
    if with_branches:
        for k in keys:
            out[k] = np.full((n_steps, arrays.n_branch), np.nan)
    lu = None
    nfact = 0
    for k in range(n_steps):
        vm0, va0, s0 = vm.copy(), va.copy(), slack_pu.copy()
        res = newton(arrays, vm, va, slack_pu, p_int[k], q_int[k], tol_pu, max_iter, refactor_ratio, lu, num)
        lu = res.lu
        nfact += res.factorisations
        out["converged"][k] = res.converged
        out["iterations"][k] = res.iterations
        out["max_mismatch_mva"][k] = res.norm_pu * arrays.base_mva
        if not res.converged:
            vm[:], va[:], slack_pu[:] = vm0, va0, s0
            lu = None
            continue
        out["vm_pu"][k, live] = vm[internal[live]]
        out["va_degree"][k, live] = np.rad2deg(va[internal[live]])
        out["slack_mw"][k] = slack_pickup_pu(arrays, vm * np.exp(1j * va), slack_pu, p_int[k]) * arrays.base_mva
        if with_branches:
            flows = branch_flows(arrays, vm * np.exp(1j * va))
            for key in keys:
                out[key][k] = flows[key]
    out["factorisations"] = nfact
    return out
