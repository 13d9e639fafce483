"""Numba kernels of the AC load flow: Newton–Raphson in polar form, one dense block per island.

Every kernel takes plain arrays (see :class:`grid_models.compile.GridArrays` for their meaning) and
fills caller-allocated outputs; the numpy twins live in :mod:`grid_models.newton` and the tests run
both. Islands are independent, so each has its own small dense Jacobian, LU factors and
convergence test; the Jacobian of a campus island has a few dozen rows, where a dense LU is faster
than any sparse one.

Formulation (per island, per unit). Unknowns: bus angles ``θ`` except the angle reference,
magnitudes ``|V|`` of PQ buses, and with distributed slack the island's slack power ``s``.
Equations: for every bus with a P row ``P_i(V) − P_i^spec − w_i s = 0``; for every PQ bus
``Q_i(V) − Q_i^spec = 0``, where ``S_i(V) = V_i conj(Σ_j Y_ij V_j)`` and ``w`` are the island's
participation factors (``Σ w = 1``). The Jacobian uses the polar derivatives

    ∂S/∂θ  = j diag(V) conj(diag(I) − Y diag(V))
    ∂S/∂|V| = diag(V) conj(Y diag(V/|V|)) + conj(diag(I)) diag(V/|V|),       I = Y V,

and ``∂P_i/∂s = −w_i`` (Tinney & Hart, "Power flow solution by Newton's method", IEEE Trans. PAS
86(11), 1967; distributed slack with participation factors as in pandapower's ``newtonpf``).

A *chord* Newton (Jacobian frozen while convergence is fast, refactorised when the mismatch falls by
less than ``refactor_ratio`` per iteration) is what the time series uses; ``refactor_ratio = 0`` gives
the full Newton method.
"""

from __future__ import annotations

import math

import numpy as np

from . import sparse_lu as _sparse
from ._jit import njit  # numba's njit; importing it drops cached kernels whose sources changed

__all__ = [
    "mismatch_island", "jacobian_island", "lu_factor", "lu_solve", "lu_invert", "inv_apply", "rotate", "turn", "newton_island", "ref_pickup",
    "solve_snapshot",
    "branch_factors", "branch_end", "branch_flows", "timeseries", "add_element_columns",
]

#: a mismatch above this [pu] is taken as divergence
DIVERGED_PU = 1e10


@njit(cache=True)
def mismatch_island(isl, yp, yj, yx, v, p_spec, q_spec, bus_w, slack, isl_ptr, isl_buses, p_row, q_row,
                    f):  # pragma: no cover
    """Fill the mismatch vector of one island; return ``max |f|``.

    ``f[p_row[i]] = Re S_i − p_spec[i] − bus_w[i]·slack[isl]`` and ``f[q_row[i]] = Im S_i − q_spec[i]``
    with ``S = V ∘ conj(Y V)`` (Ybus in CSR: ``yp`` indptr, ``yj`` indices, ``yx`` values).

    Parameters
    ----------
    isl : int
    yp, yj : ndarray(int64)
    yx : ndarray(complex128)
    v : ndarray(complex128, n_bus)
    p_spec, q_spec : ndarray(float64, n_bus)
        Scheduled injections [pu].
    bus_w : ndarray(float64, n_bus)
    slack : ndarray(float64, n_island)
    isl_ptr, isl_buses, p_row, q_row : ndarray(int64)
    f : ndarray(float64, >= island dim), output

    Returns
    -------
    float
        Largest absolute mismatch [pu].
    """
    norm = 0.0
    s_isl = slack[isl]
    for k in range(isl_ptr[isl], isl_ptr[isl + 1]):
        i = np.uint64(isl_buses[np.uint64(k)])
        pr = p_row[i]
        qr = q_row[i]
        if pr < 0 and qr < 0:
            continue
        acc = 0j
        for n in range(yp[i], yp[i + 1]):
            u = np.uint64(n)  # unsigned indices: no test for negative (wraparound) indices per access
            acc += yx[u] * v[np.uint64(yj[u])]
        s = v[i] * acc.conjugate()
        if pr >= 0:
            x = s.real - p_spec[i] - bus_w[i] * s_isl
            f[np.uint64(pr)] = x
            if abs(x) > norm:
                norm = abs(x)
        if qr >= 0:
            x = s.imag - q_spec[i]
            f[np.uint64(qr)] = x
            if abs(x) > norm:
                norm = abs(x)
    if not math.isfinite(norm):
        norm = np.inf
    return norm


