"""Load site and campus files into a validated, expanded :class:`~sites.site.Site`.

Names: ``colossus1`` (a file in ``sites/data``), ``colossus1:sub22`` (a variant defined in that
file), or a path to a TOML file (optionally ``path.toml:variant``). Everything that is wrong with a
file is reported as a :class:`SiteError` naming the file, the field path and what was expected,
before any model is built.
"""

from __future__ import annotations

import copy
import fnmatch
import math
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from .inputs import InputError, read_toml, validate
from .schema import COMPONENT_LISTS, CampusFile, Component, SiteFile
from .site import Site

__all__ = ["DATA_DIR", "SiteError", "list_sites", "load_site", "resolve", "read_sources"]

DATA_DIR = Path(__file__).parent / "data"
_SOURCES_FILE = DATA_DIR / "sources.toml"
#: Data files beside the site files that are not sites: the source list and the chiller curve sets.
_NOT_SITES = ("sources.toml", "chiller_curves.toml")


class SiteError(InputError):
    """A site or campus file is malformed (see :class:`sites.inputs.InputError`)."""


@lru_cache(maxsize=1)
def read_sources() -> dict[str, str]:
    """Source IDs (``sites/data/sources.toml``; docs/references.md) → citation."""
    with open(_SOURCES_FILE, "rb") as fh:
        return dict(tomllib.load(fh)["sources"])


def _data_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(DATA_DIR.glob("*.toml")) if p.name not in _NOT_SITES}


def list_sites() -> list[str]:
    """Every loadable reference name: sites and campuses, then their variants (``name:variant``)."""
    names = []
    for stem, path in _data_files().items():
        names.append(stem)
        for v in _read_toml(path).get("variants", {}):
            names.append(f"{stem}:{v}")
    return names


def resolve(name: str | Path) -> tuple[Path, str | None]:
    """Split a site name or path into (file, variant)."""
    text = str(name)
    variant = None
    base = text
    m = re.match(r"^(.*?):([a-z0-9][a-z0-9_-]*)$", text)
    if m and not re.match(r"^[A-Za-z]:[\\/]", text):
        base, variant = m.group(1), m.group(2)
    files = _data_files()
    if base in files:
        return files[base], variant
    path = Path(base)
    if path.suffix == ".toml" or path.exists():
        if not path.exists():
            raise SiteError(path, [("", "no such file")])
        return path, variant
    known = ", ".join(files) or "(none)"
    raise SiteError(base, [("", f"unknown site; expected one of {known} or a path to a .toml file")])


def _read_toml(path: Path) -> dict[str, Any]:
    return read_toml(path, SiteError)


def _merge(base: Any, over: Any) -> Any:
    """Deep-merge ``over`` into ``base``: tables recursively, arrays of tables by ``id``.

    An item of an array of tables whose ``id`` matches an existing item is merged into it;
    ``remove = true`` drops it; items with a new ``id`` are appended. Other values replace.
    """
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v) if k in base else v
        return out
    if (
        isinstance(base, list)
        and isinstance(over, list)
        and all(isinstance(x, dict) and "id" in x for x in base + over)
    ):
        out = [dict(x) for x in base]
        index = {x["id"]: i for i, x in enumerate(out)}
        for item in over:
            item = dict(item)
            remove = item.pop("remove", False)
            if item["id"] in index:
                i = index[item["id"]]
                out[i] = None if remove else _merge(out[i], item)
            elif not remove:
                index[item["id"]] = len(out)
                out.append(item)
        return [x for x in out if x is not None]
    return copy.deepcopy(over)


