"""The FastAPI application: routers per resource, error handlers, limits, and the services' lifespan.

``create_app(settings)`` builds an app; the services (catalog, worker pool, live twin) start when the
app starts (lifespan) and stop with it. Errors always have one shape (:class:`api.models.Problem`):
422 for input that fails validation, with field paths; 401/403 for tokens; 404 for unknown ids;
413 for oversized requests; 409 for a state conflict; 429 when the queue is full; 503 when the live
twin is not available.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sites import InputError
from sites.inputs import format_loc
from twin import __version__

from .config import Settings, get_settings
from .metrics import MetricsMiddleware
from .models import Problem
from .routes import health, live, metrics, runs, sites, sweeps
from .services import Services

__all__ = ["create_app", "ERROR_RESPONSES"]

log = logging.getLogger("twin.api")

#: Documented error responses of every route.
ERROR_RESPONSES = {
    400: {"model": Problem, "description": "a body that cannot be parsed (not UTF-8 JSON)"},
    401: {"model": Problem, "description": "missing or unknown bearer token"},
    403: {"model": Problem, "description": "the token lacks the scope"},
    413: {"model": Problem, "description": "request or response over a configured size cap"},
    422: {"model": Problem, "description": "input that fails validation, with field paths"},
}


def _problem(status: int, detail: str, errors: list[tuple[str, str]] = (), headers=None) -> JSONResponse:
    body = Problem(detail=detail, errors=[{"field": f, "message": m} for f, m in errors])
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


async def _input_error(request: Request, exc: InputError) -> JSONResponse:
    return _problem(422, f"invalid {exc.file}", exc.problems)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    body = getattr(exc, "body", None)
    for e in exc.errors():
        loc = tuple(e.get("loc", ()))
        where, rest = (loc[0], loc[1:]) if loc else ("body", ())
        if where == "body":
            field = format_loc(rest, body) if rest else "(body)"
        else:
            field = f"{where}.{'.'.join(str(x) for x in rest)}"
        msg = e.get("msg", "invalid")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field (check the spelling; see the schema for the fields)"
        elif e.get("type") == "missing":
            msg = "required field is missing"
        problems.append((field, msg))
    return _problem(422, "the request does not match the schema", problems)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return _problem(exc.status_code, detail, headers=getattr(exc, "headers", None))


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _problem(500, f"internal error ({type(exc).__name__}); see the server log")


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, by Content-Length or while streaming."""

    def __init__(self, app, get_max):
        self.app = app
        self.get_max = get_max

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.get_max()
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    too_big = int(v) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    return await _send_413(send, limit)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _send_413(send, limit)


class _TooLarge(Exception):
    pass


async def _send_413(send, limit: int) -> None:
    import json

    body = json.dumps({"detail": f"request body over the {limit} byte limit", "errors": []}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; ``settings`` default to the environment (:func:`api.config.get_settings`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        s = app.dependency_overrides.get(get_settings, get_settings)()
        app.state.services = Services.start(s)
        try:
            yield
        finally:
            app.state.services.stop()

    app = FastAPI(
        title="colossus-twin",
        version=__version__,
        summary="Digital twin of the power and cooling of gigawatt AI campuses: sites, runs, sweeps, a live twin and metrics.",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _server_error)

    def current_settings() -> Settings:
        return app.dependency_overrides.get(get_settings, get_settings)()

    def current_metrics():
        svc = getattr(app.state, "services", None)
        return svc.metrics if svc is not None else None

    app.add_middleware(BodyLimit, get_max=lambda: current_settings().max_body_bytes)
    app.add_middleware(MetricsMiddleware, get_metrics=current_metrics)
    for module in (health, sites, runs, sweeps, live, metrics):
        app.include_router(module.router)
    return app

