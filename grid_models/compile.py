"""Compile a pandapower network into plain arrays for the load-flow kernels.

The admittance matrix, bus kinds, set points and branch tables come from pandapower's own internal
conversion (``_pd2ppc`` → the internal "ppci" case, ``makeYbus``), so that ``Ybus`` is the one
``pandapower.runpp`` solves: fused buses (closed bus–bus switches), auxiliary buses of open line
switches, out-of-service elements, isolated buses (set out of service by the connectivity check),
transformer taps and shift angles, shunts. What pandapower does *not* give for several islands at
once — per-island distributed slack — is computed here: islands are the connected components of the
in-service branches, and each island's participation factors are its machines' ``slack_weight``
normalised to sum to one (pandapower's ``_normalise_slack_weights``, per island).

Everything in :class:`GridArrays` is a plain numpy array or a scalar; kernels never see pandapower.
Internal bus numbering is pandapower's ppci order (``net._pd2ppc_lookups["bus"]``); the maps to
pandapower rows are stored alongside (``pp_bus_internal``, ``line_branch``, …).

Index sets for Newton–Raphson (per island, local to the island's block of the Jacobian):

* rows: one active-power equation per bus in ``bus_p_row >= 0``, one reactive-power equation per
  PQ bus (``bus_q_row``);
* columns: the angle of every bus but the island's angle reference (``bus_va_col``), the magnitude
  of every PQ bus (``bus_vm_col``), and, with distributed slack, the island's slack power
  (``island_slack_col``).

Without distributed slack the P rows are the PV and PQ buses and every REF bus keeps its angle.
With distributed slack every bus of the island has a P row, the island's first REF bus keeps the
angle and any further REF buses become PV buses (as in pandapower's ``newtonpf``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

__all__ = ["GridArrays", "compile_net", "PQ", "PV", "REF", "BRANCH_LINE", "BRANCH_TRAFO"]

#: bus kinds, as pypower's ``idx_bus`` (``PQ = 1``, ``PV = 2``, ``REF = 3``)
PQ, PV, REF = 1, 2, 3
#: branch kinds
BRANCH_LINE, BRANCH_TRAFO = 0, 1
#: machine kinds (rows of pandapower's internal generator table)
MACHINE_EXT_GRID, MACHINE_GEN = 0, 1

_UNSUPPORTED = ("ward", "xward", "motor", "asymmetric_load", "asymmetric_sgen", "dcline", "trafo3w",
                "impedance", "svc", "tcsc", "ssc", "vsc", "vsc_stacked", "vsc_bipolar", "line_dc", "source_dc",
                "load_dc")


class GridArrays(NamedTuple):
    """A pandapower network as plain arrays (per unit on ``base_mva`` unless a name says otherwise).

    Internal buses ``0 … n_bus-1`` are pandapower's energised buses in its internal (ppci) order.
    Branch arrays cover every line and transformer row of the net (in that order: lines, then
    trafos); ``branch_active`` marks those in the admittance matrix. Element arrays have one entry
    per row of the pandapower table (``load``, ``sgen``, ``storage``, ``gen``, ``ext_grid``,
    ``shunt``); ``*_pp_bus`` is the position of the element's bus in ``net.bus``.
    """

    base_mva: float
    distributed_slack: bool
    # --- internal buses
    n_bus: int
    ybus_data: np.ndarray  # complex128 [nnz], CSR values of Ybus [pu]
    ybus_indices: np.ndarray  # int64 [nnz]
    ybus_indptr: np.ndarray  # int64 [n_bus + 1]
    bus_kind: np.ndarray  # int64 [n_bus], PQ / PV / REF as pandapower sets them
    bus_vm_set_pu: np.ndarray  # float64 [n_bus], voltage set point (PV, REF), 1.0 elsewhere
    bus_va_set_degree: np.ndarray  # float64 [n_bus], angle of REF buses, 0 elsewhere
    bus_base_kv: np.ndarray  # float64 [n_bus]
    bus_pd_mw: np.ndarray  # float64 [n_bus], consumption of PQ elements (load + storage − sgen)
    bus_qd_mvar: np.ndarray  # float64 [n_bus]
    bus_pg_mw: np.ndarray  # float64 [n_bus], scheduled machine output (gen p_mw; ext_grid 0)
    bus_island: np.ndarray  # int64 [n_bus]
    bus_slack_weight: np.ndarray  # float64 [n_bus], participation factor (sums to 1 per distributed island)
    bus_va_col: np.ndarray  # int64 [n_bus], local Jacobian column of the angle, -1 if fixed
    bus_vm_col: np.ndarray  # int64 [n_bus], local column of the magnitude (PQ buses), -1 otherwise
    bus_p_row: np.ndarray  # int64 [n_bus], local row of the P equation, -1 if none
    bus_q_row: np.ndarray  # int64 [n_bus], local row of the Q equation (PQ buses), -1 otherwise
    # --- islands (connected components of the in-service branches)
    n_island: int
    island_bus_ptr: np.ndarray  # int64 [n_island + 1], CSR pointer into island_buses
    island_buses: np.ndarray  # int64 [n_bus], buses grouped by island, ascending within an island
    island_ref_bus: np.ndarray  # int64 [n_island], angle reference bus
    island_distributed: np.ndarray  # bool [n_island], slack shared by participation factors
    island_dim: np.ndarray  # int64 [n_island], size of the island's Jacobian block
    island_offset: np.ndarray  # int64 [n_island], start of the block in the global unknown vector
    island_slack_col: np.ndarray  # int64 [n_island], local column of the slack power, -1 if none
    # --- pandapower buses
    pp_bus_index: np.ndarray  # int64 [n_pp_bus], net.bus.index
    pp_bus_internal: np.ndarray  # int64 [n_pp_bus], internal bus, -1 if not energised
    pp_bus_vn_kv: np.ndarray  # float64 [n_pp_bus]
    # --- branches (lines, then trafos)
    branch_kind: np.ndarray  # int64 [n_branch], BRANCH_LINE / BRANCH_TRAFO
    branch_element: np.ndarray  # int64 [n_branch], row in net.line / net.trafo
    branch_active: np.ndarray  # bool [n_branch], in the admittance matrix
    branch_from: np.ndarray  # int64 [n_branch], internal from (hv) bus, -1 if not energised
    branch_to: np.ndarray  # int64 [n_branch], internal to (lv) bus, -1 if not energised
    branch_yff: np.ndarray  # complex128 [n_branch], 2-port admittances [pu], 0 if inactive
    branch_yft: np.ndarray
    branch_ytf: np.ndarray
    branch_ytt: np.ndarray
    branch_i_rated_from_ka: np.ndarray  # float64 [n_branch], current giving 100 % loading at from (hv)
    branch_i_rated_to_ka: np.ndarray  # float64 [n_branch], … at to (lv)
    line_branch: np.ndarray  # int64 [n_line], branch of each net.line row
    trafo_branch: np.ndarray  # int64 [n_trafo]
    # --- machines: pandapower's internal generator table (in-service ext_grids, then gens)
    machine_kind: np.ndarray  # int64 [n_machine], MACHINE_EXT_GRID / MACHINE_GEN
    machine_element: np.ndarray  # int64 [n_machine], row in net.ext_grid / net.gen
    machine_bus: np.ndarray  # int64 [n_machine], internal bus
    machine_p_mw: np.ndarray  # float64 [n_machine], scheduled output (ext_grid 0)
    machine_q_min_mvar: np.ndarray  # float64 [n_machine], used only to share Q between machines of a bus
    machine_q_max_mvar: np.ndarray
    machine_slack_weight: np.ndarray  # float64 [n_machine], raw slack_weight
    machine_is_ref: np.ndarray  # bool [n_machine], ext_grid or gen with slack=True
    # --- PQ elements and shunts, one entry per table row
    load_pp_bus: np.ndarray  # int64 [n_load]
    load_active: np.ndarray  # bool [n_load]
    load_p_mw: np.ndarray  # float64 [n_load], p_mw * scaling
    load_q_mvar: np.ndarray
    sgen_pp_bus: np.ndarray
    sgen_active: np.ndarray
    sgen_p_mw: np.ndarray
    sgen_q_mvar: np.ndarray
    storage_pp_bus: np.ndarray
    storage_active: np.ndarray
    storage_p_mw: np.ndarray
    storage_q_mvar: np.ndarray
    gen_pp_bus: np.ndarray  # int64 [n_gen]
    gen_active: np.ndarray  # bool [n_gen], in pandapower's generator table
    gen_p_mw: np.ndarray  # float64 [n_gen], p_mw * scaling
    ext_grid_pp_bus: np.ndarray
    ext_grid_active: np.ndarray
    shunt_pp_bus: np.ndarray
    shunt_active: np.ndarray
    shunt_p_mw: np.ndarray  # float64 [n_shunt], consumption at 1 pu (step and rated voltage applied)
    shunt_q_mvar: np.ndarray
    # --- DC load flow (initial point): P = B θ + p_shift
    dc_b_data: np.ndarray  # float64, CSR values of B [pu]
    dc_b_indices: np.ndarray  # int64
    dc_b_indptr: np.ndarray  # int64 [n_bus + 1]
    dc_p_shift_pu: np.ndarray  # float64 [n_bus], phase-shift injections plus shunt conductance [pu]
    va_init_degree: np.ndarray  # float64 [n_bus], DC load-flow angles for the nominal injections

    @property
    def n_pp_bus(self) -> int:
        """Number of rows of ``net.bus``."""
        return len(self.pp_bus_index)

    @property
    def n_branch(self) -> int:
        """Number of lines plus transformers."""
        return len(self.branch_kind)

    @property
    def n_unknown(self) -> int:
        """Size of the whole (block-diagonal) Jacobian."""
        return int(self.island_dim.sum())

    @property
    def p_mw(self) -> np.ndarray:
        """Scheduled net injection per internal bus (generation − load) [MW]."""
        return self.bus_pg_mw - self.bus_pd_mw

    @property
    def q_mvar(self) -> np.ndarray:
        """Scheduled net reactive injection per internal bus [Mvar] (machines' Q is solved)."""
        return -self.bus_qd_mvar

    def dc_b(self) -> sp.csr_matrix:
        """DC susceptance matrix B [pu] (``P = B θ + dc_p_shift_pu``)."""
        return sp.csr_matrix((self.dc_b_data, self.dc_b_indices, self.dc_b_indptr), shape=(self.n_bus, self.n_bus))

    def ybus(self) -> sp.csr_matrix:
        """Ybus as a scipy CSR matrix [pu]."""
        return sp.csr_matrix((self.ybus_data, self.ybus_indices, self.ybus_indptr), shape=(self.n_bus, self.n_bus))


def _check_supported(net) -> None:
    for element in _UNSUPPORTED:
        if element in net and len(net[element]) and net[element]["in_service"].astype(bool).any():
            raise NotImplementedError(f"grid_models load flow: in-service '{element}' elements are not supported")
    if len(net.load):
        cols = [c for c in ("const_z_p_percent", "const_i_p_percent", "const_z_q_percent", "const_i_q_percent",
                            "const_z_percent", "const_i_percent") if c in net.load]
        if cols and np.any(net.load[cols].fillna(0).to_numpy()[net.load.in_service.to_numpy(bool)] != 0):
            raise NotImplementedError("grid_models load flow: voltage-dependent loads are not supported")
    if len(net.shunt) and "step_dependency_table" in net.shunt and net.shunt.step_dependency_table.fillna(False).any():
        raise NotImplementedError("grid_models load flow: shunt step tables are not supported")


def _pandapower_internal_case(net, calculate_voltage_angles, trafo_model):
    """Run pandapower's own net → ppc → ppci conversion (the first half of ``runpp``)."""
    from pandapower.auxiliary import _init_runpp_options
    from pandapower.pd2ppc import _pd2ppc

    _init_runpp_options(
        net, algorithm="nr", calculate_voltage_angles=calculate_voltage_angles, init="flat", max_iteration=10,
        tolerance_mva=1e-8, trafo_model=trafo_model, trafo_loading="current", enforce_p_lims=False,
        enforce_q_lims=False, check_connectivity=True, voltage_depend_loads=False, passed_parameters=None,
        consider_line_temperature=False, distributed_slack=False, tdpf=False, lightsim2grid=False, numba=False,
    )
    empty = np.array([], dtype=np.int64)
    net._pd2ppc_lookups = {"bus": empty, "bus_dc": empty, "ext_grid": empty, "gen": empty, "branch": empty,
                           "branch_dc": empty}
    return _pd2ppc(net)


def _row_positions(lookup, index):
    """pandapower element labels → lookup values, -1 where the lookup is missing."""
    lookup = np.asarray(lookup)
    out = np.full(len(index), -1, dtype=np.int64)
    if lookup.size:
        ok = index < len(lookup)
        out[ok] = lookup[index[ok]]
    return out


def _pq_element(net, element, is_elements, scaled=True):
    n = len(net[element])
    if not n:
        z = np.zeros(0)
        return np.zeros(0, np.int64), np.zeros(0, bool), z, z.copy()
    tab = net[element]
    pos = net.bus.index.get_indexer(tab.bus.to_numpy())
    active = np.asarray(is_elements.get(element, np.zeros(n, bool)), dtype=bool)
    scaling = tab["scaling"].to_numpy(float) if scaled and "scaling" in tab else np.ones(n)
    p = tab["p_mw"].to_numpy(float) * scaling
    q = tab["q_mvar"].to_numpy(float) * scaling
    return pos.astype(np.int64), active, p, q


def compile_net(net, *, distributed_slack: bool = True, calculate_voltage_angles: bool = True,
                trafo_model: str = "t") -> GridArrays:
    """Compile a pandapower network into :class:`GridArrays`.

    Parameters
    ----------
    net : pandapowerNet
        The network. pandapower's bookkeeping fields (``net._ppc``, ``net._pd2ppc_lookups``,
        ``net._options``, ``net._is_elements``) are overwritten, as ``pandapower.runpp`` does.
    distributed_slack : bool
        Share each island's slack between its machines in proportion to ``slack_weight`` (ext_grid
        and gen), as ``pandapower.runpp(distributed_slack=True)`` does for one island; islands whose
        weights sum to zero keep a single slack. If False, REF buses take all of it.
    calculate_voltage_angles : bool
        As in ``pandapower.runpp``: consider ext_grid ``va_degree`` and transformer shift angles.
    trafo_model : {"t", "pi"}
        Transformer equivalent circuit, as in ``pandapower.runpp``.

    Returns
    -------
    GridArrays

    Raises
    ------
    NotImplementedError
        For elements whose physics or results the kernels do not cover (voltage-dependent loads,
        wards, 3-winding transformers, DC lines, FACTS).
    """
    from pandapower.pypower.idx_brch import BR_X, F_BUS, SHIFT, T_BUS, TAP
    from pandapower.pypower.idx_bus import BASE_KV, BS, BUS_TYPE, GS, PD, QD, VA, VM
    from pandapower.pypower.idx_gen import GEN_BUS, PG, QMAX, QMIN, SL_FAC
    from pandapower.pypower.makeYbus import branch_vectors, makeYbus

    _check_supported(net)
    ppc, ppci = _pandapower_internal_case(net, calculate_voltage_angles, trafo_model)
    base_mva = float(ppci["baseMVA"])
    bus = ppci["bus"]
    n_bus = bus.shape[0]

    # --- admittances, exactly as pandapower's Newton-Raphson sees them
    ybus, _, _ = makeYbus(base_mva, bus, ppci["branch"])
    ybus = sp.csr_matrix(ybus)
    ybus.sum_duplicates()
    ybus.sort_indices()

    kind = bus[:, BUS_TYPE].real.astype(np.int64)
    vm_set = np.where(kind != PQ, bus[:, VM].real, 1.0)
    va_set = np.where(kind == REF, bus[:, VA].real, 0.0)
    base_kv = bus[:, BASE_KV].real.copy()
    pd_mw = bus[:, PD].real.copy()
    qd_mvar = bus[:, QD].real.copy()

    # --- machines (pandapower's internal generator table: in-service ext_grids, gens)
    gen_is = ppci["internal"]["gen_is"]
    gen_tab = ppc["gen"]
    lookups = net._pd2ppc_lookups
    n_ppc_gen = gen_tab.shape[0]
    m_kind = np.full(n_ppc_gen, -1, np.int64)
    m_elem = np.full(n_ppc_gen, -1, np.int64)
    for k, element in ((MACHINE_EXT_GRID, "ext_grid"), (MACHINE_GEN, "gen")):
        if len(net[element]) and lookups.get(element) is not None:
            rows = _row_positions(lookups[element], net[element].index.to_numpy())
            ok = rows >= 0
            m_kind[rows[ok]] = k
            m_elem[rows[ok]] = np.flatnonzero(ok)
    keep = gen_is & (m_kind >= 0)
    m_kind, m_elem = m_kind[keep], m_elem[keep]
    m_bus = gen_tab[keep, GEN_BUS].real.astype(np.int64)
    m_p = gen_tab[keep, PG].real.copy()
    m_qmin = gen_tab[keep, QMIN].real.copy()
    m_qmax = gen_tab[keep, QMAX].real.copy()
    m_w = np.nan_to_num(gen_tab[keep, SL_FAC].real.copy())
    ref_gens = np.zeros(n_ppc_gen, bool)
    ref_gens[np.asarray(ppci["internal"]["ref_gens"], dtype=np.int64)] = True
    m_ref = ref_gens[keep]
    pg_mw = np.bincount(m_bus, weights=m_p, minlength=n_bus)

    # --- islands
    br = ppci["branch"]
    f_int = br[:, F_BUS].real.astype(np.int64)
    t_int = br[:, T_BUS].real.astype(np.int64)

    # --- DC model: branch susceptance 1/(x·tap), phase-shift injections, shunt conductance
    tap = br[:, TAP].real.copy()
    tap[tap == 0] = 1.0
    with np.errstate(divide="ignore"):
        b_br = np.where(br[:, BR_X].real != 0, 1.0 / (br[:, BR_X].real * tap), 0.0)
    nl = len(b_br)
    cft = sp.csr_matrix((np.r_[np.ones(nl), -np.ones(nl)], (np.r_[np.arange(nl), np.arange(nl)], np.r_[f_int, t_int])),
                        shape=(nl, n_bus))
    dc_b = (cft.T @ sp.diags(b_br) @ cft).tocsr()
    dc_b.sum_duplicates()
    dc_b.sort_indices()
    p_shift = cft.T @ (-b_br * np.deg2rad(br[:, SHIFT].real)) + bus[:, GS].real / base_mva
    adj = sp.coo_matrix((np.ones(len(f_int)), (f_int, t_int)), shape=(n_bus, n_bus))
    n_island, labels = connected_components(adj, directed=False)
    # number islands by their first bus, so the order is stable
    first = np.full(n_island, n_bus, np.int64)
    np.minimum.at(first, labels, np.arange(n_bus))
    relabel = np.empty(n_island, np.int64)
    relabel[np.argsort(first, kind="stable")] = np.arange(n_island)
    island = relabel[labels]
    order = np.lexsort((np.arange(n_bus), island))
    isl_ptr = np.zeros(n_island + 1, np.int64)
    isl_ptr[1:] = np.cumsum(np.bincount(island, minlength=n_island))

    # --- distributed slack: per-island participation factors
    bus_w = np.zeros(n_bus)
    np.add.at(bus_w, m_bus, m_w)
    isl_w = np.bincount(island, weights=bus_w, minlength=n_island)
    distributed = np.zeros(n_island, bool)
    if distributed_slack:
        distributed = isl_w > 1e-12 * max(1.0, np.abs(bus_w).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        bus_w = np.where(distributed[island], bus_w / np.where(isl_w[island] != 0, isl_w[island], 1.0), 0.0)

    # --- Newton plan (local indices per island)
    ref_bus = np.full(n_island, -1, np.int64)
    va_col = np.full(n_bus, -1, np.int64)
    vm_col = np.full(n_bus, -1, np.int64)
    p_row = np.full(n_bus, -1, np.int64)
    q_row = np.full(n_bus, -1, np.int64)
    dim = np.zeros(n_island, np.int64)
    slack_col = np.full(n_island, -1, np.int64)
    for i in range(n_island):
        buses = order[isl_ptr[i]:isl_ptr[i + 1]]
        refs = buses[kind[buses] == REF]
        if len(refs) == 0:  # pandapower's connectivity check leaves no island without a reference
            raise ValueError(f"island {i} has no reference bus")
        ref_bus[i] = refs[0]
        fixed_angle = refs[:1] if distributed[i] else refs
        with_p = buses if distributed[i] else buses[kind[buses] != REF]
        pq = buses[kind[buses] == PQ]
        ang = np.setdiff1d(buses, fixed_angle)
        p_row[with_p] = np.arange(len(with_p))
        q_row[pq] = len(with_p) + np.arange(len(pq))
        va_col[ang] = np.arange(len(ang))
        vm_col[pq] = len(ang) + np.arange(len(pq))
        dim[i] = len(with_p) + len(pq)
        if distributed[i]:
            slack_col[i] = len(ang) + len(pq)
        assert dim[i] == len(ang) + len(pq) + int(distributed[i])
    offset = np.zeros(n_island, np.int64)
    offset[1:] = np.cumsum(dim)[:-1]

    # --- pandapower buses
    pp_index = net.bus.index.to_numpy().astype(np.int64)
    pp_internal = _row_positions(lookups["bus"], pp_index)
    pp_internal[(pp_internal >= n_bus) | ~net.bus.in_service.to_numpy(bool)] = -1

    # --- branches: every line and trafo row, with pandapower's 2-port admittances
    n_ppc_bus_energised = n_bus
    ppc_br = ppc["branch"]
    branch_is = ppci["internal"]["branch_is"]
    ytt, yff, yft, ytf = branch_vectors(ppc_br, ppc_br.shape[0])
    kinds, elems, rows = [], [], []
    line_branch = np.full(len(net.line), -1, np.int64)
    trafo_branch = np.full(len(net.trafo), -1, np.int64)
    i_from, i_to = [], []
    for k, element, target in ((BRANCH_LINE, "line", line_branch), (BRANCH_TRAFO, "trafo", trafo_branch)):
        if element not in lookups["branch"] or not len(net[element]):
            continue
        f0, f1 = lookups["branch"][element]
        n = f1 - f0
        target[:] = len(kinds) + np.arange(n)
        kinds += [k] * n
        elems += list(range(n))
        rows += list(range(f0, f1))
        tab = net[element]
        if element == "line":
            rated = tab.max_i_ka.to_numpy(float) * tab.df.to_numpy(float) * tab.parallel.to_numpy(float)
            i_from.append(rated)
            i_to.append(rated)
        else:
            s_rated = tab.sn_mva.to_numpy(float) * tab.parallel.to_numpy(float) * tab.df.to_numpy(float)
            i_from.append(s_rated / (np.sqrt(3) * tab.vn_hv_kv.to_numpy(float)))
            i_to.append(s_rated / (np.sqrt(3) * tab.vn_lv_kv.to_numpy(float)))
    rows = np.asarray(rows, np.int64)
    b_active = branch_is[rows].astype(bool) if len(rows) else np.zeros(0, bool)
    b_from = ppc_br[rows, F_BUS].real.astype(np.int64) if len(rows) else np.zeros(0, np.int64)
    b_to = ppc_br[rows, T_BUS].real.astype(np.int64) if len(rows) else np.zeros(0, np.int64)
    b_from[b_from >= n_ppc_bus_energised] = -1
    b_to[b_to >= n_ppc_bus_energised] = -1

    def _ys(y):
        return np.where(b_active, y[rows], 0.0).astype(np.complex128) if len(rows) else np.zeros(0, np.complex128)

    is_el = net._is_elements
    load = _pq_element(net, "load", is_el)
    sgen = _pq_element(net, "sgen", is_el)
    storage = _pq_element(net, "storage", is_el)
    n_gen = len(net.gen)
    gen_pp_bus = net.bus.index.get_indexer(net.gen.bus.to_numpy()).astype(np.int64) if n_gen else np.zeros(0, np.int64)
    gen_active = np.zeros(n_gen, bool)
    gen_active[m_elem[m_kind == MACHINE_GEN]] = True
    gen_p = (net.gen.p_mw.to_numpy(float) * net.gen.scaling.to_numpy(float)) if n_gen else np.zeros(0)
    n_eg = len(net.ext_grid)
    eg_pp_bus = net.bus.index.get_indexer(net.ext_grid.bus.to_numpy()).astype(np.int64) if n_eg else np.zeros(0, np.int64)
    eg_active = np.zeros(n_eg, bool)
    eg_active[m_elem[m_kind == MACHINE_EXT_GRID]] = True

    n_sh = len(net.shunt)
    if n_sh:
        sh = net.shunt
        sh_pp_bus = net.bus.index.get_indexer(sh.bus.to_numpy()).astype(np.int64)
        sh_active = np.asarray(is_el.get("shunt", np.zeros(n_sh, bool)), bool)
        sh_internal = pp_internal[sh_pp_bus]
        vn = sh.vn_kv.to_numpy(float)
        bkv = np.where(sh_internal >= 0, base_kv[np.maximum(sh_internal, 0)], net.bus.vn_kv.to_numpy(float)[sh_pp_bus])
        v_ratio = (bkv / vn) ** 2
        sh_p = sh.p_mw.to_numpy(float) * sh.step.to_numpy(float) * v_ratio
        sh_q = sh.q_mvar.to_numpy(float) * sh.step.to_numpy(float) * v_ratio
    else:
        sh_pp_bus, sh_active, sh_p, sh_q = np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0), np.zeros(0)

    arrays = GridArrays(
        base_mva=base_mva, distributed_slack=bool(distributed_slack), n_bus=n_bus,
        ybus_data=ybus.data.astype(np.complex128), ybus_indices=ybus.indices.astype(np.int64),
        ybus_indptr=ybus.indptr.astype(np.int64), bus_kind=kind, bus_vm_set_pu=vm_set, bus_va_set_degree=va_set,
        bus_base_kv=base_kv, bus_pd_mw=pd_mw, bus_qd_mvar=qd_mvar, bus_pg_mw=pg_mw, bus_island=island,
        bus_slack_weight=bus_w, bus_va_col=va_col, bus_vm_col=vm_col, bus_p_row=p_row, bus_q_row=q_row,
        n_island=int(n_island), island_bus_ptr=isl_ptr, island_buses=order.astype(np.int64), island_ref_bus=ref_bus,
        island_distributed=distributed, island_dim=dim, island_offset=offset, island_slack_col=slack_col,
        pp_bus_index=pp_index, pp_bus_internal=pp_internal, pp_bus_vn_kv=net.bus.vn_kv.to_numpy(float),
        branch_kind=np.asarray(kinds, np.int64), branch_element=np.asarray(elems, np.int64), branch_active=b_active,
        branch_from=b_from, branch_to=b_to, branch_yff=_ys(yff), branch_yft=_ys(yft), branch_ytf=_ys(ytf),
        branch_ytt=_ys(ytt),
        branch_i_rated_from_ka=np.concatenate(i_from) if i_from else np.zeros(0),
        branch_i_rated_to_ka=np.concatenate(i_to) if i_to else np.zeros(0),
        line_branch=line_branch, trafo_branch=trafo_branch,
        machine_kind=m_kind, machine_element=m_elem, machine_bus=m_bus, machine_p_mw=m_p, machine_q_min_mvar=m_qmin,
        machine_q_max_mvar=m_qmax, machine_slack_weight=m_w, machine_is_ref=m_ref,
        load_pp_bus=load[0], load_active=load[1], load_p_mw=load[2], load_q_mvar=load[3],
        sgen_pp_bus=sgen[0], sgen_active=sgen[1], sgen_p_mw=sgen[2], sgen_q_mvar=sgen[3],
        storage_pp_bus=storage[0], storage_active=storage[1], storage_p_mw=storage[2], storage_q_mvar=storage[3],
        gen_pp_bus=gen_pp_bus, gen_active=gen_active, gen_p_mw=gen_p, ext_grid_pp_bus=eg_pp_bus,
        ext_grid_active=eg_active, shunt_pp_bus=sh_pp_bus, shunt_active=sh_active, shunt_p_mw=sh_p, shunt_q_mvar=sh_q,
        dc_b_data=dc_b.data.astype(np.float64), dc_b_indices=dc_b.indices.astype(np.int64),
        dc_b_indptr=dc_b.indptr.astype(np.int64), dc_p_shift_pu=np.asarray(p_shift, dtype=np.float64),
        va_init_degree=np.zeros(n_bus),
    )
    return arrays._replace(va_init_degree=dc_angles_degree(arrays, arrays.p_mw))


def dc_angles_degree(arrays: GridArrays, p_mw: np.ndarray) -> np.ndarray:
    """DC load-flow angles, the usual initial point of Newton–Raphson.

    Solves ``B θ = P − p_shift`` per island (``B`` from the branch reactances and tap ratios,
    ``p_shift`` the phase-shifter injections and shunt conductances; the DC load flow of
    Stott, Jardim & Alsaç, "DC power flow revisited", IEEE Trans. Power Syst. 24(3), 2009) with the
    angles of the island's fixed-angle buses held at their set points; the slack absorbs the
    imbalance. Falls back to the set-point angles if B is singular.

    Parameters
    ----------
    arrays : GridArrays
    p_mw : ndarray, shape (n_bus,)
        Net active injection per internal bus [MW].

    Returns
    -------
    ndarray, shape (n_bus,)
        Angles [degree].
    """
    import scipy.sparse.linalg as spla

    va = np.deg2rad(arrays.bus_va_set_degree.copy())
    free = arrays.bus_va_col >= 0
    if not free.any():
        return np.rad2deg(va)
    b = arrays.dc_b()
    fixed = ~free
    rhs = (p_mw[free] / arrays.base_mva - arrays.dc_p_shift_pu[free]) - b[free][:, fixed] @ va[fixed]
    try:
        va[free] = spla.spsolve(b[free][:, free].tocsc(), rhs)
    except Exception:  # singular B: keep the set points
        return arrays.bus_va_set_degree.copy()
    if not np.all(np.isfinite(va)):
        return arrays.bus_va_set_degree.copy()
    return np.rad2deg(va)
