"""Reading and validating input files (sites, scenarios) with errors people can act on.

Every problem is reported as (file, field path, what was expected): ``colossus1.toml:
turbines[id=smt130].count: expected greater than or equal to 1, got 0``. The CLI prints them and
exits with code 2; the API turns them into 422 responses with the same field paths.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

__all__ = ["InputError", "read_toml", "validate", "format_loc", "expected_text"]


class InputError(ValueError):
    """An input file or document is malformed. ``str()`` is the message shown to users.

    Attributes
    ----------
    file : str
        The file (or document, e.g. ``"request body"``) at fault.
    problems : list of (path, message)
        Field paths (``turbines[id=titan350].p_iso_mw``) and what was expected there.
    """

    def __init__(self, file: str | Path, problems: list[tuple[str, str]]):
        self.file = str(file)
        self.problems = problems
        lines = [f"{self.file}: {path}: {msg}" if path else f"{self.file}: {msg}" for path, msg in problems]
        super().__init__("\n".join(lines))


def read_toml(path: Path, error_cls: type[InputError] = InputError) -> dict[str, Any]:
    """Parse a TOML file; syntax and I/O errors become ``error_cls`` naming the file."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise error_cls(path, [("", f"not valid TOML: {exc}")]) from None
    except OSError as exc:
        raise error_cls(path, [("", f"cannot read: {exc.strerror}")]) from None


def format_loc(loc: tuple, doc: Any) -> str:
    """A pydantic error location as a field path; list items are named by their ``id`` when they have one."""
    parts: list[str] = []
    node: Any = doc
    for item in loc:
        if isinstance(item, int):
            ok = isinstance(node, list) and item < len(node)
            ident = node[item].get("id") if ok and isinstance(node[item], dict) else None
            parts.append(f"[id={ident}]" if ident else f"[{item}]")
            node = node[item] if ok else None
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts)


def expected_text(err: dict) -> str:
    """What pydantic expected, phrased for people, with the value that was given."""
    kind = err["type"]
    msg = err["msg"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see the schema for the fields)"
    got = err.get("input")
    text = msg[0].lower() + msg[1:] if msg else msg
    text = text.replace("input should be", "expected").replace("value error, ", "")
    if kind not in ("value_error", "assertion_error") and not isinstance(got, (dict, list)):
        text += f", got {got!r}"
    return text


def validate(model, doc: dict, path: str | Path, error_cls: type[InputError] = InputError):
    """``model.model_validate(doc)``, with every validation problem reported as ``error_cls``."""
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        problems = [(format_loc(e["loc"], doc), expected_text(e)) for e in exc.errors()]
        raise error_cls(path, problems) from None
