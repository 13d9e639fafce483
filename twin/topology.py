"""Topology processor: the electrical islands of a site as its branches open and close.

A site's buses are joined by lines and transformers (bus ties are lines). Opening a branch can split
an island in two, closing one can merge two; the engine's arrays, and the ``island`` dimension of a
run's results, are fixed for the run. So the islands are *slots*:

* the site's islands (:meth:`sites.Site.islands`, all branches closed) are the first slots, in order;
* when an island splits, its part with the most ties (grid ties, import boundaries), else the most
  rated inertia (Σ H·S of its turbines), else batteries, else load, keeps its slot (:func:`part_key`);
  the other part gets a slot of its own, named after its *anchor* bus (the bus of the part with the
  most of those, in that order): ``colossus1/gen-1`` is the part around that bus, as the site names a
  secondary island after its first bus (``#2`` is added when a name is taken);
* a merge keeps the slot that brought the most (the same order); the other slot is left inactive (no
  buses, no load) until a later split of the same buses takes it again.

A part is made of the buses that carry something (a unit, battery, hall, chiller, load, tie or
boundary); buses with nothing on them keep whichever slot they had. The slots a run needs are worked
out before it starts (:func:`plan_slots`) by walking the scenario's branch switchings in time order; a
close that could be refused by the synchronisation check (:data:`SYNC_DF_HZ`) is followed both ways,
so that every island the run can meet has its slot, and the engine looks each change up in the plan
(:meth:`SlotPlan.next_slots`). Nothing here needs pandapower: the graph is the site's, the
components are :func:`scipy.sparse.csgraph.connected_components`.

What this module does not do: it checks no voltage or phase angle at a close (the islands' angles
are not tracked; see docs/physics.md, "Topology processor"), and it knows nothing of breakers inside
a bus (a bus is a node).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["SYNC_DF_HZ", "MAX_PLAN_STATES", "SiteGraph", "SlotPlan", "site_graph", "bus_components", "part_key",
           "next_slots", "plan_slots", "slot_sources"]

#: Largest frequency difference [Hz] at which two energised islands, or an island and the grid, are
#: closed together: the synchronisation limit of IEEE 1547-2018 Table 5 for aggregate ratings above
#: 1.5 MVA (Δf 0.1 Hz, ΔV 3 %, Δφ 10°) [P66]. Only Δf is checked: angles are not tracked (an automatic
#: synchroniser is taken to close inside the angle window once the slip is within the limit).
SYNC_DF_HZ = 0.1
#: Most topology states :func:`plan_slots` explores (each close that could be refused doubles them).
MAX_PLAN_STATES = 4096


@dataclass(frozen=True)
class SiteGraph:
    """The buses and branches of a site (site order) and what sits on each bus, as plain arrays."""

    bus_ids: list[str]
    branch_ids: list[str]  # lines, then transformers
    branch_kind: list[str]  # "lines" or "transformers"
    br_a: np.ndarray  # (n_branch,) int64 bus position of one end
    br_b: np.ndarray  # (n_branch,) int64 … and of the other
    tie: np.ndarray  # (n_bus,) grid ties and import boundaries on the bus
    inertia: np.ndarray  # (n_bus,) Σ H·S of the turbines on the bus (but those "out") [MW·s]
    bess_mw: np.ndarray  # (n_bus,) battery rating [MW]
    load_mw: np.ndarray  # (n_bus,) rated load: halls' peak IT, chillers' capacity, loads, export boundaries [MW]
    element: np.ndarray  # (n_bus,) bool: anything on the bus
    source: np.ndarray  # (n_bus,) bool: a turbine, battery, tie or import boundary on the bus
    consumer: np.ndarray  # (n_bus,) bool: a hall, chiller, load or export boundary on the bus

    @property
    def n_bus(self) -> int:
        return len(self.bus_ids)

    def branch(self, kind: str, name: str) -> int:
        """Position of branch ``name`` of ``kind`` ("lines"/"transformers")."""
        for k, (n, kd) in enumerate(zip(self.branch_ids, self.branch_kind)):
            if n == name and kd == kind:
                return k
        raise KeyError(f"no {kind[:-1]} {name!r}")


def site_graph(site) -> SiteGraph:
    """The bus graph of a :class:`sites.Site` with each bus's ties, inertia, batteries and load."""
    pos = {b.id: k for k, b in enumerate(site.buses)}
    n = len(pos)
    tie, inertia, bess, load = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    element = np.zeros(n, bool)
    consumer = np.zeros(n, bool)
    for t in site.grid_ties:
        tie[pos[t.bus]] += 1
    for bd in site.boundaries:
        if bd.direction == "import":
            tie[pos[bd.bus]] += 1
        else:
            load[pos[bd.bus]] += bd.p_mw
            consumer[pos[bd.bus]] = True
        element[pos[bd.bus]] = True
    for t in site.turbines:
        if t.state != "out":
            m = site.turbine_model(t)
            inertia[pos[t.bus]] += m.h_s * m.p_iso_mw / m.pf
            element[pos[t.bus]] = True
    for b in site.bess:
        bess[pos[b.bus]] += b.p_mw
    for h in site.halls:
        load[pos[h.bus]] += h.racks * h.rack_p_peak_kw * 1e-3
    for c in site.chillers:
        load[pos[c.bus]] += c.q_ref_mw
    for ld in site.loads:
        load[pos[ld.bus]] += ld.p_mw
    for kind in ("grid_ties", "bess", "halls", "chillers", "loads"):
        for c in getattr(site, kind):
            element[pos[c.bus]] = True
            consumer[pos[c.bus]] |= kind in ("halls", "chillers", "loads")
    branches = [(ln.id, "lines", ln.from_bus, ln.to_bus) for ln in site.lines]
    branches += [(t.id, "transformers", t.hv_bus, t.lv_bus) for t in site.transformers]
    return SiteGraph(
        bus_ids=list(pos), branch_ids=[b[0] for b in branches], branch_kind=[b[1] for b in branches],
        br_a=np.array([pos[b[2]] for b in branches], dtype=np.int64).reshape(-1),
        br_b=np.array([pos[b[3]] for b in branches], dtype=np.int64).reshape(-1),
        tie=tie, inertia=inertia, bess_mw=bess, load_mw=load, element=element, source=(tie > 0) | (inertia > 0) | (bess > 0),
        consumer=consumer,
    )


