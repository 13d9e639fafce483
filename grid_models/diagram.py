"""A one-line diagram of a site's network, drawn from the pandapower net with load-flow results.

Layout: one column block per electrical island; within an island, buses are placed in rows by their
distance (in branches) from the island's highest-voltage bus, so transmission sits on top and halls,
chillers and generator blocks hang below. Branches are coloured by loading; each bus is labelled with
its id, voltage level and the solved voltage magnitude.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .reference import runpp_by_island  # noqa: E402

__all__ = ["draw_one_line"]


def _layout(net) -> dict[int, tuple[float, float]]:
    edges = [(int(f), int(t)) for f, t in zip(net.line.from_bus, net.line.to_bus)]
    edges += [(int(h), int(lv)) for h, lv in zip(net.trafo.hv_bus, net.trafo.lv_bus)]
    adj: dict[int, list[int]] = {int(b): [] for b in net.bus.index}
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    pos: dict[int, tuple[float, float]] = {}
    x0 = 0.0
    for island in dict.fromkeys(net.bus.island):
        buses = net.bus.index[net.bus.island == island]
        root = int(net.bus.loc[buses, "vn_kv"].idxmax())
        depth = {root: 0}
        queue = deque([root])
        while queue:
            u = queue.popleft()
            for v in adj[u]:
                if v not in depth:
                    depth[v] = depth[u] + 1
                    queue.append(v)
        rows: dict[int, list[int]] = {}
        for b, d in depth.items():
            rows.setdefault(d, []).append(b)
        dx = 0.62  # wide rows are staggered on two sub-rows so that labels do not collide
        width = max(len(r) for r in rows.values()) * dx
        for d, bs in rows.items():
            bs.sort(key=lambda b: net.bus.at[b, "name"])
            offset = (width - len(bs) * dx) / 2.0
            for i, b in enumerate(bs):
                stagger = -1.6 if (len(bs) > 6 and i % 2) else 0.0
                pos[b] = (x0 + offset + i * dx, -3.0 * d + stagger)
        x0 += width + 1.2
    return pos


def draw_one_line(site, out: str | Path, net) -> Path:
    """Draw the one-line diagram of ``site`` (solved at its nominal point) to a PNG.

    Parameters
    ----------
    site : sites.Site
        The site or campus.
    out : str or Path
        PNG file to write.
    net : pandapowerNet
        The site's net (``grid_models.build_net``), solved here if it has no results yet.

    Returns
    -------
    Path
        The file written.
    """
    if not len(net.res_bus) or net.res_bus.vm_pu.isna().all():
        runpp_by_island(net)
    pos = _layout(net)
    xs = [p[0] for p in pos.values()]
    fig_w = min(max(10.0, 1.05 * (max(xs) - min(xs) + 2)), 24.0)
    fig, ax = plt.subplots(figsize=(fig_w, 10))
    cmap = plt.get_cmap("RdYlGn_r")
    norm = matplotlib.colors.Normalize(vmin=0, vmax=100)

    def seg(a: int, b: int, load: float, style: str, label: str | None = None) -> None:
        (x1, y1), (x2, y2) = pos[a], pos[b]
        color = cmap(norm(0 if np.isnan(load) else load))
        ax.plot([x1, x2], [y1, y2], style, color=color, lw=2.2, zorder=1)
        if label:
            ax.text((x1 + x2) / 2, (y1 + y2) / 2, label, fontsize=6, ha="center", va="center",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8), zorder=3)

    for i, row in net.line.iterrows():
        load = net.res_line.at[i, "loading_percent"] if i in net.res_line.index else np.nan
        seg(int(row.from_bus), int(row.to_bus), load, "-", f"{load:.0f}%" if load == load else None)
    for i, row in net.trafo.iterrows():
        load = net.res_trafo.at[i, "loading_percent"] if i in net.res_trafo.index else np.nan
        seg(int(row.hv_bus), int(row.lv_bus), load, "--")
        (x1, y1), (x2, y2) = pos[int(row.hv_bus)], pos[int(row.lv_bus)]
        n_par = int(row.get("parallel", 1))
        ax.plot([(x1 + x2) / 2], [(y1 + y2) / 2], "o", ms=9, mfc="white", mec="k", zorder=2)
        ax.text((x1 + x2) / 2, (y1 + y2) / 2 - 0.35, f"{row.sn_mva * n_par:.0f} MVA", fontsize=5.5, ha="center")

    counts = {}
    for table, kind_col in (("gen", "kind"), ("load", "kind")):
        for _, row in net[table].iterrows():
            key = (int(row.bus), row[kind_col])
            counts.setdefault(key, [0, 0.0])
            counts[key][0] += 1
            counts[key][1] += float(row.p_mw) if row.in_service else 0.0
    for _, row in net.ext_grid.iterrows():
        x, y = pos[int(row.bus)]
        ax.plot([x], [y + 0.6], "s", ms=12, mfc="#4c72b0", mec="k", zorder=4)
        ax.text(x, y + 0.95, row["name"].split("/")[-1], fontsize=6.5, ha="center")

    symbols = {"turbine": ("o", "#dd8452"), "bess": ("D", "#55a868"), "hall": ("v", "#8172b3"),
               "chiller": ("v", "#64b5cd"), "load": ("v", "#999999"), "boundary": ("v", "#c44e52")}
    for (bus, kind), (n, p) in counts.items():
        x, y = pos[bus]
        m, c = symbols.get(kind, ("v", "grey"))
        dy = -0.55
        dx = {"hall": -0.1, "chiller": 0.1, "load": 0.15}.get(kind, 0.0)
        ax.plot([x + dx], [y + dy], m, ms=9, mfc=c, mec="k", zorder=4)
        ax.text(x + dx, y + dy - 0.42, f"{n}× {kind}\n{p:.0f} MW" if n > 1 else f"{kind}\n{p:.0f} MW",
                fontsize=5.5, ha="center", va="top")

    for b, (x, y) in pos.items():
        ax.plot([x - 0.2, x + 0.2], [y, y], "k-", lw=4, zorder=3, solid_capstyle="butt")
        vm = net.res_bus.at[b, "vm_pu"] if b in net.res_bus.index else np.nan
        name = net.bus.at[b, "name"].split("/", 1)[-1]
        ax.text(x, y + 0.2, f"{name}\n{net.bus.at[b, 'vn_kv']:g} kV  {vm:.3f} pu", fontsize=6, ha="center", va="bottom", zorder=5)

    for island in dict.fromkeys(net.bus.island):
        bs = [pos[b] for b in net.bus.index[net.bus.island == island]]
        ax.text(np.mean([p[0] for p in bs]), 1.9, island, fontsize=10, weight="bold", ha="center")

    handles = [plt.Line2D([], [], marker=m, ls="", mfc=c, mec="k", label=k) for k, (m, c) in symbols.items()]
    handles.append(plt.Line2D([], [], marker="s", ls="", mfc="#4c72b0", mec="k", label="grid tie / boundary source"))
    handles.append(plt.Line2D([], [], ls="--", color="grey", label="transformer"))
    ax.legend(handles=handles, loc="lower right", fontsize=7, ncol=2, frameon=True)
    sm = matplotlib.cm.ScalarMappable(cmap=cmap, norm=norm)
    fig.colorbar(sm, ax=ax, fraction=0.02, pad=0.01, label="branch loading [%]")
    ax.set_title(f"{site.name} ({site.label}): one-line diagram at the nominal point, {net.name}", fontsize=11)
    ax.set_axis_off()
    ax.set_ylim(min(p[1] for p in pos.values()) - 1.6, 2.4)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
