"""What each problem type means (``GET /problems/{name}``): the ``type`` URIs of error bodies resolve to a
short human-readable page, as RFC 9457 §3.1.1 recommends. Served without a token (it holds no data)."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import HTMLResponse

from ..problems import TYPES, problem_doc

__all__ = ["router", "public_paths"]

router = APIRouter(tags=["problems"])


def public_paths() -> frozenset[str]:
    """The problem types' pages (served without a token)."""
    return frozenset(TYPES)


@router.get("/problems/{name}", response_class=HTMLResponse, responses={404: problem_doc("no such problem type")})
def problem_type(name: str = Path(description="the last part of a problem's `type`, e.g. `invalid-input`")) -> HTMLResponse:
    """The documentation of one problem type: its title and when the service answers with it."""
    uri = f"/problems/{name}"
    if uri not in TYPES:
        raise HTTPException(404, f"no problem type {name!r}; the types are {', '.join(sorted(TYPES))}")
    title, when = TYPES[uri]
    body = (f"<!doctype html><html lang=en><meta charset=utf-8><title>{escape(title)}</title>"
            f"<h1>{escape(title)}</h1><p><code>{escape(uri)}</code>: {escape(when)}.</p>"
            "<p>The body is an RFC 9457 problem (<code>application/problem+json</code>): <code>type</code>, "
            "<code>title</code>, <code>status</code>, <code>detail</code>, <code>instance</code>, and <code>errors</code> "
            "(each field at fault and what was expected).</p></html>")
    return HTMLResponse(body)
