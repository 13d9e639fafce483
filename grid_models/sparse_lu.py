"""Sparse LU of an island's Jacobian for the time-series load flow: analysed once, refactorised in numba.

A campus modelled down to its unit substations, or a transmission case, has islands whose Jacobian
has thousands of rows; the dense factors of :mod:`grid_models.newton_numba` then cost ``O(n³)``
per factorisation and ``O(n²)`` per chord step. Above :data:`SPARSE_MIN_DIM` rows the time series
(:func:`grid_models.timeseries.solve_timeseries`) therefore works as KLU's ``klu_analyze`` /
``klu_factor`` / ``klu_refactor`` do (Davis & Palamadai Natarajan, "Algorithm 907: KLU", ACM TOMS
37(3), 2010):

* **analysis, once per topology** (:func:`analyse`, Python): the Jacobian's sparsity pattern follows
  from Ybus and the bus types alone. The unknowns and equations are ordered bus by bus (a minimum-degree
  ordering of the island's buses; a bus's ``P`` and ``Q`` rows, and its ``θ`` and ``|V|`` columns, side
  by side) with diagonal pivots, provided that every pivot at the starting point is at least
  :data:`PIVOT_TOL` of its column; otherwise one factorisation with scipy's SuperLU (fill-reducing
  ordering, threshold pivoting) fixes the row and column permutations. The patterns of ``L`` and ``U``
  for that pivot sequence follow from the pattern alone (every fill-in, whatever the values). Where
  each Ybus entry's four Jacobian terms land in the permuted matrix is tabulated, so the Jacobian is
  filled straight into its factorisation order;
* **numeric refactorisation** (:func:`refactor`, numba): a left-looking (Gilbert–Peierls) LU that
  keeps the pivot sequence and the patterns — no search, no allocation — called only when the chord
  Newton asks for fresh factors;
* **solves** (:func:`solve_permuted`, numba): each refactorisation copies its column-ordered factors
  into 2×2 blocks — the entries between the two equations of one bus and the two unknowns of another
  (a bus with one unknown gets an empty second slot), scaled so that both triangles have a unit
  diagonal — and the forward and back substitutions are one flat loop each over the blocks,
  ``y[r] -= B · y[c]`` on pairs: one index per four values instead of per value, and no inner loop whose
  length changes from row to row (mispredicted loop exits cost more than the arithmetic). On the
  467-row campus Jacobian a solve takes 1.8 µs, against 5.3 µs by scalar rows; the chord Newton solves
  several times per factorisation. Where the bus ordering was not taken the same blocks pair
  consecutive positions (correct, less dense).

Keeping the pivot sequence of the first factorisation is what KLU's refactorisation (and
lightsim2grid's Newton with it) does; a pivot that turns zero or non-finite is reported as a singular
Jacobian (the Newton step then fails like a dense one would, and the time series marks the step).

All arrays of the sparse islands of one net are concatenated (:class:`SparseLU`); island ``i`` has its
column pointers at ``col_off[i] … col_off[i] + dim``, its permutations at ``perm_off[i]``, its solve
slots at ``slot_ptr[i] … slot_ptr[i + 1]`` and its blocks at ``lb_ptr[i]``, ``ub_ptr[i]``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ._jit import njit  # numba's njit; importing it drops cached kernels whose sources changed
from .compile import GridArrays

__all__ = ["SPARSE_MIN_DIM", "DENSE_MAX_DIM", "PIVOT_TOL", "SparseLU", "sparse_islands", "analyse", "empty",
           "jacobian_fill", "refactor", "solve", "solve_permuted"]

#: islands whose Jacobian has more rows than this are factorised sparse in the time series (measured
#: crossover: see benchmarks/scaling.py; the campus islands, 1–30 rows, stay dense)
SPARSE_MIN_DIM = 64
#: no dense factors above this many rows (``LoadFlowState.lu`` has no room for them; ``solve(solver="auto")``
#: uses the sparse scipy path): such islands are always sparse in the time series
DENSE_MAX_DIM = 400
#: the bus-by-bus ordering is kept if every diagonal pivot at the analysis point is at least this fraction
#: of its column's largest entry (KLU's default partial-pivoting tolerance is 0.001)
PIVOT_TOL = 0.01


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
    u_dinv : ndarray(float64)
        ``1 / U[j, j]`` of each column, island ``i`` at ``perm_off[i]``.
    slot : ndarray(int64)
        Island-local solve slot of each row and column of ``A`` (at ``perm_off``): position ``p`` is slot
        ``slot[p]``, the slots ``2b`` and ``2b + 1`` make block ``b`` (a bus, or two consecutive positions).
    slot_ptr : ndarray(int64, n_island + 1)
        The island's slots in ``s_src``, ``s_scale``.
    s_src, s_scale
        Per slot: the Jacobian row whose mismatch it starts from and ``1 / U[p, p]`` of its position
        (0 for an empty slot, whose value then stays 0).
    lb_ptr, lb_row, lb_col, lb_val
        The strictly lower part of ``D⁻¹ L D`` (``D = diag(U)``: the factor that acts on ``D⁻¹ y``) as 2×2
        blocks: block rows ascending, the diagonal block (its one entry below the diagonal) last in its
        row; ``lb_val[4k : 4k + 4]`` is block ``k`` row-major. ``lb_ptr``: the island's blocks.
    l_dst : ndarray(int64)
        Where each entry of ``l_val`` goes in ``lb_val``.
    ub_ptr, ub_row, ub_col, ub_val, u_dst
        The strictly upper part of ``D⁻¹ U`` (unit diagonal) likewise, the diagonal block first in its
        row (the back substitution runs backwards); ``u_dst`` is -1 for the diagonal of ``U``.
    pos_va, pos_vm : ndarray(int64, n_bus)
        The slot of :func:`solve_permuted`'s solution that holds the update of bus ``i``'s angle /
        magnitude (-1 if none or not in a sparse island).
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
    u_dinv: np.ndarray
    slot: np.ndarray
    slot_ptr: np.ndarray
    s_src: np.ndarray
    s_scale: np.ndarray
    lb_ptr: np.ndarray
    lb_row: np.ndarray
    lb_col: np.ndarray
    lb_val: np.ndarray
    l_dst: np.ndarray
    ub_ptr: np.ndarray
    ub_row: np.ndarray
    ub_col: np.ndarray
    ub_val: np.ndarray
    u_dst: np.ndarray
    pos_va: np.ndarray
    pos_vm: np.ndarray
    pos_slack: np.ndarray

    def copy(self) -> "SparseLU":
        """Independent numeric arrays (the pattern arrays are shared: they never change)."""
        return self._replace(a_val=self.a_val.copy(), l_val=self.l_val.copy(), u_val=self.u_val.copy(),
                             u_dinv=self.u_dinv.copy(), s_scale=self.s_scale.copy(), lb_val=self.lb_val.copy(),
                             ub_val=self.ub_val.copy())


# field numbers, for the kernels (which receive a SparseLU as a plain tuple)
_F = {name: k for k, name in enumerate(SparseLU._fields)}
F_COL_OFF, F_PERM_OFF, F_A_PTR, F_A_VAL = _F["col_off"], _F["perm_off"], _F["a_ptr"], _F["a_val"]
F_SLOT_PTR, F_S_SRC, F_S_SCALE = _F["slot_ptr"], _F["s_src"], _F["s_scale"]
F_LB_PTR, F_LB_ROW, F_LB_COL, F_LB_VAL = _F["lb_ptr"], _F["lb_row"], _F["lb_col"], _F["lb_val"]
F_UB_PTR, F_UB_ROW, F_UB_COL, F_UB_VAL = _F["ub_ptr"], _F["ub_row"], _F["ub_col"], _F["ub_val"]
F_L_DST, F_U_DST, F_U_DINV, F_SLOT, F_COL_PERM = _F["l_dst"], _F["u_dst"], _F["u_dinv"], _F["slot"], _F["col_perm"]
F_POS_VA, F_POS_VM, F_POS_SLACK = _F["pos_va"], _F["pos_vm"], _F["pos_slack"]


def sparse_islands(arrays: GridArrays, min_dim: int = SPARSE_MIN_DIM) -> np.ndarray:
    """Which islands the time series factorises sparse (more than ``min_dim``, or ``DENSE_MAX_DIM``, rows)."""
    return np.asarray((arrays.island_dim > min_dim) | (arrays.island_dim > DENSE_MAX_DIM), dtype=bool)


def _none(n: int) -> np.ndarray:
    return np.full(n, -1, np.int64)


def empty(arrays: GridArrays) -> SparseLU:
    """A :class:`SparseLU` with no sparse island (same array types, so the kernel compiles once)."""
    z_i, z_f = np.zeros(1, np.int64), np.zeros(1)
    nnz, n_bus, n_isl = len(arrays.ybus_data), arrays.n_bus, arrays.n_island
    fields = {name: z_i for name in SparseLU._fields}
    fields.update({name: z_f for name in ("a_val", "l_val", "u_val", "u_dinv", "s_scale", "lb_val", "ub_val")})
    fields.update({name: _none(nnz) for name in ("pos_pa", "pos_qa", "pos_pm", "pos_qm")})
    fields.update({name: _none(n_bus) for name in ("dpos_pa", "dpos_qa", "dpos_pm", "dpos_qm", "spos", "pos_va",
                                                   "pos_vm")})
    fields.update(is_sparse=np.zeros(n_isl, bool), col_off=np.zeros(n_isl, np.int64),
                  perm_off=np.zeros(n_isl, np.int64), slot_ptr=np.zeros(n_isl + 1, np.int64),
                  lb_ptr=np.zeros(n_isl + 1, np.int64), ub_ptr=np.zeros(n_isl + 1, np.int64), pos_slack=_none(n_isl))
    return SparseLU(**fields)


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


def _bus_order(arrays: GridArrays, isl: int):
    """Rows and columns of the island's Jacobian ordered bus by bus, and each position's solve slot.

    A minimum-degree ordering of the island's buses (SuperLU's on the pattern of Ybus, with the slack
    column's coupling); each bus brings its ``P`` and ``Q`` rows and its ``θ`` and ``|V|`` columns, the
    REF bus of a distributed-slack island its ``P`` row and the slack column (placed last: ``∂P/∂s`` is
    nonzero only at weighted buses, and a last pivot is nonzero whenever the Jacobian is regular and the
    earlier ones are). Bus ``b`` of the order has slots ``2b`` and ``2b + 1``. None if the island's
    rows and columns do not pair up bus by bus.
    """
    buses = arrays.island_buses[arrays.island_bus_ptr[isl]:arrays.island_bus_ptr[isl + 1]]
    pr, qr, ac, mc = arrays.bus_p_row, arrays.bus_q_row, arrays.bus_va_col, arrays.bus_vm_col
    sc = int(arrays.island_slack_col[isl])
    rows_of, cols_of, ref = {}, {}, []
    for b in buses:
        r = [int(x) for x in (pr[b], qr[b]) if x >= 0]
        c = [int(x) for x in (ac[b], mc[b]) if x >= 0]
        if len(r) != len(c):
            if sc < 0 or len(c) != len(r) - 1:
                return None
            c = [sc] + c
            ref.append(int(b))
        if r:
            rows_of[int(b)], cols_of[int(b)] = r, c
    if (sc >= 0) != (len(ref) == 1):
        return None
    members = np.array(sorted(rows_of), np.int64)
    local = np.full(arrays.n_bus, -1, np.int64)
    local[members] = np.arange(len(members))
    yp, yj = arrays.ybus_indptr, arrays.ybus_indices
    i = np.repeat(members, yp[members + 1] - yp[members])
    j = yj[np.concatenate([np.arange(yp[b], yp[b + 1]) for b in members])] if len(members) else np.zeros(0, np.int64)
    keep = local[j] >= 0
    ri, ci = local[i[keep]], local[j[keep]]
    if ref:
        weighted = members[arrays.bus_slack_weight[members] != 0]
        ri = np.concatenate([ri, local[weighted]])
        ci = np.concatenate([ci, np.full(len(weighted), local[ref[0]])])
    n = len(members)
    pattern = sp.csc_matrix((np.random.default_rng(0).uniform(1.0, 2.0, len(ri)), (ri, ci)), shape=(n, n))
    pattern = (pattern + sp.identity(n, format="csc") * (4.0 * n)).tocsc()
    lu = spla.splu(pattern, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    order = np.argsort(np.asarray(lu.perm_c))
    if ref:
        last = local[ref[0]]
        order = np.concatenate([order[order != last], [last]])
    sequence = members[order]
    row_perm = np.array([x for b in sequence for x in rows_of[b]], np.int64)
    col_perm = np.array([x for b in sequence for x in cols_of[b]], np.int64)
    slot = np.array([2 * k + m for k, b in enumerate(sequence) for m in range(len(rows_of[b]))], np.int64)
    return row_perm, col_perm, slot


def _blocks(rows, cols, slot, diagonal_first: bool):
    """2×2 blocks of triangle entries at positions (``rows``, ``cols``): each entry's place ``4k + sub`` in
    the blocks' values (row-major in the block), and the blocks' rows and columns, ordered by block row
    with the diagonal block last (or first) in its row, then by block column."""
    if not len(rows):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    sr, sc = slot[rows], slot[cols]
    br, bc = sr // 2, sc // 2
    sub = 2 * (sr % 2) + sc % 2
    diag = br == bc
    o = np.lexsort((bc, ~diag if diagonal_first else diag, br))
    key = br[o] * (int(slot.max()) + 2) + bc[o]
    new = np.concatenate([[True], key[1:] != key[:-1]])
    blk = np.cumsum(new) - 1
    dst = np.empty(len(rows), np.int64)
    dst[o] = 4 * blk + sub[o]
    return dst, br[o][new].astype(np.int64), bc[o][new].astype(np.int64)


def analyse(arrays: GridArrays, v: np.ndarray, islands: np.ndarray) -> SparseLU:
    """Ordering, pivot sequence and patterns of the marked islands' Jacobians at the voltages ``v``.

    Per island: the bus-by-bus ordering of :func:`_bus_order` with diagonal pivots, if SuperLU keeps
    every diagonal pivot of it at ``v`` with a threshold of :data:`PIVOT_TOL`; otherwise one SuperLU
    factorisation at ``v`` (minimum degree on ``Aᵀ + A``, diagonal pivots preferred down to a tenth of the
    column's largest entry: 25–35 % less fill than COLAMD with partial pivoting on the PEGASE cases)
    fixes the permutations. A factorisation of the permuted pattern with random values and diagonal
    pivots then gives the complete patterns of ``L`` and ``U``, and their 2×2 blocks for the solves.
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
    nnz, n_bus, n_isl = len(arrays.ybus_data), arrays.n_bus, arrays.n_island
    pos = [_none(nnz) for _ in range(4)] + [_none(n_bus) for _ in range(5)]
    pos_va, pos_vm, pos_slack = _none(n_bus), _none(n_bus), _none(n_isl)
    col_off = np.zeros(n_isl, np.int64)
    perm_off = np.zeros(n_isl, np.int64)
    slot_ptr, lb_ptr, ub_ptr = (np.zeros(n_isl + 1, np.int64) for _ in range(3))
    parts: dict[str, list] = {k: [] for k in ("a_ptr", "a_idx", "a_val", "l_ptr", "l_idx", "l_val", "u_ptr", "u_idx",
                                              "u_val", "row_perm", "col_perm", "u_dinv", "slot", "s_src", "s_scale",
                                              "lb_row", "lb_col", "lb_val", "l_dst", "ub_row", "ub_col", "ub_val",
                                              "u_dst")}
    n_ptr = n_perm = n_a = n_l = n_u = n_slot = n_lb = n_ub = 0
    jac = jacobian(arrays, v, numbering(arrays)) if islands.any() else None
    for isl in range(n_isl):
        slot_ptr[isl + 1], lb_ptr[isl + 1], ub_ptr[isl + 1] = n_slot, n_lb, n_ub
        if not islands[isl]:
            continue
        dim = int(arrays.island_dim[isl])
        o = int(arrays.island_offset[isl])
        rows, cols, kinds, idx = _island_entries(arrays, isl)
        key = rows * dim + cols
        uniq, entry = np.unique(key, return_inverse=True)
        er, ec = uniq // dim, uniq % dim
        block = jac[o:o + dim, o:o + dim].tocsr()
        vals = np.asarray(block[er, ec]).ravel()
        j_csc = sp.csc_matrix((vals, (er, ec)), shape=(dim, dim))
        paired = _bus_order(arrays, isl)
        if paired is not None:
            row_perm, col_perm, slot = paired
            a_perm = j_csc[row_perm][:, col_perm].tocsc()
            check = spla.splu(a_perm, permc_spec="NATURAL", diag_pivot_thresh=PIVOT_TOL, options={"SymmetricMode": True})
            if not np.array_equal(check.perm_r, np.arange(dim)):
                paired = None  # a diagonal pivot too small at v: threshold pivoting instead
        if paired is None:
            lu = spla.splu(j_csc, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.1)
            # scipy: J = Pr^T L U Pc^T with Pr[perm_r[i], i] = 1, Pc[i, perm_c[i]] = 1, so
            # (L U)[r, c] = J[row_perm[r], col_perm[c]] with row_perm = argsort(perm_r), col_perm = argsort(perm_c)
            row_perm = np.argsort(np.asarray(lu.perm_r)).astype(np.int64)
            col_perm = np.argsort(np.asarray(lu.perm_c)).astype(np.int64)
            slot = np.arange(dim, dtype=np.int64)  # blocks of consecutive positions
        r_inv = np.argsort(row_perm)  # J row -> A row
        c_inv = np.argsort(col_perm)  # J column -> A column
        ar, ac = r_inv[er], c_inv[ec]
        buses = arrays.island_buses[arrays.island_bus_ptr[isl]:arrays.island_bus_ptr[isl + 1]]
        for col, place in ((arrays.bus_va_col, pos_va), (arrays.bus_vm_col, pos_vm)):
            has = buses[col[buses] >= 0]
            place[has] = slot[c_inv[col[has]]]
        if arrays.island_slack_col[isl] >= 0:
            pos_slack[isl] = slot[c_inv[arrays.island_slack_col[isl]]]
        order = np.lexsort((ar, ac))  # CSC: by column, then row
        where = np.empty(len(order), np.int64)
        where[order] = np.arange(len(order))
        a_ptr = np.searchsorted(ac[order], np.arange(dim + 1)).astype(np.int64)
        place_a = n_a + where[entry]
        for kind in range(9):
            sel = kinds == kind
            pos[kind][idx[sel]] = place_a[sel]
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
        parts["u_dinv"].append(np.zeros(dim))
        parts["slot"].append(slot)
        n_slots = 2 * ((int(slot.max()) + 2) // 2) if dim else 0
        s_src = np.zeros(n_slots, np.int64)
        s_src[slot] = row_perm
        parts["s_src"].append(s_src)
        parts["s_scale"].append(np.zeros(n_slots))
        # the solves' 2x2 blocks, and where each factor entry goes in them
        l_cols = np.repeat(np.arange(dim), np.diff(strict.indptr))
        l_dst, lb_row, lb_col = _blocks(strict.indices.astype(np.int64), l_cols, slot, diagonal_first=False)
        u_rows, u_cols = U.indices.astype(np.int64), np.repeat(np.arange(dim), np.diff(U.indptr))
        upper = u_rows < u_cols
        u_dst = _none(U.nnz)
        u_dst[upper], ub_row, ub_col = _blocks(u_rows[upper], u_cols[upper], slot, diagonal_first=True)
        parts["l_dst"].append(l_dst + 4 * n_lb)
        parts["u_dst"].append(np.where(u_dst >= 0, u_dst + 4 * n_ub, -1))
        for name, x in (("lb_row", lb_row), ("lb_col", lb_col), ("ub_row", ub_row), ("ub_col", ub_col)):
            parts[name].append(x)
        parts["lb_val"].append(np.zeros(4 * len(lb_row)))
        parts["ub_val"].append(np.zeros(4 * len(ub_row)))
        n_ptr += dim + 1
        n_perm += dim
        n_a += len(uniq)
        n_l += strict.nnz
        n_u += U.nnz
        n_slot += n_slots
        n_lb += len(lb_row)
        n_ub += len(ub_row)
        slot_ptr[isl + 1], lb_ptr[isl + 1], ub_ptr[isl + 1] = n_slot, n_lb, n_ub
    if not islands.any():
        return out
    cat = {k: np.concatenate(v) if sum(len(x) for x in v) else getattr(out, k) for k, v in parts.items()}
    return out._replace(is_sparse=np.asarray(islands, bool).copy(), pos_pa=pos[0], pos_qa=pos[1], pos_pm=pos[2],
                        pos_qm=pos[3], dpos_pa=pos[4], dpos_qa=pos[5], dpos_pm=pos[6], dpos_qm=pos[7], spos=pos[8],
                        col_off=col_off, perm_off=perm_off, slot_ptr=slot_ptr, lb_ptr=lb_ptr, ub_ptr=ub_ptr,
                        pos_va=pos_va, pos_vm=pos_vm, pos_slack=pos_slack, **cat)


@njit(cache=True)
def jacobian_fill(isl, dim, yp, yj, yx, v, bus_w, isl_ptr, isl_buses, p_row, q_row, sps):  # pragma: no cover
    """Fill the permuted sparse Jacobian of island ``isl`` (``sps.a_val``); terms as ``jacobian_island``'s."""
    pos_pa, pos_qa, pos_pm, pos_qm, dpos_pa, dpos_qa, dpos_pm, dpos_qm, spos = (sps[1], sps[2], sps[3], sps[4], sps[5],
                                                                          sps[6], sps[7], sps[8], sps[9])
    col_off, a_ptr, a_val = sps[F_COL_OFF], sps[F_A_PTR], sps[F_A_VAL]
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
    copied, scaled, into the solves' 2×2 blocks (see :class:`SparseLU`). Returns False on a zero or
    non-finite pivot.
    """
    (col_off, perm_off, a_ptr, a_idx, a_val, l_ptr, l_idx, l_val, u_ptr, u_idx, u_val) = (
        sps[10], sps[11], sps[12], sps[13], sps[14], sps[15], sps[16], sps[17], sps[18], sps[19], sps[20])
    u_dinv, slot, slot_ptr, s_scale = sps[F_U_DINV], sps[F_SLOT], sps[F_SLOT_PTR], sps[F_S_SCALE]
    lb_val, l_dst, ub_val, u_dst = sps[F_LB_VAL], sps[F_L_DST], sps[F_UB_VAL], sps[F_U_DST]
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
    so = slot_ptr[isl]
    for j in range(dim):  # D⁻¹ L D and D⁻¹ U into the blocks, D⁻¹ into the slots
        cj = c0 + j
        dj = u_dinv[p0 + j]
        for k in range(l_ptr[cj], l_ptr[cj + 1]):
            lb_val[l_dst[k]] = l_val[k] * u_dinv[p0 + l_idx[k]] / dj
        for k in range(u_ptr[cj], u_ptr[cj + 1] - 1):
            ub_val[u_dst[k]] = u_val[k] * u_dinv[p0 + u_idx[k]]
        s_scale[so + slot[p0 + j]] = dj
    return True


@njit(cache=True)
def solve(isl, dim, sps, f, dx, work):  # pragma: no cover
    """``dx = J⁻¹ f`` for island ``isl`` from the factors of :func:`refactor` (:func:`solve_permuted`,
    then each unknown from its slot; ``work`` is not used: the slots have their own vector)."""
    w = np.empty(sps[F_SLOT_PTR][isl + 1] - sps[F_SLOT_PTR][isl] + 2)
    solve_permuted(isl, sps[F_SLOT_PTR], sps[F_S_SRC], sps[F_S_SCALE], sps[F_LB_PTR], sps[F_LB_ROW], sps[F_LB_COL],
                   sps[F_LB_VAL], sps[F_UB_PTR], sps[F_UB_ROW], sps[F_UB_COL], sps[F_UB_VAL], f, w)
    p0 = sps[F_PERM_OFF][isl]
    col_perm, slot = sps[F_COL_PERM], sps[F_SLOT]
    for i in range(dim):
        dx[col_perm[p0 + i]] = w[slot[p0 + i]]


@njit(cache=True)
def solve_permuted(isl, slot_ptr, s_src, s_scale, lb_ptr, lb_row, lb_col, lb_val, ub_ptr, ub_row, ub_col, ub_val, f,
                   w):  # pragma: no cover
    """``J⁻¹ f`` for island ``isl``, left in the solve slots ``w`` (``SparseLU.pos_va`` … say which slot
    holds which unknown; at least the island's number of slots), from the blocks of :func:`refactor`.
    The arrays are :class:`SparseLU`'s own (a call with a few arrays instead of the whole tuple: the chord
    Newton calls it every iteration and reads the updates from the slots, without scattering them).

    With ``D = diag(U)`` and ``z = D⁻¹ y``: ``(D⁻¹ L D) z = D⁻¹ P f``, then ``(D⁻¹ U) x = z``, both with
    a unit diagonal. Each is one pass over its 2×2 blocks in block-row order (ascending for ``L``,
    descending for ``U``): ``w[r:r+2] -= B · w[c:c+2]``, where ``w[c:c+2]`` is final when read: every
    block of row ``c`` comes earlier in the pass, and a row's diagonal block, which holds the one
    coupling inside the pair, comes after the others.
    """
    # views from offset 0: loop indices known to be non-negative need no wraparound test per access
    src = s_src[slot_ptr[isl]:slot_ptr[isl + 1]]
    scale = s_scale[slot_ptr[isl]:slot_ptr[isl + 1]]
    lo, hi = lb_ptr[isl], lb_ptr[isl + 1]
    l_row, l_col, l_val = lb_row[lo:hi], lb_col[lo:hi], lb_val[4 * lo:4 * hi]
    lo, hi = ub_ptr[isl], ub_ptr[isl + 1]
    u_row, u_col, u_val = ub_row[lo:hi], ub_col[lo:hi], ub_val[4 * lo:4 * hi]
    for s in range(len(src)):
        w[s] = f[src[s]] * scale[s]
    for k in range(len(l_row)):  # block rows ascending
        r = 2 * l_row[k]
        c = 2 * l_col[k]
        x0 = w[c]
        x1 = w[c + 1]
        w[r] -= l_val[4 * k] * x0 + l_val[4 * k + 1] * x1
        w[r + 1] -= l_val[4 * k + 2] * x0 + l_val[4 * k + 3] * x1
    for k in range(len(u_row) - 1, -1, -1):  # block rows descending
        r = 2 * u_row[k]
        c = 2 * u_col[k]
        x0 = w[c]
        x1 = w[c + 1]
        w[r] -= u_val[4 * k] * x0 + u_val[4 * k + 1] * x1
        w[r + 1] -= u_val[4 * k + 2] * x0 + u_val[4 * k + 3] * x1