@njit(cache=True)
def jacobian_island(isl, yp, yj, yx, v, bus_w, isl_ptr, isl_buses, va_col, vm_col, p_row, q_row, slack_col,
                    dim, jac):  # pragma: no cover
    """Fill the dense Jacobian of one island (column-major, ``jac[c * dim + r]``).

    Rows/columns as in :func:`mismatch_island`; columns ``va_col`` (angles), ``vm_col`` (PQ
    magnitudes) and ``slack_col[isl]`` (``∂P_i/∂s = −w_i``).

    Parameters
    ----------
    jac : ndarray(float64, >= dim*dim), output (overwritten)
    """
    for r in range(dim * dim):
        jac[r] = 0.0
    sc = slack_col[isl]
    for k in range(isl_ptr[isl], isl_ptr[isl + 1]):
        i = isl_buses[k]
        pr = p_row[i]
        qr = q_row[i]
        if pr < 0 and qr < 0:
            continue
        vi = v[i]
        cur = 0j
        for n in range(yp[i], yp[i + 1]):
            j = yj[n]
            yv = yx[n] * v[j]
            cur += yv
            ca = va_col[j]
            cm = vm_col[j]
            # off-diagonal parts: dS_i/dθ_j = -j V_i conj(Y_ij V_j); dS_i/d|V_j| = V_i conj(Y_ij V_j / |V_j|)
            d_a = -1j * vi * yv.conjugate()
            if ca >= 0:
                if pr >= 0:
                    jac[ca * dim + pr] += d_a.real
                if qr >= 0:
                    jac[ca * dim + qr] += d_a.imag
            if cm >= 0:
                d_m = vi * (yv / abs(v[j])).conjugate()
                if pr >= 0:
                    jac[cm * dim + pr] += d_m.real
                if qr >= 0:
                    jac[cm * dim + qr] += d_m.imag
        # diagonal parts: dS_i/dθ_i += j V_i conj(I_i); dS_i/d|V_i| += conj(I_i) V_i / |V_i|
        ca = va_col[i]
        cm = vm_col[i]
        if ca >= 0:
            d_a = 1j * vi * cur.conjugate()
            if pr >= 0:
                jac[ca * dim + pr] += d_a.real
            if qr >= 0:
                jac[ca * dim + qr] += d_a.imag
        if cm >= 0:
            d_m = cur.conjugate() * vi / abs(vi)
            if pr >= 0:
                jac[cm * dim + pr] += d_m.real
            if qr >= 0:
                jac[cm * dim + qr] += d_m.imag
        if sc >= 0 and pr >= 0:
            jac[sc * dim + pr] = -bus_w[i]


@njit(cache=True)
def lu_factor(a, off, n, piv, poff):  # pragma: no cover
    """LU factorisation with partial pivoting, in place (``P A = L U``, unit lower ``L``).

    ``a[off : off + n*n]`` holds the matrix column-major (``A[r, c] = a[off + c*n + r]``), so the
    inner loops run down contiguous columns; ``piv[poff + k]`` receives the row swapped with row
    ``k``. Returns False if a pivot is zero or not finite (singular matrix).
    """
    for k in range(n):
        col_k = a[off + k * n:off + k * n + n]
        p = k
        big = abs(col_k[k])
        for r in range(k + 1, n):
            x = abs(col_k[r])
            if x > big:
                big = x
                p = r
        piv[poff + k] = p
        if big == 0.0 or not math.isfinite(big):
            return False
        if p != k:
            for c in range(n):
                cc = off + c * n
                t = a[cc + k]
                a[cc + k] = a[cc + p]
                a[cc + p] = t
        inv = 1.0 / col_k[k]
        for r in range(k + 1, n):
            col_k[r] *= inv
        for c in range(k + 1, n):
            col_c = a[off + c * n:off + c * n + n]
            m = col_c[k]
            if m != 0.0:
                for r in range(k + 1, n):
                    col_c[r] -= col_k[r] * m
    return True


@njit(cache=True)
def lu_solve(a, off, n, piv, poff, b):  # pragma: no cover
    """Solve ``A x = b`` in place in ``b[:n]`` from the column-major factors of :func:`lu_factor`."""
    for k in range(n):
        p = piv[poff + k]
        if p != k:
            t = b[k]
            b[k] = b[p]
            b[p] = t
    for c in range(n):  # L y = P b, column by column
        x = b[c]
        if x != 0.0:
            col = a[off + c * n:off + c * n + n]
            for r in range(c + 1, n):
                b[r] -= col[r] * x
    for c in range(n - 1, -1, -1):  # U x = y
        col = a[off + c * n:off + c * n + n]
        x = b[c] / col[c]
        b[c] = x
        if x != 0.0:
            for r in range(c):
                b[r] -= col[r] * x


@njit(cache=True)
def lu_invert(a, off, n, piv, poff):  # pragma: no cover
    """Replace the factors of :func:`lu_factor` in ``a`` by the inverse matrix (column-major).

    Column ``j`` of ``A⁻¹`` solves ``A x = e_j``. For a matrix that is applied many times (the
    chord method) a matrix–vector product is several times cheaper than two triangular solves.
    """
    work = np.zeros(n * n)
    for j in range(n):
        col = work[j * n:j * n + n]
        col[j] = 1.0
        lu_solve(a, off, n, piv, poff, col)
    for k in range(n * n):
        a[off + k] = work[k]


