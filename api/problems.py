"""Error responses as RFC 9457 problem details: ``application/problem+json`` with ``type``, ``title``,
``status``, ``detail``, ``instance`` and the ``errors`` extension (field paths and what was expected).

``type`` is ``about:blank`` when the HTTP status says it all (the title is then the status phrase), or
one of the relative URIs of :data:`TYPES` (documented in the README) when a client may act on the kind
of problem: input to correct, a data directory that cannot be written, a bug. ``instance`` is the
path of the request. The exception handlers of :mod:`api.main` and the ASGI middleware of
:mod:`api.middleware` (tokens, body size, the last-resort 500) build every body here, so every error
of the service has the one shape of :class:`api.models.Problem`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Iterable

from fastapi.responses import JSONResponse

from .models import FieldProblem, Problem

__all__ = ["MEDIA_TYPE", "INVALID_INPUT", "STORAGE_UNAVAILABLE", "INTERNAL_ERROR", "TYPES", "problem", "problem_response",
           "problem_bytes", "send_problem", "problem_doc", "component_schemas"]

#: The media type of every error body (RFC 9457 §3).
MEDIA_TYPE = "application/problem+json"

INVALID_INPUT = "/problems/invalid-input"
STORAGE_UNAVAILABLE = "/problems/storage-unavailable"
INTERNAL_ERROR = "/problems/internal-error"

#: Problem types beyond ``about:blank``: type → (title, when).
TYPES: dict[str, tuple[str, str]] = {
    INVALID_INPUT: ("Invalid input", "the request (body, query or path) fails validation or a configured cap; "
                                     "`errors` names each field and what was expected (422)"),
    STORAGE_UNAVAILABLE: ("Data directory cannot be written", "a write was refused: the data directory is read-only or "
                                                              "full; reads go on (503, with Retry-After)"),
    INTERNAL_ERROR: ("Internal error", "a bug: the detail names the exception, the server log has the request id (500)"),
}


def _title(status: int, type_: str) -> str:
    if type_ in TYPES:
        return TYPES[type_][0]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def problem(status: int, detail: str, instance: str, errors: Iterable[tuple[str, str]] = (), type_: str | None = None) -> Problem:
    """The problem of one response; ``type_`` defaults to :data:`INVALID_INPUT` for 422, ``about:blank`` otherwise."""
    if type_ is None:
        type_ = INVALID_INPUT if status == 422 else "about:blank"
    return Problem(type=type_, title=_title(status, type_), status=status, detail=detail, instance=instance,
                   errors=[FieldProblem(field=f, message=m) for f, m in errors])


def problem_response(status: int, detail: str, instance: str, errors: Iterable[tuple[str, str]] = (), headers=None,
                     type_: str | None = None) -> JSONResponse:
    """A problem as a response (exception handlers)."""
    body = problem(status, detail, instance, errors, type_)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers, media_type=MEDIA_TYPE)


def problem_bytes(status: int, detail: str, instance: str, type_: str | None = None) -> bytes:
    return problem(status, detail, instance, (), type_).model_dump_json().encode()


async def send_problem(send, scope, status: int, detail: str, headers: list[tuple[bytes, bytes]] = (),
                       type_: str | None = None) -> None:
    """Answer a problem from ASGI middleware (``instance`` is the path of ``scope``)."""
    body = problem_bytes(status, detail, scope.get("path", ""), type_)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def problem_doc(description: str) -> dict[str, Any]:
    """An entry of a route's ``responses=``: a problem, with the problem media type."""
    return {"description": description, "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def component_schemas() -> dict[str, Any]:
    """``Problem`` and ``FieldProblem`` for the OpenAPI document's ``components.schemas`` (which :func:`problem_doc` refers to)."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return {**defs, "Problem": schema}
