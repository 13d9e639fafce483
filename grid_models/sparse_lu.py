"""Sparse LU of an island's Jacobian for the time-series load flow: analysed once, refactorised in numba.

A campus modelled down to its unit substations, or a transmission case, has islands whose Jacobian
has thousands of rows; the dense factors of :mod:`grid_models.newton_numba` then cost ``O(n³)``
per factorisation and ``O(n²)`` per chord step. Above :data:`SPARSE_MIN_DIM` rows the time series
(:func:`grid_models.timeseries.solve_timeseries`) therefore works as KLU's ``klu_analyze`` /
``klu_factor`` / ``klu_refactor`` do (Davis & Palamadai Natarajan, "Algorithm 907: KLU", ACM TOMS
37(3), 2010):

* **analysis, once per topology** (:func:`analyse`, Python): the Jacobian's sparsity pattern follows
  from Ybus and the bus types alone; one factorisation with scipy's SuperLU (fill-reducing ordering,
  threshold pivoting) at the starting point fixes the row and column permutations, and the patterns of
  ``L`` and ``U`` for that pivot sequence follow from the pattern alone (every fill-in, whatever the
  values). Where each Ybus entry's four Jacobian terms land in the permuted
  matrix is tabulated, so the Jacobian is filled straight into its factorisation order;
* **numeric refactorisation** (:func:`refactor`, numba): a left-looking (Gilbert–Peierls) LU that
  keeps the pivot sequence and the patterns — no search, no allocation — called only when the chord
  Newton asks for fresh factors;
* **solves** (:func:`solve`, numba): a forward and a back substitution over the factors' *rows*
  (each refactorisation copies its column-ordered factors into row order once, scaled so that both
  triangles have a unit diagonal; the chord Newton solves several times per factorisation). Each
  substitution is one flat loop over the entries, ``y[row[k]] -= val[k] · y[col[k]]``: no inner loop
  whose length changes from row to row, whose mispredicted exits cost more than the arithmetic
  (a quarter of the solve's time on a 467-row campus Jacobian).

Keeping the pivot sequence of the first factorisation is what KLU's refactorisation (and
lightsim2grid's Newton with it) does; a pivot that turns zero or non-finite is reported as a singular
Jacobian (the Newton step then fails like a dense one would, and the time series marks the step).

All arrays of the sparse islands of one net are concatenated (:class:`SparseLU`); island ``i`` has its
column pointers at ``col_off[i] … col_off[i] + dim`` and its permutations at ``perm_off[i]``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numba import njit

from .compile import GridArrays

__all__ = ["SPARSE_MIN_DIM", "DENSE_MAX_DIM", "SparseLU", "sparse_islands", "analyse", "empty", "jacobian_fill", "refactor",
           "solve", "solve_factors"]

#: islands whose Jacobian has more rows than this are factorised sparse in the time series (measured
#: crossover: see benchmarks/scaling.py; the campus islands, 1–30 rows, stay dense)
SPARSE_MIN_DIM = 64
#: no dense factors above this many rows (``LoadFlowState.lu`` has no room for them; ``solve(solver="auto")``
#: uses the sparse scipy path): such islands are always sparse in the time series
DENSE_MAX_DIM = 400


class SparseLU(NamedTuple):
    """Pattern, permutations and factors of the sparse islands (arrays concatenated over islands).

    Attributes
    ----------
    is_sparse : ndarray(bool, n_island)
    pos_pa, pos_qa, pos_pm, pos_qm : ndarray(int64, nnz(Ybus))
        For Ybus entry ``n`` (row ``i``, column ``j``): where ``∂P_i/∂θ_j``, ``∂Q_i/∂θ_j``,
        ``∂P_i/∂|V_j|``, ``∂Q_i/∂|V_j|`` go in ``a_val`` (-1: no such row or column).
    dpos_pa, dpos_qa, dpos_pm, dpos_qm : ndarray(int64, n_bus)
        Where the diagonal terms of bus ``i`` go.
    spos : ndarray(int64, n_bus)
        Where ``∂P_i/∂s = −w_i`` goes (-1 if ``w_i = 0`` or no slack column).
    col_off : ndarray(int64, n_island)
        Start of the island's ``dim + 1`` column pointers in ``a_ptr``, ``l_ptr``, ``u_ptr``.
    perm_off : ndarray(int64, n_island)
        Start of the island's permutations in ``row_perm``, ``col_perm``.
    a_ptr, a_idx, a_val
        The permuted Jacobian ``A[r, c] = J[row_perm[r], col_perm[c]]``, CSC (pointers global into ``a_idx``).
    l_ptr, l_idx, l_val
        Strictly lower part of ``L`` (unit diagonal implied), CSC, rows ascending.
    u_ptr, u_idx, u_val
        ``U``, CSC, rows ascending (the diagonal last in each column, stored as its inverse).
    row_perm, col_perm : ndarray(int64)
        Island-local Jacobian row / column of each row / column of ``A``.
    lr_ptr, lr_idx, lr_val, lr_src
        The strictly lower part of ``L`` by rows (CSR, columns ascending; pointers at ``col_off``,
        global into ``lr_idx``); ``lr_src[k]``: the position in ``l_val`` of row entry ``k``. The
        values are those of ``D⁻¹ L D`` (``D = diag(U)``), the factor that acts on ``D⁻¹ y``.
    ur_ptr, ur_idx, ur_val, ur_src
        The strictly upper part of ``U`` by rows, likewise (``ur_src`` into ``u_val``); the values
        are those of ``D⁻¹ U`` (unit diagonal).
    u_dinv : ndarray(float64)
        ``1 / U[j, j]`` of each column, island ``i`` at ``perm_off[i]``.
    lr_row, ur_row : ndarray(int64)
        The island-local row of each entry of ``lr_idx``, ``ur_idx`` (the solves' flat loops).
    pos_va, pos_vm : ndarray(int64, n_bus)
        Where the solution of :func:`solve_permuted` holds the update of bus ``i``'s angle / magnitude
        (its Jacobian column's place in ``A``; -1 if none or not in a sparse island).
    pos_slack : ndarray(int64, n_island)
        Likewise for the island's slack column.
    """

    is_sparse: np.ndarray
    pos_pa: np.ndarray
    pos_qa: np.ndarray
    pos_pm: np.ndarray
    pos_qm: np.ndarray
    dpos_pa: np.ndarray
    dpos_qa: np.ndarray
    dpos_pm: np.ndarray
    dpos_qm: np.ndarray
    spos: np.ndarray
    col_off: np.ndarray
    perm_off: np.ndarray
    a_ptr: np.ndarray
    a_idx: np.ndarray
    a_val: np.ndarray
    l_ptr: np.ndarray
    l_idx: np.ndarray
    l_val: np.ndarray
    u_ptr: np.ndarray
    u_idx: np.ndarray
    u_val: np.ndarray
    row_perm: np.ndarray
    col_perm: np.ndarray
    lr_ptr: np.ndarray
    lr_idx: np.ndarray
    lr_val: np.ndarray
    lr_src: np.ndarray
    ur_ptr: np.ndarray
    ur_idx: np.ndarray
    ur_val: np.ndarray
    ur_src: np.ndarray
    u_dinv: np.ndarray
    lr_row: np.ndarray
    ur_row: np.ndarray
    pos_va: np.ndarray
    pos_vm: np.ndarray
    pos_slack: np.ndarray

    def copy(self) -> "SparseLU":
        """Independent numeric arrays (the pattern arrays are shared: they never change)."""
        return self._replace(a_val=self.a_val.copy(), l_val=self.l_val.copy(), u_val=self.u_val.copy(),
                             lr_val=self.lr_val.copy(), ur_val=self.ur_val.copy(), u_dinv=self.u_dinv.copy())


def sparse_islands(arrays: GridArrays, min_dim: int = SPARSE_MIN_DIM) -> np.ndarray:
    """Which islands the time series factorises sparse (more than ``min_dim``, or ``DENSE_MAX_DIM``, rows)."""
    return np.asarray((arrays.island_dim > min_dim) | (arrays.island_dim > DENSE_MAX_DIM), dtype=bool)


def _none(n: int) -> np.ndarray:
    return np.full(n, -1, np.int64)


def empty(arrays: GridArrays) -> SparseLU:
    """A :class:`SparseLU` with no sparse island (same array types, so the kernel compiles once)."""
    z_i, z_f = np.zeros(1, np.int64), np.zeros(1)
    nnz, n_bus, n_isl = len(arrays.ybus_data), arrays.n_bus, arrays.n_island
    return SparseLU(np.zeros(n_isl, bool), _none(nnz), _none(nnz), _none(nnz), _none(nnz), _none(n_bus), _none(n_bus),
                    _none(n_bus), _none(n_bus), _none(n_bus), np.zeros(n_isl, np.int64), np.zeros(n_isl, np.int64),
                    z_i, z_i, z_f, z_i, z_i, z_f, z_i, z_i, z_f, z_i, z_i, z_i, z_i, z_f, z_i, z_i, z_i, z_f, z_i, z_f,
                    z_i, z_i, _none(n_bus), _none(n_bus), _none(n_isl))


def _island_entries(arrays: GridArrays, isl: int):
    """Jacobian entries of one island: every (row, col) a term can reach, and who writes where.

    Returns ``rows, cols`` of the contributions and, per contribution, (kind, index): kind 0–3 the
    four terms of Ybus entry ``index``, 4–7 the four diagonal terms of bus ``index``, 8 the slack
    term of bus ``index``.
    """
    buses = arrays.island_buses[arrays.island_bus_ptr[isl]:arrays.island_bus_ptr[isl + 1]]
    yp, yj = arrays.ybus_indptr, arrays.ybus_indices
    counts = yp[buses + 1] - yp[buses]
    nz = np.concatenate([np.arange(yp[b], yp[b + 1]) for b in buses]) if len(buses) else np.zeros(0, np.int64)
    i = np.repeat(buses, counts)
    j = yj[nz]
    pr, qr, ac, mc = arrays.bus_p_row, arrays.bus_q_row, arrays.bus_va_col, arrays.bus_vm_col
    rows, cols, kinds, idx = [], [], [], []
    for kind, (rmap, cmap) in enumerate(((pr, ac), (qr, ac), (pr, mc), (qr, mc))):
        r, c = rmap[i], cmap[j]
        ok = (r >= 0) & (c >= 0)
        rows.append(r[ok]), cols.append(c[ok]), kinds.append(np.full(ok.sum(), kind)), idx.append(nz[ok])
        r, c = rmap[buses], cmap[buses]
        ok = (r >= 0) & (c >= 0)
        rows.append(r[ok]), cols.append(c[ok]), kinds.append(np.full(ok.sum(), 4 + kind)), idx.append(buses[ok])
    sc = arrays.island_slack_col[isl]
    if sc >= 0:
        ok = (pr[buses] >= 0) & (arrays.bus_slack_weight[buses] != 0)
        rows.append(pr[buses[ok]]), cols.append(np.full(ok.sum(), sc)), kinds.append(np.full(ok.sum(), 8))
        idx.append(buses[ok])
    return (np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64),
            np.concatenate(kinds), np.concatenate(idx).astype(np.int64))


def analyse(arrays: GridArrays, v: np.ndarray, islands: np.ndarray) -> SparseLU:
    """Ordering, pivot sequence and patterns of the marked islands' Jacobians at the voltages ``v``.

    Per island: one SuperLU factorisation at ``v`` (minimum degree on ``Aᵀ + A``, diagonal pivots
    preferred down to a tenth of the column's largest entry: 25–35 % less fill than COLAMD with
    partial pivoting on the PEGASE cases) fixes the permutations; a second one of the permuted
    pattern with random values and diagonal pivots gives the complete patterns of ``L`` and ``U``.
    The numeric factors are left to :func:`refactor` (the caller starts with ``have_lu`` False).

    Parameters
    ----------
    arrays : GridArrays
    v : ndarray(complex128, n_bus)
        Operating point whose Jacobian chooses the pivots.
    islands : ndarray(bool, n_island)
        Islands to analyse (:func:`sparse_islands`).
    """
    from .newton import jacobian, numbering

    out = empty(arrays)
    nnz, n_bus = len(arrays.ybus_data), arrays.n_bus
    pos = [_none(nnz) for _ in range(4)] + [_none(n_bus) for _ in range(5)]
    pos_va, pos_vm, pos_slack = _none(n_bus), _none(n_bus), _none(arrays.n_island)
    col_off = np.zeros(arrays.n_island, np.int64)
    perm_off = np.zeros(arrays.n_island, np.int64)
    parts: dict[str, list] = {k: [] for k in ("a_ptr", "a_idx", "a_val", "l_ptr", "l_idx", "l_val", "u_ptr", "u_idx",
                                              "u_val", "row_perm", "col_perm", "lr_ptr", "lr_idx", "lr_val",
                                              "lr_src", "ur_ptr", "ur_idx", "ur_val", "ur_src", "u_dinv",
                                              "lr_row", "ur_row")}
    n_ptr = n_perm = n_a = n_l = n_u = 0
    jac = jacobian(arrays, v, numbering(arrays)) if islands.any() else None
    for isl in np.flatnonzero(islands):
        dim = int(arrays.island_dim[isl])
        o = int(arrays.island_offset[isl])
        rows, cols, kinds, idx = _island_entries(arrays, isl)
        key = rows * dim + cols
        uniq, entry = np.unique(key, return_inverse=True)
        er, ec = uniq // dim, uniq % dim
        block = jac[o:o + dim, o:o + dim].tocsr()
        vals = np.asarray(block[er, ec]).ravel()
        j_csc = sp.csc_matrix((vals, (er, ec)), shape=(dim, dim))
        lu = spla.splu(j_csc, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.1)
        # scipy: J = Pr^T L U Pc^T with Pr[perm_r[i], i] = 1, Pc[i, perm_c[i]] = 1, so
        # (L U)[r, c] = J[row_perm[r], col_perm[c]] with row_perm = argsort(perm_r), col_perm = argsort(perm_c)
        r_inv = np.asarray(lu.perm_r, np.int64)  # J row -> A row
        c_inv = np.asarray(lu.perm_c, np.int64)  # J column -> A column
        row_perm = np.argsort(r_inv).astype(np.int64)
        col_perm = np.argsort(c_inv).astype(np.int64)
        ar, ac = r_inv[er], c_inv[ec]
        buses = arrays.island_buses[arrays.island_bus_ptr[isl]:arrays.island_bus_ptr[isl + 1]]
        for col, place in ((arrays.bus_va_col, pos_va), (arrays.bus_vm_col, pos_vm)):
            has = buses[col[buses] >= 0]
            place[has] = c_inv[col[has]]
        if arrays.island_slack_col[isl] >= 0:
            pos_slack[isl] = c_inv[arrays.island_slack_col[isl]]
        order = np.lexsort((ar, ac))  # CSC: by column, then row
        where = np.empty(len(order), np.int64)
        where[order] = np.arange(len(order))
        a_ptr = np.searchsorted(ac[order], np.arange(dim + 1)).astype(np.int64)
        slot = n_a + where[entry]
        for kind in range(9):
            sel = kinds == kind
            pos[kind][idx[sel]] = slot[sel]
        # the patterns of L and U for this pivot sequence: factor the permuted pattern with random values
        # in [1, 2] and diagonal pivots (scipy drops the factors' exact zeros, so the values at v could
        # hide a fill-in that other values need)
        rnd = np.random.default_rng(0).uniform(1.0, 2.0, len(uniq))
        a_rand = sp.csc_matrix((rnd[order], ar[order], a_ptr), shape=(dim, dim))
        fixed = spla.splu(a_rand, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        if not (np.array_equal(fixed.perm_r, np.arange(dim)) and np.array_equal(fixed.perm_c, np.arange(dim))):
            raise RuntimeError("sparse LU analysis: the pivot sequence could not be fixed")
        U = fixed.U.tocsc()
        U.sort_indices()
        strict = sp.tril(fixed.L.tocsc(), k=-1, format="csc")
        strict.sort_indices()
        col_off[isl] = n_ptr
        perm_off[isl] = n_perm
        parts["a_ptr"].append(a_ptr + n_a)
        parts["a_idx"].append(ar[order])
        parts["a_val"].append(vals[order])
        parts["l_ptr"].append(strict.indptr.astype(np.int64) + n_l)
        parts["l_idx"].append(strict.indices.astype(np.int64))
        parts["l_val"].append(strict.data.astype(float))
        parts["u_ptr"].append(U.indptr.astype(np.int64) + n_u)
        parts["u_idx"].append(U.indices.astype(np.int64))
        parts["u_val"].append(U.data.astype(float))
        parts["row_perm"].append(row_perm)
        parts["col_perm"].append(col_perm)
        # the same factors by rows, and where each row entry comes from in the column-ordered arrays
        for name, mat, off in (("lr", strict, n_l), ("ur", sp.triu(U, k=1, format="csc"), n_u)):
            if name == "ur":  # positions in U's arrays, whose columns also hold the diagonal
                at = U.copy()
                at.data = np.arange(U.nnz, dtype=float) + 1.0
                at = sp.triu(at, k=1, format="csc")
            else:
                at = mat.copy()
                at.data = np.arange(mat.nnz, dtype=float) + 1.0
            rows = at.tocsr()
            rows.sort_indices()
            parts[f"{name}_ptr"].append(rows.indptr.astype(np.int64) + sum(len(x) for x in parts[f"{name}_idx"]))
            parts[f"{name}_idx"].append(rows.indices.astype(np.int64))
            parts[f"{name}_src"].append(rows.data.astype(np.int64) - 1 + off)
            parts[f"{name}_val"].append(np.zeros(rows.nnz))
            parts[f"{name}_row"].append(np.repeat(np.arange(dim, dtype=np.int64), np.diff(rows.indptr)))
        parts["u_dinv"].append(np.zeros(dim))
        n_ptr += dim + 1
        n_perm += dim
        n_a += len(uniq)
        n_l += strict.nnz
        n_u += U.nnz
    if not islands.any():
        return out
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    return out._replace(is_sparse=np.asarray(islands, bool).copy(), pos_pa=pos[0], pos_qa=pos[1], pos_pm=pos[2],
                        pos_qm=pos[3], dpos_pa=pos[4], dpos_qa=pos[5], dpos_pm=pos[6], dpos_qm=pos[7], spos=pos[8],
                        col_off=col_off, perm_off=perm_off, pos_va=pos_va, pos_vm=pos_vm, pos_slack=pos_slack, **cat)


@njit(cache=True)
def jacobian_fill(isl, dim, yp, yj, yx, v, bus_w, isl_ptr, isl_buses, p_row, q_row, sps):  # pragma: no cover
    """Fill the permuted sparse Jacobian of island ``isl`` (``sps.a_val``); terms as ``jacobian_island``'s."""
    (_, pos_pa, pos_qa, pos_pm, pos_qm, dpos_pa, dpos_qa, dpos_pm, dpos_qm, spos, col_off, _, a_ptr, _, a_val,
     _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _) = sps
    c0 = col_off[isl]
    for k in range(a_ptr[c0], a_ptr[c0 + dim]):
        a_val[k] = 0.0
    for k in range(isl_ptr[isl], isl_ptr[isl + 1]):
        i = isl_buses[k]
        if p_row[i] < 0 and q_row[i] < 0:
            continue
        vi = v[i]
        cur = 0j
        for n in range(yp[i], yp[i + 1]):
            j = yj[n]
            yv = yx[n] * v[j]
            cur += yv
            # off-diagonal parts: dS_i/dθ_j = -j V_i conj(Y_ij V_j); dS_i/d|V_j| = V_i conj(Y_ij V_j / |V_j|)
            d_a = -1j * vi * yv.conjugate()
            if pos_pa[n] >= 0:
                a_val[pos_pa[n]] += d_a.real
            if pos_qa[n] >= 0:
                a_val[pos_qa[n]] += d_a.imag
            if pos_pm[n] >= 0 or pos_qm[n] >= 0:
                d_m = vi * yv.conjugate() * (1.0 / abs(v[j]))
                if pos_pm[n] >= 0:
                    a_val[pos_pm[n]] += d_m.real
                if pos_qm[n] >= 0:
                    a_val[pos_qm[n]] += d_m.imag
        # diagonal parts: dS_i/dθ_i += j V_i conj(I_i); dS_i/d|V_i| += conj(I_i) V_i / |V_i|
        d_a = 1j * vi * cur.conjugate()
        if dpos_pa[i] >= 0:
            a_val[dpos_pa[i]] += d_a.real
        if dpos_qa[i] >= 0:
            a_val[dpos_qa[i]] += d_a.imag
        d_m = cur.conjugate() * vi / abs(vi)
        if dpos_pm[i] >= 0:
            a_val[dpos_pm[i]] += d_m.real
        if dpos_qm[i] >= 0:
            a_val[dpos_qm[i]] += d_m.imag
        if spos[i] >= 0:
            a_val[spos[i]] = -bus_w[i]


@njit(cache=True)
def refactor(isl, dim, sps, work):  # pragma: no cover
    """Numeric LU of the island's permuted Jacobian with the analysed pivots and patterns (left-looking).

    Column ``j``: scatter ``A[:, j]`` into the dense ``work``, subtract ``L[:, k] · U[k, j]`` for the
    pattern rows ``k < j`` of ``U[:, j]`` in ascending order (each ``x[k]`` is final when reached:
    earlier columns of ``L`` only change later rows), then ``U[:, j] = x[pattern]`` and
    ``L[:, j] = x[pattern] / U[j, j]``; ``U[j, j]`` is stored as its inverse. The factors are then
    copied into row order for :func:`solve_factors`. Returns False on a zero or non-finite pivot.
    """
    (_, _, _, _, _, _, _, _, _, _, col_off, perm_off, a_ptr, a_idx, a_val, l_ptr, l_idx, l_val, u_ptr, u_idx, u_val,
     _, _, lr_ptr, lr_idx, lr_val, lr_src, ur_ptr, _, ur_val, ur_src, u_dinv, lr_row, ur_row, _, _, _) = sps
    c0 = col_off[isl]
    p0 = perm_off[isl]
    for j in range(dim):
        cj = c0 + j
        for k in range(u_ptr[cj], u_ptr[cj + 1]):
            work[u_idx[k]] = 0.0
        for k in range(l_ptr[cj], l_ptr[cj + 1]):
            work[l_idx[k]] = 0.0
        for k in range(a_ptr[cj], a_ptr[cj + 1]):
            work[a_idx[k]] = a_val[k]
        for k in range(u_ptr[cj], u_ptr[cj + 1] - 1):  # the rows above the diagonal, ascending
            r = u_idx[k]
            x = work[r]
            u_val[k] = x
            if x != 0.0:
                ck = c0 + r
                for m in range(l_ptr[ck], l_ptr[ck + 1]):
                    work[l_idx[m]] -= l_val[m] * x
        d = work[j]
        if d == 0.0 or not math.isfinite(d):
            return False
        inv = 1.0 / d
        u_val[u_ptr[cj + 1] - 1] = inv  # the diagonal is kept inverted: the solves multiply
        u_dinv[p0 + j] = inv
        for k in range(l_ptr[cj], l_ptr[cj + 1]):
            l_val[k] = work[l_idx[k]] * inv
    for k in range(lr_ptr[c0], lr_ptr[c0 + dim]):  # D⁻¹ L D
        lr_val[k] = l_val[lr_src[k]] * u_dinv[p0 + lr_row[k]] / u_dinv[p0 + lr_idx[k]]
    for k in range(ur_ptr[c0], ur_ptr[c0 + dim]):  # D⁻¹ U
        ur_val[k] = u_val[ur_src[k]] * u_dinv[p0 + ur_row[k]]
    return True


@njit(cache=True)
def solve(isl, dim, sps, f, dx, work):  # pragma: no cover
    """``dx = J⁻¹ f`` for island ``isl`` from the factors of :func:`refactor` (``work``: ``dim`` floats)."""
    solve_factors(dim, sps[10][isl], sps[11][isl], sps[23], sps[24], sps[25], sps[32], sps[27], sps[28], sps[29],
                  sps[33], sps[31], sps[21], sps[22], f, dx, work)


@njit(cache=True)
def solve_factors(dim, c0, p0, lr_ptr, lr_idx, lr_val, lr_row, ur_ptr, ur_idx, ur_val, ur_row, u_dinv, row_perm,
                  col_perm, f, dx, work):  # pragma: no cover
    """:func:`solve` on the row-ordered factor arrays themselves: :func:`solve_permuted`, then
    ``dx[col_perm[i]] = work[i]``."""
    solve_permuted(dim, c0, p0, lr_ptr, lr_idx, lr_val, lr_row, ur_ptr, ur_idx, ur_val, ur_row, u_dinv, row_perm, f,
                   work)
    cp = col_perm[p0:p0 + dim]
    for i in range(dim):
        dx[cp[i]] = work[i]


@njit(cache=True)
def solve_permuted(dim, c0, p0, lr_ptr, lr_idx, lr_val, lr_row, ur_ptr, ur_idx, ur_val, ur_row, u_dinv, row_perm, f,
                   work):  # pragma: no cover
    """``J⁻¹ f`` left in ``work`` in the factors' column order (``work[i]`` is unknown ``col_perm[i]``;
    ``SparseLU.pos_va`` … say where each bus's is), from the row-ordered factor arrays (a call with a
    few arrays instead of the whole :class:`SparseLU`: the chord Newton calls it every iteration and
    reads the updates from there, without scattering them). ``c0``, ``p0``: the island's ``col_off``
    and ``perm_off``.

    With ``D = diag(U)`` and ``z = D⁻¹ y``: ``(D⁻¹ L D) z = D⁻¹ P f``, then ``(D⁻¹ U) x = z``, both
    with a unit diagonal. Each is one pass over its entries in row order (ascending for ``L``,
    descending for ``U``): ``work[row] -= val · work[col]``, where ``work[col]`` is final when read
    because every entry of row ``col`` comes earlier in the pass.
    """
    # views from offset 0: loop indices known to be non-negative need no wraparound test per access
    rp = row_perm[p0:p0 + dim]
    dinv = u_dinv[p0:p0 + dim]
    lo, hi = lr_ptr[c0], lr_ptr[c0 + dim]
    l_row, l_col, l_val = lr_row[lo:hi], lr_idx[lo:hi], lr_val[lo:hi]
    lo, hi = ur_ptr[c0], ur_ptr[c0 + dim]
    u_row, u_col, u_val = ur_row[lo:hi], ur_idx[lo:hi], ur_val[lo:hi]
    for i in range(dim):
        work[i] = f[rp[i]] * dinv[i]
    for k in range(len(l_val)):  # rows ascending
        work[l_row[k]] -= l_val[k] * work[l_col[k]]
    for k in range(len(u_val) - 1, -1, -1):  # rows descending
        work[u_row[k]] -= u_val[k] * work[u_col[k]]