@njit(cache=True)
def inv_apply(a, off, n, f, dx):  # pragma: no cover
    """``dx = A⁻¹ f`` with the column-major inverse from :func:`lu_invert`.

    Two columns per pass over ``dx`` (half its loads and stores; the inner loops vectorise). The
    sums run in column order, ``((A[r,0] f_0 + A[r,1] f_1) + A[r,2] f_2) + …``, so the result does not
    depend on the blocking (the chord iterations, hence the converged points, stay reproducible).
    """
    if n == 0:
        return
    x0 = f[0]
    col0 = a[off:off + n]
    for r in range(n):
        dx[r] = col0[r] * x0
    c = 1
    while c + 1 < n:
        x0 = f[c]
        x1 = f[c + 1]
        col0 = a[off + c * n:off + c * n + n]
        col1 = a[off + c * n + n:off + c * n + 2 * n]
        for r in range(n):
            dx[r] = (dx[r] + col0[r] * x0) + col1[r] * x1
        c += 2
    if c < n:
        x0 = f[c]
        col0 = a[off + c * n:off + c * n + n]
        for r in range(n):
            dx[r] += col0[r] * x0


@njit(cache=True, inline="always")
def _cis(dva):  # pragma: no cover
    """``(cos dva, sin dva)``; Taylor series replace cos/sin for small angles.

    For ``|dva| <= 2e-4`` rad (the chord updates after the first) two terms each agree with ``cos`` and
    ``sin`` to an ulp (the next ones, ``dva⁴/24`` and ``dva⁵/120``, are below one); for ``|dva| <= 0.05``
    rad the series to the 9th power does.
    """
    d2 = dva * dva
    if abs(dva) <= 2e-4:  # the chord iterations after the first one
        return 1.0 - 0.5 * d2, dva * (1.0 - d2 * (1.0 / 6.0))
    if abs(dva) <= 0.05:
        c = 1.0 - d2 * (0.5 - d2 * (1.0 / 24.0 - d2 * (1.0 / 720.0 - d2 * (1.0 / 40320.0))))
        s = dva * (1.0 - d2 * (1.0 / 6.0 - d2 * (1.0 / 120.0 - d2 * (1.0 / 5040.0 - d2 * (1.0 / 362880.0)))))
        return c, s
    return math.cos(dva), math.sin(dva)


@njit(cache=True)
def rotate(v, vm_old, vm_new, dva):  # pragma: no cover
    """``v · (vm_new / vm_old) · exp(j·dva)`` (:func:`_cis` for the sine and cosine)."""
    c, s = _cis(dva)
    return v * (vm_new / vm_old) * complex(c, s)


@njit(cache=True)
def turn(v, dva):  # pragma: no cover
    """``v · exp(j·dva)``: :func:`rotate` without a change of magnitude (same series, same rounding)."""
    c, s = _cis(dva)
    return v * complex(c, s)


