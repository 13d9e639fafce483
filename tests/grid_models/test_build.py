"""Every reference site and variant builds a pandapower net that pandapower itself solves well."""

from __future__ import annotations

import warnings

import numpy as np
import pandapower as pp
import pytest

from twin.operating_point import nominal_net
from grid_models.reference import island_buses, runpp_by_island
from sites import list_sites, load_site

warnings.filterwarnings("ignore", category=FutureWarning)
NAMES = list_sites()


@pytest.fixture(scope="module", params=NAMES)
def solved(request):
    site = load_site(request.param)
    net = nominal_net(site)
    runpp_by_island(net)
    return site, net


def test_reference_names_cover_every_site_and_variant():
    assert {"colossus1", "colossus1:sub22", "colossus1:2025", "colossus2", "colossus2:full-build", "southaven",
            "southaven:temp46", "southaven:permanent", "memphis", "memphis:full-build"} <= set(NAMES)


def test_nominal_point_within_limits(solved):
    """runpp converges; no branch above 100 %; every bus within 0.95-1.05 pu."""
    site, net = solved
    assert not net.res_bus.vm_pu.isna().any()
    assert net.res_bus.vm_pu.between(0.95, 1.05).all(), net.res_bus.vm_pu.describe()
    assert (net.res_line.loading_percent.fillna(0) <= 100).all()
    assert (net.res_trafo.loading_percent.fillna(0) <= 100).all()


def test_element_names_are_component_ids(solved):
    site, net = solved
    assert set(net.bus.name) == {b.id for b in site.buses}
    assert set(net.line.name) == {x.id for x in site.lines}
    assert set(net.gen.name[net.gen.kind == "turbine"]) == {t.id for t in site.turbines if t.state != "out"}
    assert set(net.load.name[net.load.kind == "hall"]) == {h.id for h in site.halls}


def test_power_balance_per_island(solved):
    """Sources = loads + losses in every island (independent of how the slack was shared)."""
    site, net = solved
    for buses in island_buses(net):
        gen = net.res_gen.p_mw[net.gen.bus.isin(buses) & net.gen.in_service].sum()
        ext = net.res_ext_grid.p_mw[net.ext_grid.bus.isin(buses)].sum()
        load = net.res_load.p_mw[net.load.bus.isin(buses)].sum()
        in_isl_line = net.line.from_bus.isin(buses)
        in_isl_trafo = net.trafo.hv_bus.isin(buses)
        losses = net.res_line.pl_mw[in_isl_line].sum() + net.res_trafo.pl_mw[in_isl_trafo].sum()
        assert gen + ext == pytest.approx(load + losses, abs=1e-6)


def test_islanded_slack_is_shared_by_droop(solved):
    """In an island without a grid tie, each unit's pick-up is proportional to P_rated/droop."""
    site, net = solved
    for buses in island_buses(net):
        if net.ext_grid.bus.isin(buses).any():
            continue
        g = net.gen[net.gen.bus.isin(buses) & net.gen.in_service]
        if g.empty:
            continue
        pick_up = net.res_gen.p_mw[g.index] - g.p_mw
        w = g.slack_weight / g.slack_weight.sum()
        assert pick_up.sum() > 0  # losses and auxiliaries at least
        np.testing.assert_allclose(pick_up.to_numpy(), (w * pick_up.sum()).to_numpy(), rtol=1e-6, atol=1e-9)
        assert g.slack.sum() == 1


def test_export_round_trip(tmp_path):
    from typer.testing import CliRunner

    from twin.cli import app

    out = tmp_path / "net.json"
    result = CliRunner().invoke(app, ["export-net", "memphis", "--out", str(out)])
    assert result.exit_code == 0, result.output
    net = pp.from_json(str(out))
    ref = nominal_net(load_site("memphis"))
    assert len(net.bus) == len(ref.bus) and list(net.gen.name) == list(ref.gen.name)
    runpp_by_island(net)
    runpp_by_island(ref)
    np.testing.assert_allclose(net.res_bus.vm_pu, ref.res_bus.vm_pu, atol=1e-9)


def test_grid_tied_turbines_hold_set_points():
    """With a grid tie, the ext_grid is the only slack: turbines produce exactly their set points."""
    net = nominal_net(load_site("colossus1"))
    runpp_by_island(net)
    on = net.gen.in_service & (net.gen.kind == "turbine")
    np.testing.assert_allclose(net.res_gen.p_mw[on], net.gen.p_mw[on], atol=1e-9)
    assert net.res_ext_grid.p_mw.iloc[0] > 150  # the design day needs more than the 150 MW firm import


def test_diagram(tmp_path):
    from grid_models.diagram import draw_one_line

    site = load_site("colossus2")
    out = draw_one_line(site, tmp_path / "c2.png", nominal_net(site))
    assert out.stat().st_size > 20_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
