"""Site → pandapower network.

Element names are the site's qualified component ids (``colossus1/smt130-01``), so results map back
to the site file. Extra columns record what each element is: ``net.gen.kind`` (``turbine``/``bess``),
``net.load.kind`` (``hall``/``chiller``/``load``/``boundary``), ``net.bus.island``.

References per island (docs/physics.md §4): an island with a grid tie is held by it (an
``ext_grid``, the only slack: turbines and batteries keep their set points). An islanded microgrid has
no ``ext_grid``: its largest online turbine (or battery) is the angle reference (``slack=True``) and
every online turbine and battery carries ``slack_weight = P_rated / droop``, so
``pandapower.runpp(net, distributed_slack=True)`` shares the mismatch as their droop governors would.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandapower is imported when a net is built (its import alone takes seconds)
    import pandapower as pp

__all__ = ["build_net"]


def build_net(site, op) -> "pp.pandapowerNet":
    """Build the pandapower network of a site at an operating point.

    Parameters
    ----------
    site : sites.Site
        A loaded site or campus (``sites.load_site``).
    op : twin.operating_point.OperatingPoint
        The injections to set (for instance ``twin.operating_point.nominal_operating_point(site)``, or the
        engine's own starting point; ``twin.operating_point.nominal_net`` does both).

    Returns
    -------
    pandapowerNet
        ``f_hz = 60``. Run it with ``pandapower.runpp(net, distributed_slack=True)``.
    """
    import pandapower as pp

    net = pp.create_empty_network(name=site.label, f_hz=60.0)
    islands = site.islands()
    island_of = {b: isl for isl in islands for b in isl.buses}
    bus_ix = {}
    for b in site.buses:
        bus_ix[b.id] = pp.create_bus(net, vn_kv=b.vn_kv, name=b.id, type="b", zone=b.id.split("/")[0])
    net.bus["island"] = [island_of[b.id].name for b in site.buses]

    for ln in site.lines:
        pp.create_line_from_parameters(
            net, bus_ix[ln.from_bus], bus_ix[ln.to_bus], length_km=ln.length_km, r_ohm_per_km=ln.r_ohm_per_km,
            x_ohm_per_km=ln.x_ohm_per_km, c_nf_per_km=ln.c_nf_per_km, max_i_ka=ln.max_i_ka, parallel=ln.parallel,
            name=ln.id, type=ln.kind,
        )
    for t in site.transformers:
        pp.create_transformer_from_parameters(
            net, bus_ix[t.hv_bus], bus_ix[t.lv_bus], sn_mva=t.sn_mva, vn_hv_kv=t.vn_hv_kv, vn_lv_kv=t.vn_lv_kv,
            vk_percent=t.vk_percent, vkr_percent=t.vkr_percent, pfe_kw=t.pfe_kw, i0_percent=t.i0_percent,
            shift_degree=t.shift_degree, tap_side="hv", tap_pos=t.tap_pos, tap_neutral=t.tap_neutral,
            tap_min=t.tap_min, tap_max=t.tap_max, tap_step_percent=t.tap_step_percent, parallel=t.parallel,
            name=t.id,
        )

    for g in site.grid_ties:
        pp.create_ext_grid(net, bus_ix[g.bus], vm_pu=g.vm_pu, name=g.id, slack_weight=1.0)
    for bd in site.boundaries:
        if bd.direction == "import":
            pp.create_ext_grid(net, bus_ix[bd.bus], vm_pu=bd.vm_pu, name=bd.id, slack_weight=1.0)

    # Generating units: turbines, then batteries (one vectorised call); the islanded reference is chosen afterwards.
    units = []  # bus, p, vm, sn, name, in_service, p_max, p_min, kind, weight
    for t in site.turbines:
        if t.state == "out":
            continue
        m = site.turbine_model(t)
        online = t.state == "online"
        units.append((t.bus, op.p_turbine_mw.get(t.id, 0.0), t.vm_pu, m.p_iso_mw / m.pf, t.id, online, m.p_iso_mw, 0.0,
                      "turbine", m.p_iso_mw / m.droop_pct if online else 0.0))
    for b in site.bess:
        units.append((b.bus, op.p_bess_mw.get(b.id, 0.0), 1.0, b.p_mw, b.id, True, b.p_mw, -b.p_mw, "bess",
                      b.p_mw / b.droop_pct))
    if units:
        cols = list(zip(*units))
        pp.create_gens(net, [bus_ix[x] for x in cols[0]], p_mw=list(cols[1]), vm_pu=list(cols[2]), sn_mva=list(cols[3]),
                       name=list(cols[4]), in_service=list(cols[5]), max_p_mw=list(cols[6]), min_p_mw=list(cols[7]))
    kinds = [u[8] for u in units]
    weights = [u[9] for u in units]
    net.gen["kind"] = kinds
    net.gen["slack_weight"] = 0.0
    net.gen["slack"] = False
    gen_island = [island_of[net.bus.at[b, "name"]] for b in net.gen.bus]
    for isl in islands:
        if isl.grid_tied:
            continue
        idx = [i for i, gi in enumerate(gen_island) if gi is isl and net.gen.in_service.iat[i]]
        if not idx:
            continue
        for i in idx:
            net.gen.iat[i, net.gen.columns.get_loc("slack_weight")] = weights[i]
        ref = max(idx, key=lambda i: (kinds[i] == "turbine", net.gen.sn_mva.iat[i]))
        net.gen.iat[ref, net.gen.columns.get_loc("slack")] = True

    rows: list[tuple[str, float, float, str, str]] = []  # bus, p, pf, name, kind
    rows += [(h.bus, op.p_it_mw[h.id], h.pf, h.id, "hall") for h in site.halls]
    rows += [(c.bus, op.p_chiller_mw.get(c.id, 0.0), c.pf, c.id, "chiller") for c in site.chillers]
    rows += [(ld.bus, op.p_load_mw[ld.id], ld.pf, ld.id, "load") for ld in site.loads]
    rows += [(bd.bus, op.p_load_mw[bd.id], 0.98, bd.id, "boundary") for bd in site.boundaries if bd.direction == "export"]
    load_kinds = [r[4] for r in rows]
    if rows:  # one vectorised call: hundreds of chillers make per-row creation slow
        p_mw = [r[1] for r in rows]
        pp.create_loads(net, [bus_ix[r[0]] for r in rows], p_mw=p_mw,
                        q_mvar=[p * math.tan(math.acos(r[2])) for p, r in zip(p_mw, rows)], name=[r[3] for r in rows])
    net.load["kind"] = load_kinds
    return net