@njit(cache=True)
def newton_island(isl, yp, yj, yx, v, vm, va, slack, p_spec, q_spec, bus_w, isl_ptr, isl_buses, isl_dim, va_col,
                  vm_col, p_row, q_row, slack_col, lu, lu_off, piv, piv_off, have_lu, f, dx, tol, max_iter,
                  refactor_ratio, f_given=False, sps=None, work=None):  # pragma: no cover
    """Newton–Raphson (polar form) on one island, from the voltages in ``v``/``vm``/``va``.

    Full Newton (``refactor_ratio <= 0``): the Jacobian is rebuilt and LU-factorised at every
    iteration. Chord method (``refactor_ratio > 0``): ``lu`` holds the *inverse* of the island's
    Jacobian (:func:`lu_invert`), reused while ``have_lu[isl]`` is set and each iteration reduces
    the mismatch by at least the factor ``refactor_ratio``; otherwise it is rebuilt at the current
    point. Stops when ``max|f| < tol``, after ``max_iter`` updates, on a non-finite or diverging
    mismatch, or on a singular Jacobian — never raises. ``f`` and ``dx`` are work vectors of at
    least the island's dimension; with ``f_given`` the caller has put the mismatch at the starting
    point in ``f`` already. On convergence ``f`` holds the final mismatch.

    With ``sps`` (a :class:`grid_models.sparse_lu.SparseLU`) an island it marks sparse is factorised
    and solved by :mod:`grid_models.sparse_lu` instead (``work``: a third work vector, of at least
    ``2 · dim + 2`` entries: the solves' slots); the updates and the refactorisation rule are the same.

    Returns
    -------
    converged : bool
    iterations : int
        Updates of the voltages.
    norm : float
        Final largest mismatch [pu].
    factorisations : int
    """
    dim = isl_dim[isl]
    lo = lu_off[isl]
    po = piv_off[isl]
    if f_given:
        norm = 0.0
        for r in range(dim):
            if not (abs(f[r]) <= norm):
                norm = abs(f[r]) if math.isfinite(f[r]) else np.inf
    else:
        norm = mismatch_island(isl, yp, yj, yx, v, p_spec, q_spec, bus_w, slack, isl_ptr, isl_buses, p_row, q_row,
                               f)
    prev = np.inf
    it = 0
    nfact = 0
    sc = slack_col[isl]
    sparse = False
    # where the update of each unknown is: the Jacobian column (dense), its place in the factors' order (sparse)
    col_a = va_col
    col_m = vm_col
    col_s = sc
    if sps is not None:
        sparse = sps[0][isl]
        slot_ptr, s_src, s_scale = sps[_sparse.F_SLOT_PTR], sps[_sparse.F_S_SRC], sps[_sparse.F_S_SCALE]
        lb_ptr, lb_row, lb_col, lb_val = (sps[_sparse.F_LB_PTR], sps[_sparse.F_LB_ROW], sps[_sparse.F_LB_COL],
                                          sps[_sparse.F_LB_VAL])
        ub_ptr, ub_row, ub_col, ub_val = (sps[_sparse.F_UB_PTR], sps[_sparse.F_UB_ROW], sps[_sparse.F_UB_COL],
                                          sps[_sparse.F_UB_VAL])
        if sparse:
            col_a = sps[_sparse.F_POS_VA]
            col_m = sps[_sparse.F_POS_VM]
            col_s = sps[_sparse.F_POS_SLACK][isl]
    while True:
        if norm < tol:
            return True, it, norm, nfact
        if it >= max_iter or not (norm < DIVERGED_PU):
            return False, it, norm, nfact
        if (not have_lu[isl]) or refactor_ratio <= 0.0 or norm > refactor_ratio * prev:
            nfact += 1
            if sparse:
                _sparse.jacobian_fill(isl, dim, yp, yj, yx, v, bus_w, isl_ptr, isl_buses, p_row, q_row, sps)
                if not _sparse.refactor(isl, dim, sps, work):
                    have_lu[isl] = False
                    return False, it, norm, nfact
            else:
                jacobian_island(isl, yp, yj, yx, v, bus_w, isl_ptr, isl_buses, va_col, vm_col, p_row, q_row,
                                slack_col, dim, lu[lo:lo + dim * dim])
                if not lu_factor(lu, lo, dim, piv, po):
                    have_lu[isl] = False
                    return False, it, norm, nfact
                if refactor_ratio > 0.0:
                    lu_invert(lu, lo, dim, piv, po)
            have_lu[isl] = True
        if sparse:
            _sparse.solve_permuted(isl, slot_ptr, s_src, s_scale, lb_ptr, lb_row, lb_col, lb_val, ub_ptr, ub_row, ub_col,
                                   ub_val, f, work)
            step = work
        elif refactor_ratio > 0.0:
            inv_apply(lu, lo, dim, f, dx)
            step = dx
        else:
            lu_solve(lu, lo, dim, piv, po, f)
            step = f
        # x_{k+1} = x_k - J^{-1} f
        for k in range(isl_ptr[isl], isl_ptr[isl + 1]):
            i = np.uint64(isl_buses[np.uint64(k)])  # unsigned: no wraparound test per access (see mismatch_island)
            ca = col_a[i]
            cm = col_m[i]
            if cm >= 0:
                dva = 0.0
                vm_old = vm[i]
                if ca >= 0:
                    dva = -step[np.uint64(ca)]
                    va[i] += dva
                vm_new = vm_old - step[np.uint64(cm)]
                vm[i] = vm_new
                v[i] = rotate(v[i], vm_old, vm_new, dva)
            elif ca >= 0:  # angle only (PV bus): |V| unchanged, no magnitude ratio
                dva = -step[np.uint64(ca)]
                va[i] += dva
                v[i] = turn(v[i], dva)
        if col_s >= 0:
            slack[isl] -= step[col_s]
        it += 1
        prev = norm
        norm = mismatch_island(isl, yp, yj, yx, v, p_spec, q_spec, bus_w, slack, isl_ptr, isl_buses, p_row, q_row,
                               f)


@njit(cache=True)
def ref_pickup(isl, yp, yj, yx, v, p_spec, isl_ptr, isl_buses, p_row):  # pragma: no cover
    """Active power the REF buses of a single-slack island inject beyond their schedule [pu].

    ``Σ_ref (Re S_i − P_i^spec)`` over the island's buses without a P equation: what its slack
    machines pick up (an ext_grid's import, a slack unit's output above its set point).
    """
    total = 0.0
    for k in range(isl_ptr[isl], isl_ptr[isl + 1]):
        i = isl_buses[k]
        if p_row[i] >= 0:
            continue
        acc = 0j
        for n in range(yp[i], yp[i + 1]):
            acc += yx[n] * v[yj[n]]
        total += (v[i] * acc.conjugate()).real - p_spec[i]
    return total


