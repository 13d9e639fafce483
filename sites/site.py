"""The loaded, expanded site: components with qualified ids, and its electrical islands."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .schema import (
    Bess,
    Boundary,
    Bus,
    Chiller,
    CoolingPlant,
    GridTie,
    Hall,
    Line,
    Load,
    Permit,
    Protection,
    Transformer,
    Turbine,
    TurbineModel,
    Weather,
)

__all__ = ["Site", "Island"]


@dataclass
class Island:
    """A set of buses joined by lines and transformers, and what sits on them."""

    name: str
    buses: list[str]
    grid_ties: list[str] = field(default_factory=list)
    import_boundaries: list[str] = field(default_factory=list)
    turbines: list[str] = field(default_factory=list)
    bess: list[str] = field(default_factory=list)
    halls: list[str] = field(default_factory=list)
    chillers: list[str] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)
    export_boundaries: list[str] = field(default_factory=list)

    @property
    def has_source(self) -> bool:
        return bool(self.grid_ties or self.import_boundaries or self.turbines or self.bess)

    @property
    def has_load(self) -> bool:
        return bool(self.halls or self.chillers or self.loads or self.export_boundaries)

    @property
    def grid_tied(self) -> bool:
        """Held by a stiff external source (utility tie or standalone import boundary)."""
        return bool(self.grid_ties or self.import_boundaries)


class Site(BaseModel):
    """A site or a campus, validated and expanded (one object per unit, ids ``site/component``)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    label: str
    name: str
    kind: Literal["site", "campus"]
    variant: str | None = None
    description: str = ""
    as_of: str = ""
    members: list[str]
    files: list[str]
    weather: Weather
    turbine_models: dict[str, TurbineModel]
    buses: list[Bus]
    lines: list[Line]
    transformers: list[Transformer]
    grid_ties: list[GridTie]
    boundaries: list[Boundary]
    turbines: list[Turbine]
    bess: list[Bess]
    halls: list[Hall]
    cooling_plants: list[CoolingPlant]
    chillers: list[Chiller]
    loads: list[Load]
    permits: list[Permit]
    protection: Protection = Field(default_factory=Protection)

    def turbine_model(self, turbine: Turbine) -> TurbineModel:
        """The model parameters of a turbine unit."""
        return self.turbine_models[turbine.model]

    def islands(self) -> list[Island]:
        """Electrical islands by topology (all lines and transformers closed), largest first."""
        parent = {b.id: b.id for b in self.buses}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for a, b in [(l.from_bus, l.to_bus) for l in self.lines] + [(t.hv_bus, t.lv_bus) for t in self.transformers]:
            if a in parent and b in parent:
                parent[find(a)] = find(b)
        groups: dict[str, list[str]] = {}
        for b in self.buses:
            groups.setdefault(find(b.id), []).append(b.id)
        by_bus = {}
        islands = []
        for buses in groups.values():
            isl = Island(name="", buses=buses)
            islands.append(isl)
            for b in buses:
                by_bus[b] = isl
        for t in self.grid_ties:
            by_bus[t.bus].grid_ties.append(t.id)
        for bd in self.boundaries:
            (by_bus[bd.bus].import_boundaries if bd.direction == "import" else by_bus[bd.bus].export_boundaries).append(bd.id)
        for t in self.turbines:
            if t.state != "out":
                by_bus[t.bus].turbines.append(t.id)
        for kind in ("bess", "halls", "chillers", "loads"):
            for c in getattr(self, kind):
                getattr(by_bus[c.bus], kind).append(c.id)
        islands.sort(key=lambda i: (-len(i.buses), i.buses[0]))
        seen_sites: set[str] = set()
        for isl in islands:  # largest first: a smaller island of a site already named gets a bus suffix
            sites = sorted({b.split("/")[0] for b in isl.buses})
            isl.name = "+".join(sites)
            if seen_sites.intersection(sites):
                isl.name = f"{sites[0]}/{isl.buses[0].split('/', 1)[1]}"
            seen_sites.update(sites)
        return islands