def _apply_variant(doc: dict, variant: str | None, path: Path, _chain: tuple = ()) -> dict:
    """Merge a variant (after the variants it ``extends``) into the base document."""
    variants = doc.get("variants", {})
    if variant is None:
        return doc
    if variant not in variants or not isinstance(variants[variant], dict):
        known = ", ".join(variants) or "(none)"
        where = f"variants.{_chain[-1]}.extends" if _chain else "variants"
        raise SiteError(path, [(where, f"no variant {variant!r}; expected one of {known}")])
    if variant in _chain:
        raise SiteError(path, [(f"variants.{variant}.extends", f"cycle {' -> '.join(_chain + (variant,))}")])
    spec = variants[variant]
    for parent in spec.get("extends", []):
        doc = _apply_variant(doc, parent, path, _chain + (variant,))
    over = {k: v for k, v in spec.items() if k not in ("description", "extends")}
    return _merge(doc, over)


def _validate(model, doc: dict, path: Path):
    return validate(model, doc, path, SiteError)


def _expand(group: Component, count: int) -> list[Component]:
    """Expand a group of ``count`` units into ``<id>-01`` … (``-001`` … from 100 units) with their buses."""
    number_width = max(2, len(str(count)))
    buses = getattr(group, "buses", None)
    online = getattr(group, "online_count", None)
    if count == 1 and buses is None and online is None:
        return [group]
    per_bus = math.ceil(count / len(buses)) if buses else count
    out = []
    for i in range(count):
        upd = {"count": 1, "bus": buses[i // per_bus] if buses else group.bus, "buses": None, "number": i + 1}
        if count > 1:
            upd["id"] = f"{group.id}-{i + 1:0{number_width}d}"
        if online is not None:
            upd["online_count"] = None
            upd["state"] = "online" if i < online else "standby"
        out.append(group.model_copy(update=upd))
    return out


def _check_provenance(doc: SiteFile, path: Path, problems: list) -> None:
    sources = read_sources()
    items: list[tuple[str, Component]] = [("weather", doc.weather), ("protection", doc.protection)]
    items += [(f"turbine_models.{k}", m) for k, m in doc.turbine_models.items()]
    for list_name in COMPONENT_LISTS:
        items += [(f"{list_name}[id={c.id}]", c) for c in getattr(doc, list_name)]
    for where, comp in items:
        for field in comp.numeric_fields():
            if field == "number":
                continue
            note = comp.note_for(field)
            if note is None:
                problems.append(
                    (f"{where}.{field}", "needs a `source` (IDs from sites/data/sources.toml) or an `assumption` note, "
                     "on the component or as { value = …, source = \"S…\" }")
                )
                continue
            if note.source:
                for sid in re.split(r"[\s,;]+", note.source.strip()):
                    if sid and sid not in sources:
                        problems.append((f"{where}.{field}", f"unknown source ID {sid!r}; expected an ID listed in sites/data/sources.toml"))


def _check_site(doc: SiteFile, path: Path) -> None:
    """Cross-reference checks that pydantic cannot do field by field."""
    problems: list[tuple[str, str]] = []
    _check_provenance(doc, path, problems)
    buses = {b.id: b for b in doc.buses}
    seen: dict[str, str] = {}
    for list_name in COMPONENT_LISTS:
        for c in getattr(doc, list_name):
            ids = [x.id for x in _expand(c, getattr(c, "count", 1))]
            for i in ids:
                if i in seen:
                    problems.append((f"{list_name}[id={c.id}].id", f"duplicate id {i!r} (also in {seen[i]}); ids must be unique in a site"))
                else:
                    seen[i] = list_name

    def need_bus(where: str, bus: str | None):
        if bus is not None and bus not in buses:
            problems.append((where, f"unknown bus {bus!r}; expected one of the ids in [[buses]]"))

    for c in doc.lines:
        need_bus(f"lines[id={c.id}].from_bus", c.from_bus)
        need_bus(f"lines[id={c.id}].to_bus", c.to_bus)
        if c.from_bus in buses and c.to_bus in buses and not math.isclose(buses[c.from_bus].vn_kv, buses[c.to_bus].vn_kv, rel_tol=0.05):
            problems.append((f"lines[id={c.id}]", f"joins buses at {buses[c.from_bus].vn_kv} kV and {buses[c.to_bus].vn_kv} kV; a line needs one voltage (use a transformer)"))
    for c in doc.transformers:
        need_bus(f"transformers[id={c.id}].hv_bus", c.hv_bus)
        need_bus(f"transformers[id={c.id}].lv_bus", c.lv_bus)
        for side, bus, vn in (("hv", c.hv_bus, c.vn_hv_kv), ("lv", c.lv_bus, c.vn_lv_kv)):
            if bus in buses and not math.isclose(buses[bus].vn_kv, vn, rel_tol=0.1):
                problems.append((f"transformers[id={c.id}].vn_{side}_kv", f"{vn} kV does not match bus {bus!r} at {buses[bus].vn_kv} kV (expected within 10 %)"))
    for list_name in ("grid_ties", "boundaries", "turbines", "bess", "halls", "chillers", "loads"):
        for c in getattr(doc, list_name):
            need_bus(f"{list_name}[id={c.id}].bus", getattr(c, "bus", None))
            for b in getattr(c, "buses", None) or []:
                need_bus(f"{list_name}[id={c.id}].buses", b)
    for c in doc.turbines:
        if c.model not in doc.turbine_models:
            problems.append((f"turbines[id={c.id}].model", f"unknown turbine model {c.model!r}; expected one of {sorted(doc.turbine_models)}"))
    plants = {p.id for p in doc.cooling_plants}
    for c in doc.halls:
        if c.cooling_plant not in plants:
            problems.append((f"halls[id={c.id}].cooling_plant", f"unknown cooling plant {c.cooling_plant!r}; expected one of {sorted(plants)}"))
    from .curves import chiller_curves

    for c in doc.chillers:
        if c.plant not in plants:
            problems.append((f"chillers[id={c.id}].plant", f"unknown cooling plant {c.plant!r}; expected one of {sorted(plants)}"))
        if c.curve not in chiller_curves():
            problems.append((f"chillers[id={c.id}].curve", f"unknown curve {c.curve!r}; expected one of {sorted(chiller_curves())} "
                                                           "(sites/data/chiller_curves.toml)"))
    turbine_ids = [x.id for t in doc.turbines for x in _expand(t, t.count)]
    for c in doc.permits:
        if not fnmatch.filter(turbine_ids, c.turbines):
            problems.append((f"permits[id={c.id}].turbines", f"pattern {c.turbines!r} matches no turbine"))
    if problems:
        raise SiteError(path, problems)


def _qualify(doc: SiteFile) -> dict[str, list]:
    """Expand groups and prefix every id and reference with ``<site>/``."""
    sid = doc.site.id
    q = lambda x: f"{sid}/{x}" if x is not None else None  # noqa: E731
    out: dict[str, list] = {}
    for list_name in COMPONENT_LISTS:
        items = []
        for c in getattr(doc, list_name):
            for u in _expand(c, getattr(c, "count", 1)):
                upd: dict[str, Any] = {"id": q(u.id)}
                for ref in ("bus", "from_bus", "to_bus", "hv_bus", "lv_bus", "plant", "cooling_plant"):
                    if getattr(u, ref, None) is not None:
                        upd[ref] = q(getattr(u, ref))
                if list_name == "turbines":
                    upd["model"] = q(u.model)
                if list_name == "permits":
                    upd["turbines"] = q(u.turbines)
                items.append(u.model_copy(update=upd))
        out[list_name] = items
    out["turbine_models"] = {q(k): m.model_copy(update={"id": q(k)}) for k, m in doc.turbine_models.items()}
    return out


def _load_site_file(path: Path, variant: str | None) -> tuple[SiteFile, dict[str, list]]:
    raw = _read_toml(path)
    if "site" not in raw:
        raise SiteError(path, [("site", "required table [site] is missing (a campus file has [campus])")])
    doc = _validate(SiteFile, _apply_variant(raw, variant, path), path)
    _check_site(doc, path)
    return doc, _qualify(doc)


def load_site(name: str | Path) -> Site:
    """Load a reference site, campus or variant by name, or a site file by path.

    Parameters
    ----------
    name : str or Path
        ``"colossus1"``, ``"colossus1:sub22"``, ``"memphis"``, ``"memphis:full-build"`` or a path.

    Returns
    -------
    Site
        Validated, with groups expanded and ids qualified as ``site/component``.

    Raises
    ------
    SiteError
        Naming the file, the field path and what was expected.
    """
    path, variant = resolve(name)
    raw = _read_toml(path)
    label = path.stem + (f":{variant}" if variant else "")
    if "campus" in raw:
        return _load_campus(path, raw, variant, label)
    doc, parts = _load_site_file(path, variant)
    site = _site(doc.site, "site", label, variant, doc.variants, [doc.site.id], [str(path)], doc.weather, parts,
                 doc.protection)
    _check_islands(site, path)
    return site


def _load_campus(path: Path, raw: dict, variant: str | None, label: str) -> Site:
    doc = _validate(CampusFile, _apply_variant(raw, variant, path), path)
    parts: dict[str, Any] = {k: [] for k in COMPONENT_LISTS}
    parts["turbine_models"] = {}
    files = [str(path)]
    weather = None
    protection = None
    members = []
    for i, member in enumerate(doc.campus.sites):
        try:
            mpath, mvar = resolve(member if "/" in member else member)
        except SiteError as exc:
            raise SiteError(path, [(f"campus.sites[{i}]", f"{exc.problems[0][1]} (got {member!r})")]) from None
        mdoc, mparts = _load_site_file(mpath, mvar)
        members.append(mdoc.site.id)
        files.append(str(mpath))
        weather = weather or mdoc.weather
        protection = protection or mdoc.protection  # the campus runs on its first member's relay settings
        for k in COMPONENT_LISTS:
            parts[k].extend(mparts[k])
        parts["turbine_models"].update(mparts["turbine_models"])
    # Boundaries are the standalone stand-ins for what the campus links join.
    parts["boundaries"] = []
    bus_ids = {b.id for b in parts["buses"]}
    problems = []
    cid = doc.campus.id
    for list_name, attrs in (("lines", ("from_bus", "to_bus")), ("transformers", ("hv_bus", "lv_bus"))):
        for c in getattr(doc, list_name):
            for a in attrs:
                if getattr(c, a) not in bus_ids:
                    problems.append((f"{list_name}[id={c.id}].{a}", f"unknown bus {getattr(c, a)!r}; expected 'site/bus' of a member site"))
            if c.note_for("length_km" if list_name == "lines" else "sn_mva") is None:
                problems.append((f"{list_name}[id={c.id}]", "needs a `source` or an `assumption` note"))
            parts[list_name].append(c.model_copy(update={"id": f"{cid}/{c.id}"}))
    if problems:
        raise SiteError(path, problems)
    site = _site(doc.campus, "campus", label, variant, doc.variants, members, files, weather, parts, protection)
    _check_islands(site, path)
    return site


def _site(header, kind: str, label: str, variant: str | None, variants: dict, members: list[str], files: list[str],
          weather, parts: dict, protection=None) -> Site:
    """The loaded Site from a file header (site or campus), its variant and its expanded components."""
    description = header.description + (f" Variant: {variants[variant].description}" if variant else "")
    return Site(id=header.id, label=label, name=header.name, kind=kind, variant=variant, description=description,
                as_of=header.as_of, members=members, files=files, weather=weather, **parts,
                **({} if protection is None else {"protection": protection}))


def _check_islands(site: Site, path: Path) -> None:
    problems = []
    for isl in site.islands():
        if isl.has_load and not isl.has_source:
            problems.append(("", f"island {isl.name!r} (buses {', '.join(isl.buses[:4])}{'…' if len(isl.buses) > 4 else ''}) has load but no source; "
                             "expected a grid tie, an import boundary, a turbine or a battery on it"))
    if problems:
        raise SiteError(path, problems)