@njit(cache=True)
def solve_snapshot(yp, yj, yx, v, vm, va, slack, p_spec, q_spec, bus_w, isl_ptr, isl_buses, isl_dim, va_col,
                   vm_col, p_row, q_row, slack_col, lu, lu_off, piv, piv_off, have_lu, tol, max_iter,
                   refactor_ratio, isl_converged, isl_iterations, isl_norm):  # pragma: no cover
    """Solve every island of one operating point (see :func:`newton_island`).

    Fills ``isl_converged``, ``isl_iterations`` and ``isl_norm`` (per island) and returns the number of
    factorisations.
    """
    n_island = len(isl_dim)
    maxdim = 1
    for i in range(n_island):
        if isl_dim[i] > maxdim:
            maxdim = isl_dim[i]
    f = np.empty(maxdim)
    dx = np.empty(maxdim)
    nfact = 0
    for isl in range(n_island):
        if isl_dim[isl] == 0:
            isl_converged[isl] = True
            isl_iterations[isl] = 0
            isl_norm[isl] = 0.0
            continue
        # f_given a run-time False: the copy of newton_island that timeseries compiles for its dense islands
        ok, it, norm, nf = newton_island(isl, yp, yj, yx, v, vm, va, slack, p_spec, q_spec, bus_w, isl_ptr,
                                         isl_buses, isl_dim, va_col, vm_col, p_row, q_row, slack_col, lu, lu_off, piv,
                                         piv_off, have_lu, f, dx, tol, max_iter, refactor_ratio, np.bool_(False))
        isl_converged[isl] = ok
        isl_iterations[isl] = it
        isl_norm[isl] = norm
        nfact += nf
    return nfact


@njit(cache=True)
def branch_factors(kv_f, kv_t, i_rated_f, i_rated_t, base_mva, amp_f, amp_t, pct_f, pct_t):  # pragma: no cover
    """Per-branch constants of :func:`branch_flows`.

    ``amp = base_mva / (√3 · kV)`` turns a per-unit current into kA; ``pct = 100 / i_rated`` turns kA
    into loading percent (``inf`` for a zero rating).
    """
    sq3 = math.sqrt(3.0)
    for b in range(len(kv_f)):
        amp_f[b] = base_mva / (sq3 * kv_f[b])
        amp_t[b] = base_mva / (sq3 * kv_t[b])
        pct_f[b] = 100.0 / i_rated_f[b] if i_rated_f[b] != 0.0 else np.inf
        pct_t[b] = 100.0 / i_rated_t[b] if i_rated_t[b] != 0.0 else np.inf


@njit(cache=True)
def _loading(i_ka, pct):  # pragma: no cover
    if i_ka == 0.0:
        return 0.0
    return i_ka * pct


@njit(cache=True)
def branch_end(b, f, t, v, yff, yft, ytf, ytt):  # pragma: no cover
    """Complex power into branch ``b`` at its from and to ends [pu], and the squared end currents.

    ``I_f = y_ff V_f + y_ft V_t``, ``I_t = y_tf V_f + y_tt V_t``, ``S = V conj(I)`` at each end.
    """
    vf = v[f]
    vt = v[t]
    cf = yff[b] * vf + yft[b] * vt
    ct = ytf[b] * vf + ytt[b] * vt
    return (vf * cf.conjugate(), vt * ct.conjugate(), cf.real * cf.real + cf.imag * cf.imag,
            ct.real * ct.real + ct.imag * ct.imag)


@njit(cache=True)
def branch_flows(v, br_f, br_t, yff, yft, ytf, ytt, amp_f, amp_t, pct_f, pct_t, base_mva, p_f, q_f, p_t, q_t, i_ka,
                 loading):  # pragma: no cover
    """Branch flows at both ends for one voltage vector.

    ``I_f = y_ff V_f + y_ft V_t``, ``S_f = V_f conj(I_f)`` (likewise at the to end), currents
    ``|I| · amp`` [kA], loading ``max(i_f · pct_f, i_t · pct_t)`` [%] with the constants of
    :func:`branch_factors`. Branches with a dead end (``br_f < 0`` or ``br_t < 0``) and
    out-of-service branches (zero admittances) get zero flows.

    Parameters
    ----------
    p_f, q_f, p_t, q_t, i_ka, loading : ndarray(n_branch), outputs
        [MW], [Mvar], [MW], [Mvar], [kA] (larger end), [%].
    """
    for b in range(len(br_f)):
        f = br_f[b]
        t = br_t[b]
        if f < 0 or t < 0:
            p_f[b] = 0.0
            q_f[b] = 0.0
            p_t[b] = 0.0
            q_t[b] = 0.0
            i_ka[b] = 0.0
            loading[b] = 0.0
            continue
        sf, st, m_f, m_t = branch_end(b, f, t, v, yff, yft, ytf, ytt)
        p_f[b] = sf.real * base_mva
        q_f[b] = sf.imag * base_mva
        p_t[b] = st.real * base_mva
        q_t[b] = st.imag * base_mva
        a_f = math.sqrt(m_f) * amp_f[b]
        a_t = math.sqrt(m_t) * amp_t[b]
        i_ka[b] = max(a_f, a_t)
        loading[b] = max(_loading(a_f, pct_f[b]), _loading(a_t, pct_t[b]))