def bus_components(graph: SiteGraph, in_service: np.ndarray) -> np.ndarray:
    """Connected component of each bus through the in-service branches (labels 0…, by first bus)."""
    a, b = graph.br_a[in_service], graph.br_b[in_service]
    adj = coo_matrix((np.ones(len(a)), (a, b)), shape=(graph.n_bus, graph.n_bus))
    _, labels = connected_components(adj, directed=False)
    return labels


def part_key(graph: SiteGraph, buses: np.ndarray) -> tuple:
    """Order of the parts of an island (largest last): its ties, rated inertia, batteries, load, buses
    with something on them, then the earliest bus (so that no two parts compare equal)."""
    return (float(graph.tie[buses].sum()), float(graph.inertia[buses].sum()), float(graph.bess_mw[buses].sum()),
            float(graph.load_mw[buses].sum()), len(buses), -int(buses.min()))


def _anchor(graph: SiteGraph, buses: np.ndarray) -> int:
    """The bus a part is named after: the one with the most ties, inertia, batteries, load (first on ties)."""
    return int(max(buses, key=lambda b: (graph.tie[b], graph.inertia[b], graph.bess_mw[b], graph.load_mw[b], -b)))


@dataclass
class SlotPlan:
    """The island slots of a run and how they follow the topology.

    ``names``: the site's islands first (their slots hold them with every branch closed), then the
    parts that splits can leave. ``transitions`` maps (slot of each bus, branches in service) to the slot
    of each bus after the change, for every state the run can reach; ``created`` gives the buses with
    something on them of the part each extra slot was made for.
    """

    names: list[str]
    start: np.ndarray  # (n_bus,) int64 slot of each bus with every branch closed: its site island
    transitions: dict[tuple[bytes, bytes], np.ndarray] = field(default_factory=dict)
    created: dict[int, list[int]] = field(default_factory=dict)
    _by_set: dict[frozenset, list[int]] = field(default_factory=dict)

    @property
    def n_site(self) -> int:
        return int(self.start.max()) + 1 if len(self.start) else 0

    def next_slots(self, slot_of_bus: np.ndarray, in_service: np.ndarray) -> np.ndarray:
        """The slot of each bus once ``in_service`` holds (KeyError for a state :func:`plan_slots` did not reach)."""
        return self.transitions[slot_of_bus.tobytes(), in_service.tobytes()]

    def _new_slot(self, graph: SiteGraph, part: np.ndarray, taken: set[int]) -> int:
        """A slot for a part that keeps none: the last one made for the same buses if free, else a new one."""
        key = frozenset(part.tolist())
        for s in self._by_set.get(key, []):
            if s not in taken:
                return s
        base = name = graph.bus_ids[_anchor(graph, part)]
        n = 2
        while name in self.names:
            name, n = f"{base}#{n}", n + 1
        self.names.append(name)
        s = len(self.names) - 1
        self._by_set.setdefault(key, []).append(s)
        self.created[s] = part.tolist()
        return s


