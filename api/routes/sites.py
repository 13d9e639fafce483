"""Reference sites: list, summary with islands at the nominal point, and the electrical network."""

from __future__ import annotations

import math
from functools import lru_cache

from fastapi import APIRouter, Depends, HTTPException

from ..deps import SiteId, require_read
from ..models import NetworkPublic, SitePublic, SitesPublic, SiteSummary
from ..problems import problem_doc
from ..services import UnknownSite, get_site, site_names

router = APIRouter(prefix="/sites", tags=["sites"], dependencies=[Depends(require_read)],
                   responses={404: problem_doc("no such site")})


def _load(site_id: str):
    try:
        return get_site(site_id)
    except UnknownSite as exc:
        raise HTTPException(404, str(exc)) from None


def _summary(name: str, site) -> SiteSummary:
    return SiteSummary(id=name, kind=site.kind, name=site.name, label=site.label, as_of=site.as_of, description=site.description)


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


@router.get("", response_model=SitesPublic)
def list_sites() -> SitesPublic:
    """List the reference sites, campuses and variants."""
    data = [_summary(n, get_site(n)) for n in site_names()]
    return SitesPublic(data=data, count=len(data))


@router.get("/{site_id}", response_model=SitePublic)
def read_site(site_id: SiteId) -> SitePublic:
    """One site: components, and its islands at the nominal design-day operating point."""
    site = _load(site_id)
    op = _operating_point(site_id)
    topo = {i.name: i for i in site.islands()}
    islands = []
    for isl in op.islands:
        t = topo[isl.name]
        islands.append({
            **{k: getattr(isl, k) for k in ("name", "grid_tied", "p_iso_mw", "p_derated_mw", "p_online_derated_mw",
                                           "p_grid_limit_mw", "p_bess_mw", "e_bess_mwh", "p_it_mw", "p_cooling_mw", "p_other_mw")},
            "p_load_mw": isl.p_load_mw, "margin_pct": _num(isl.margin_pct), "margin_bess_pct": _num(isl.margin_bess_pct),
            "buses": len(t.buses), "turbines": len(t.turbines), "bess": len(t.bess), "halls": len(t.halls),
        })
    kinds = ("buses", "lines", "transformers", "grid_ties", "boundaries", "turbines", "bess", "halls", "cooling_plants", "chillers", "loads")
    return SitePublic(**_summary(site_id, site).model_dump(), members=site.members, t_amb_design_c=op.t_amb_c,
                      components={k: len(getattr(site, k)) for k in kinds}, islands=islands)


@router.get("/{site_id}/network", response_model=NetworkPublic)
def read_network(site_id: SiteId) -> NetworkPublic:
    """The electrical network: buses, branches (lines and transformers), units (turbines, batteries, grid ties) and loads."""
    site = _load(site_id)
    island = {b: i.name for i in site.islands() for b in i.buses}
    op = _operating_point(site_id)

    def dump(c, **extra):
        d = c.model_dump(mode="json", exclude={"provenance", "buses", "count", "online_count", "number"})
        return {k: v for k, v in d.items() if v not in (None, "")} | extra

    buses = [dump(b, island=island[b.id]) for b in site.buses]
    branches = [dump(ln, type="line", island=island[ln.from_bus]) for ln in site.lines]
    branches += [dump(t, type="transformer", island=island[t.hv_bus]) for t in site.transformers]
    units = []
    for t in site.turbines:
        m = site.turbine_model(t)
        units.append(dump(t, type="turbine", island=island[t.bus], p_iso_mw=m.p_iso_mw, p_mw=op.p_turbine_mw.get(t.id, 0.0)))
    units += [dump(b, type="bess", island=island[b.bus], p_rated_mw=b.p_mw, e_rated_mwh=b.e_mwh) for b in site.bess]
    units += [dump(g, type="grid_tie", island=island[g.bus]) for g in site.grid_ties]
    units += [dump(b, type="boundary", island=island[b.bus]) for b in site.boundaries if b.direction == "import"]
    loads = [dump(h, type="hall", island=island[h.bus], p_mw=op.p_it_mw[h.id]) for h in site.halls]
    loads += [dump(c, type="chiller", island=island[c.bus], p_mw=op.p_chiller_mw.get(c.id, 0.0)) for c in site.chillers]
    loads += [dump(ld, type="load", island=island[ld.bus]) for ld in site.loads]
    loads += [dump(b, type="boundary", island=island[b.bus]) for b in site.boundaries if b.direction == "export"]
    return NetworkPublic(site=site_id, buses=buses, branches=branches, units=units, loads=loads)


@lru_cache(maxsize=32)
def _operating_point(site_id: str):
    """The nominal operating point of a reference site (cached: site files do not change while serving)."""
    from twin.operating_point import nominal_operating_point

    return nominal_operating_point(get_site(site_id))