@njit(cache=True, nogil=True)
def timeseries(yp, yj, yx, v, vm, va, slack, bus_w, bus_island, isl_ptr, isl_buses, isl_dim, va_col, vm_col, p_row,
               q_row, slack_col, lu, lu_off, piv, piv_off, have_lu, pp_internal, p_pp_mw, q_pp_mw, tol, max_iter,
               refactor_ratio, base_mva, br_f, br_t, yff, yft, ytf, ytt, kv_f, kv_t, i_rated_f, i_rated_t,
               with_branches, vm_out, va_out, converged_out, iter_out, norm_out, slack_out, p_f_out, q_f_out,
               p_t_out, q_t_out, i_out, loading_out, sps):  # pragma: no cover
    """Solve a sequence of operating points, warm-started step to step (chord Newton per island).

    Step ``k`` sums the injections ``p_pp_mw[k]``, ``q_pp_mw[k]`` (per pandapower bus, in per unit) onto
    internal buses, solves every island by :func:`newton_island` from the previous step's voltages,
    slack and LU factors, and writes voltages per pandapower bus, the slack power per island [MW],
    convergence data and, if ``with_branches``, branch flows (see :func:`branch_flows`; ``with_branches``
    is 0: none, 1: all six quantities, 2: only ``p_f_out``, ``p_t_out`` and ``loading_out``, the
    other three outputs are then not touched and may have zero rows). Buses and
    branches of an island that did not converge get NaN for that step (``converged_out[k]`` is then
    False), and the island restarts the next step from its last converged point with a fresh
    Jacobian. Buses that are not energised are NaN throughout.

    The state arguments (``v``, ``vm``, ``va``, ``slack``, ``lu``, ``piv``, ``have_lu``) are
    updated in place, so consecutive chunks continue where the previous one stopped.

    Parameters
    ----------
    p_pp_mw, q_pp_mw : ndarray(float64, (n_steps, n_pp_bus))
        Net injection (generation − load) per pandapower bus [MW], [Mvar] (multiplied by ``1 / base_mva`` here:
        the caller's profile is read as it is, without a scaled copy).
    vm_out, va_out : ndarray((n_steps, n_pp_bus)), outputs
        [pu], [degree].
    converged_out : ndarray(bool, n_steps)
    iter_out : ndarray(int64, n_steps)
        Largest number of updates among the islands.
    norm_out : ndarray(float64, n_steps)
        Largest final mismatch [MVA].
    slack_out : ndarray((n_steps, n_island))
        Power the island's slack machines pick up beyond their set points [MW]: the distributed
        slack ``s``, or :func:`ref_pickup` for single-slack islands; NaN if the island failed.
    p_f_out, q_f_out, p_t_out, q_t_out, i_out, loading_out : ndarray((n_steps, n_branch)), outputs
    sps : SparseLU
        Islands factorised sparse (:mod:`grid_models.sparse_lu`; ``sps.is_sparse`` all False: none).

    Returns
    -------
    int
        Number of Jacobian factorisations.
    """
    n_steps = p_pp_mw.shape[0]
    n_pp = len(pp_internal)
    n_bus = len(v)
    n_island = len(isl_dim)
    n_br = len(br_f)
    maxdim = 1
    for i in range(n_island):
        if isl_dim[i] > maxdim:
            maxdim = isl_dim[i]
    dx = np.empty(maxdim)
    work = np.empty(2 * maxdim + 2)  # the sparse solves' slots: two per bus
    is_sparse = sps[0]
    # each island's mismatch at its last converged point: the next step starts from it, corrected by
    # the change of scheduled injections (the mismatch is linear in them), instead of re-evaluating
    f_all = np.empty(max(1, piv_off[n_island - 1] + isl_dim[n_island - 1]) if n_island else 1)
    f_valid = np.zeros(n_island, dtype=np.bool_)
    p_spec = np.zeros(n_bus)
    q_spec = np.zeros(n_bus)
    p_prev = np.zeros(n_bus)
    q_prev = np.zeros(n_bus)
    v_good = v.copy()
    vm_good = vm.copy()
    va_good = va.copy()
    slack_good = slack.copy()
    isl_ok = np.ones(n_island, dtype=np.bool_)
    amp_f = np.empty(n_br)
    amp_t = np.empty(n_br)
    pct_f = np.empty(n_br)
    pct_t = np.empty(n_br)
    branch_factors(kv_f, kv_t, i_rated_f, i_rated_t, base_mva, amp_f, amp_t, pct_f, pct_t)
    full = with_branches == 1
    # lean mode (2): loading = sqrt(max(|I_f|² (amp_f pct_f)², |I_t|² (amp_t pct_t)²)) where both ends are rated
    lsq_f = np.empty(n_br)
    lsq_t = np.empty(n_br)
    rated = np.empty(n_br, dtype=np.bool_)
    for b in range(n_br):
        lsq_f[b] = (amp_f[b] * pct_f[b]) ** 2
        lsq_t[b] = (amp_t[b] * pct_t[b]) ** 2
        rated[b] = math.isfinite(lsq_f[b]) and math.isfinite(lsq_t[b])
    nfact = 0
    rad2deg = 180.0 / math.pi
    inv_base = 1.0 / base_mva
    for k in range(n_steps):
        if k % 256 == 0:  # undo the rounding drift of the incremental rotations
            for i in range(n_bus):
                v[i] = vm[i] * complex(math.cos(va[i]), math.sin(va[i]))
            for isl in range(n_island):
                f_valid[isl] = False
        for i in range(n_bus):
            p_prev[i] = p_spec[i]
            q_prev[i] = q_spec[i]
            p_spec[i] = 0.0
            q_spec[i] = 0.0
        p_row_k = p_pp_mw[k]
        q_row_k = q_pp_mw[k]
        for b in range(n_pp):
            i = pp_internal[b]
            if i >= 0:
                u = np.uint64(i)  # unsigned indices: no wraparound test (see mismatch_island)
                p_spec[u] += p_row_k[b] * inv_base
                q_spec[u] += q_row_k[b] * inv_base
        all_ok = True
        iters = 0
        worst = 0.0
        for isl in range(n_island):
            ok = True
            dim = isl_dim[isl]
            if dim > 0:
                fo = piv_off[isl]
                f = f_all[fo:fo + dim]
                if f_valid[isl]:
                    for kk in range(isl_ptr[isl], isl_ptr[isl + 1]):
                        i = np.uint64(isl_buses[kk])
                        pr = p_row[i]
                        qr = q_row[i]
                        if pr >= 0:
                            f[np.uint64(pr)] -= p_spec[i] - p_prev[i]
                        if qr >= 0:
                            f[np.uint64(qr)] -= q_spec[i] - q_prev[i]
                if is_sparse[isl]:
                    ok, it, norm, nf = newton_island(isl, yp, yj, yx, v, vm, va, slack, p_spec, q_spec, bus_w,
                                                     isl_ptr, isl_buses, isl_dim, va_col, vm_col, p_row, q_row,
                                                     slack_col, lu, lu_off, piv, piv_off, have_lu, f, dx, tol,
                                                     max_iter, refactor_ratio, f_valid[isl], sps, work)
                else:  # without the sparse tuple: its ~160 array fields would cost more than a small island's step
                    ok, it, norm, nf = newton_island(isl, yp, yj, yx, v, vm, va, slack, p_spec, q_spec, bus_w,
                                                     isl_ptr, isl_buses, isl_dim, va_col, vm_col, p_row, q_row,
                                                     slack_col, lu, lu_off, piv, piv_off, have_lu, f, dx, tol,
                                                     max_iter, refactor_ratio, f_valid[isl])
                f_valid[isl] = ok
                nfact += nf
                if it > iters:
                    iters = it
                if not (norm <= worst):
                    worst = norm if math.isfinite(norm) else np.inf
            isl_ok[isl] = ok
            if not ok:
                slack_out[k, isl] = np.nan
            elif slack_col[isl] >= 0:
                slack_out[k, isl] = slack[isl] * base_mva
            else:
                slack_out[k, isl] = ref_pickup(isl, yp, yj, yx, v, p_spec, isl_ptr, isl_buses, p_row) * base_mva
            if ok:
                for kk in range(isl_ptr[isl], isl_ptr[isl + 1]):
                    i = np.uint64(isl_buses[kk])
                    v_good[i] = v[i]
                    vm_good[i] = vm[i]
                    va_good[i] = va[i]
                slack_good[isl] = slack[isl]
            else:
                all_ok = False
                for kk in range(isl_ptr[isl], isl_ptr[isl + 1]):
                    i = isl_buses[kk]
                    v[i] = v_good[i]
                    vm[i] = vm_good[i]
                    va[i] = va_good[i]
                slack[isl] = slack_good[isl]
                have_lu[isl] = False
        converged_out[k] = all_ok
        iter_out[k] = iters
        norm_out[k] = worst * base_mva
        vm_row_k = vm_out[k]
        va_row_k = va_out[k]
        for b in range(n_pp):
            i = pp_internal[b]
            if i >= 0 and isl_ok[np.uint64(bus_island[np.uint64(i)])]:
                u = np.uint64(i)
                vm_row_k[b] = vm[u]
                va_row_k[b] = va[u] * rad2deg
            else:
                vm_row_k[b] = np.nan
                va_row_k[b] = np.nan
        if with_branches:
            for b in range(n_br):
                fb = br_f[b]
                tb = br_t[b]
                if fb >= 0 and not isl_ok[np.uint64(bus_island[np.uint64(fb)])]:
                    p_f_out[k, b] = np.nan
                    p_t_out[k, b] = np.nan
                    loading_out[k, b] = np.nan
                    if full:
                        q_f_out[k, b] = np.nan
                        q_t_out[k, b] = np.nan
                        i_out[k, b] = np.nan
                    continue
                if fb < 0 or tb < 0:
                    p_f_out[k, b] = 0.0
                    p_t_out[k, b] = 0.0
                    loading_out[k, b] = 0.0
                    if full:
                        q_f_out[k, b] = 0.0
                        q_t_out[k, b] = 0.0
                        i_out[k, b] = 0.0
                    continue
                # as branch_flows, written straight into the outputs
                s_f, s_t, m_f, m_t = branch_end(b, np.uint64(fb), np.uint64(tb), v, yff, yft, ytf, ytt)
                p_f_out[k, b] = s_f.real * base_mva
                p_t_out[k, b] = s_t.real * base_mva
                if full:
                    q_f_out[k, b] = s_f.imag * base_mva
                    q_t_out[k, b] = s_t.imag * base_mva
                    a_f = math.sqrt(m_f) * amp_f[b]
                    a_t = math.sqrt(m_t) * amp_t[b]
                    i_out[k, b] = max(a_f, a_t)
                    loading_out[k, b] = max(_loading(a_f, pct_f[b]), _loading(a_t, pct_t[b]))
                elif rated[b]:  # one square root: max(|I_f| amp_f pct_f, |I_t| amp_t pct_t)
                    loading_out[k, b] = math.sqrt(max(m_f * lsq_f[b], m_t * lsq_t[b]))
                else:
                    loading_out[k, b] = max(_loading(math.sqrt(m_f) * amp_f[b], pct_f[b]),
                                            _loading(math.sqrt(m_t) * amp_t[b], pct_t[b]))
    return nfact