def next_slots(graph: SiteGraph, plan: SlotPlan, slot_of_bus: np.ndarray, in_service: np.ndarray) -> np.ndarray:
    """The slot of each bus after the branches in service become ``in_service`` (adds slots to ``plan``).

    Each component with something on it is a part. Parts and the slots they come from are matched
    largest first (:func:`part_key` of the part's buses that were in that slot): a split leaves the
    slot to its largest part, a merge keeps the slot that brought the most. A part left without a
    slot takes a free one made earlier for the same buses, else a new one. Buses with nothing on them
    keep their slot.
    """
    labels = bus_components(graph, in_service)
    parts = [np.flatnonzero((labels == c) & graph.element) for c in np.unique(labels[graph.element])]
    pairs = sorted(((part_key(graph, p[slot_of_bus[p] == o]), c, int(o)) for c, p in enumerate(parts)
                    for o in np.unique(slot_of_bus[p])), reverse=True)
    slot = [-1] * len(parts)
    taken: set[int] = set()
    for _, c, o in pairs:
        if slot[c] < 0 and o not in taken:
            slot[c] = o
            taken.add(o)
    out = slot_of_bus.copy()
    for c, p in enumerate(parts):
        if slot[c] < 0:
            slot[c] = plan._new_slot(graph, p, taken)
            taken.add(slot[c])
        out[labels == labels[p[0]]] = slot[c]
    return out


def plan_slots(graph: SiteGraph, plan: SlotPlan, in_service: np.ndarray, slot_of_bus: np.ndarray,
               switchings: list[tuple[int, bool]]) -> SlotPlan:
    """Add to ``plan`` every island slot, and every change, that ``switchings`` can lead to from the state
    (``in_service``, ``slot_of_bus``), walking them in order (:func:`next_slots`).

    ``switchings`` lists (branch position, closes) in the order the events apply. A close that joins
    two parts which both hold a source (turbine, battery, tie) may be refused at run time
    (synchronisation check): both outcomes are followed. Raises ValueError when more than
    :data:`MAX_PLAN_STATES` topology states would be needed.
    """
    seen: set[tuple[int, bytes, bytes]] = set()
    stack = [(0, np.asarray(in_service, bool), np.asarray(slot_of_bus, np.int64))]
    while stack:
        i, flags, slots = stack.pop()
        key = (i, flags.tobytes(), slots.tobytes())
        if key in seen or i == len(switchings):
            continue
        seen.add(key)
        if len(seen) > MAX_PLAN_STATES:
            raise ValueError(f"the branch switchings lead to more than {MAX_PLAN_STATES} topologies "
                             "(closes that may be refused by the synchronisation check double them)")
        b, closes = switchings[i]
        if flags[b] == closes:  # nothing to switch
            stack.append((i + 1, flags, slots))
            continue
        nxt = flags.copy()
        nxt[b] = closes
        t_key = (slots.tobytes(), nxt.tobytes())
        if t_key not in plan.transitions:
            plan.transitions[t_key] = next_slots(graph, plan, slots, nxt)
        outcomes = [(i + 1, nxt, plan.transitions[t_key])]
        if closes:
            labels = bus_components(graph, flags)
            ca, cb = labels[graph.br_a[b]], labels[graph.br_b[b]]
            if ca != cb and graph.source[labels == ca].any() and graph.source[labels == cb].any():
                outcomes.append((i + 1, flags, slots))  # refused: the branch stays open
        stack.extend(reversed(outcomes))
    return plan


def slot_sources(old: np.ndarray, new: np.ndarray, element: np.ndarray) -> dict[int, dict[int, np.ndarray]]:
    """For each slot of ``new`` (slot per bus): the slots of ``old`` its element buses come from, and which buses."""
    out: dict[int, dict[int, np.ndarray]] = {}
    for s in np.unique(new[element]):
        here = element & (new == s)
        out[int(s)] = {int(o): np.flatnonzero(here & (old == o)) for o in np.unique(old[here])}
    return out