@njit(cache=True)
def add_element_columns(values, pos, active, sign, out):  # pragma: no cover
    """``out[t, pos[e]] += sign · values[t, e]`` for every active element ``e`` (element → bus sums).

    Parameters
    ----------
    values : ndarray(float64, (n_steps, n_element))
    pos : ndarray(int64, n_element)
        Column of ``out`` (bus) of each element.
    active : ndarray(bool, n_element)
    sign : float
    out : ndarray(float64, (n_steps, n_bus)), accumulated in place
    """
    n_steps, n_el = values.shape
    live = np.flatnonzero(active)
    order = live[np.argsort(pos[live], kind="mergesort")]
    # segments of elements on the same bus: sum in a register, then one store per bus
    n_seg = 0
    seg_start = np.empty(len(order) + 1, np.int64)
    seg_col = np.empty(len(order), np.int64)
    for k in range(len(order)):
        if k == 0 or pos[order[k]] != pos[order[k - 1]]:
            seg_start[n_seg] = k
            seg_col[n_seg] = pos[order[k]]
            n_seg += 1
    seg_start[n_seg] = len(order)
    # four steps at a time: four independent sums (the same order within each row, so the same rounding),
    # instead of one chain of dependent additions
    t = 0
    while t + 4 <= n_steps:
        v0, v1, v2, v3 = values[t], values[t + 1], values[t + 2], values[t + 3]
        for g in range(n_seg):
            a0 = a1 = a2 = a3 = 0.0
            for k in range(seg_start[g], seg_start[g + 1]):
                e = order[k]
                a0 += v0[e]
                a1 += v1[e]
                a2 += v2[e]
                a3 += v3[e]
            c = seg_col[g]
            out[t, c] += sign * a0
            out[t + 1, c] += sign * a1
            out[t + 2, c] += sign * a2
            out[t + 3, c] += sign * a3
        t += 4
    for t in range(t, n_steps):
        row = out[t]
        val = values[t]
        for g in range(n_seg):
            acc = 0.0
            for k in range(seg_start[g], seg_start[g + 1]):
                acc += val[order[k]]
            row[seg_col[g]] += sign * acc

