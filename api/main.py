"""The FastAPI application: routers per resource, error handlers, limits, logs, and the services' lifespan.

``create_app(settings)`` builds an app; the services (catalog, worker pool, live twin, stream
broadcaster) start when the app starts (lifespan) and stop with it. A data directory that cannot be
written stops the start with one sentence naming the path. Errors always have one shape, RFC 9457
problem details (``application/problem+json``, :mod:`api.problems`): 422 for input that fails
validation, with field paths; 401/403 for
tokens (checked before the body is read); 404 for unknown ids; 413 for oversized requests (declared
or chunked); 405 with ``Allow``; 409 for a state conflict; 429 when the queue is full; 503 when the
live twin is not available or the data directory cannot be written (reads go on); 500 for a bug,
which keeps the connection usable.
"""

from __future__ import annotations

import asyncio
import logging
import re
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException

from sites import InputError
from sites.inputs import expected_text, format_loc
from twin import __version__
from twin.catalog import CatalogUnavailable

from .config import Settings, get_settings
from .deps import token_scope
from .logs import RequestLog, configure_logging
from .metrics import MetricsMiddleware
from .middleware import AuthGate, BodyLimit, CatchAll, LiveStateFastPath, StartupErrors
from .problems import STORAGE_UNAVAILABLE, component_schemas, problem_doc, problem_response
from .routes import health, live, metrics, page, runs, sites, sweeps
from .routes import problems as problems_route
from .services import Services, StartupError

__all__ = ["create_app", "ERROR_RESPONSES"]

log = logging.getLogger("twin.api")

#: Documented error responses of every route (401/403 only on those that need a token).
ERROR_RESPONSES = {
    400: problem_doc("a body that cannot be parsed (not UTF-8 JSON)"),
    413: problem_doc("request or response over a configured size cap"),
    422: problem_doc("input that fails validation, with field paths (type /problems/invalid-input)"),
    500: problem_doc("a bug: the detail names the exception; the server log has the request id (type /problems/internal-error)"),
}
AUTH_RESPONSES = {
    401: problem_doc("missing or unknown bearer token"),
    403: problem_doc("the token lacks the scope (a read token on a write route)"),
}
WRITE_RESPONSES = {503: problem_doc("the data directory cannot be written (read-only or full disk; type /problems/storage-unavailable); "
                            "reads go on")}
#: Paths served without a token (the engineer's page and its files hold no data: see api.routes.page).
PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}) | page.public_paths() | problems_route.public_paths()


async def _input_error(request: Request, exc: InputError) -> Response:
    return problem_response(422, f"invalid {exc.file}", request.url.path, exc.problems)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    problems = []
    body = getattr(exc, "body", None)
    for e in exc.errors():
        loc = tuple(e.get("loc", ()))
        where, rest = (loc[0], loc[1:]) if loc else ("body", ())
        if e.get("type") == "json_invalid":  # loc is ("body", the character where parsing stopped)
            reason = (e.get("ctx") or {}).get("error", "")
            problems.append(("(body)", f"expected JSON{': ' + reason if reason else ''}, at character {rest[0] if rest else 0}"))
            continue
        if where == "body":
            field = format_loc(rest, body) if rest else "(body)"
        else:
            field = f"{where}.{'.'.join(str(x) for x in rest)}"
        msg = expected_text(e)
        problems.append((field, msg if len(msg) <= 300 else msg[:297] + "…"))
    return problem_response(422, "the request does not match the schema", request.url.path, problems)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:  # every method of the path, as documented (each route holds only its own)
        headers = {**(headers or {}), "Allow": ", ".join(_allowed(request.app, request.url.path))}
    return problem_response(exc.status_code, detail, request.url.path, headers=headers)


def _allowed(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI document lists for a concrete path; for a path left out of it (the page, the
    documentation), those of the routes that match it."""
    table = getattr(app.state, "allowed_methods", None)
    if table is None:
        table = [(re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(p)) + "$"), sorted(m.upper() for m in ops))
                 for p, ops in app.openapi().get("paths", {}).items()]
        app.state.allowed_methods = table
    methods = {m for rx, ms in table if rx.match(path) for m in ms}
    if not methods:
        from starlette.routing import Match

        for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
            scope = {"type": "http", "path": path, "method": m, "root_path": "", "headers": []}
            if any(_full_match(r, scope, Match) for r in app.routes):
                methods.add(m)
    return sorted(methods)


def _full_match(route, scope, Match) -> bool:
    try:
        return route.matches(scope)[0] == Match.FULL
    except Exception:  # noqa: BLE001 - a route that cannot say: not one of the methods
        return False


async def _storage_error(request: Request, exc: CatalogUnavailable) -> Response:
    svc = getattr(request.app.state, "services", None)
    if svc is not None:
        svc.storage_failed(str(exc))
    log.error("write refused on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(503, "the data directory cannot be written (read-only or full disk); reads still work. "
                                 "See /healthz and the server log", request.url.path, headers={"Retry-After": "60"},
                            type_=STORAGE_UNAVAILABLE)


#: Links from a created resource to the operations that take its id (clients and stateful testers follow them).
_LINKS = {("/runs", "202"): ("run_id", ["/runs/{run_id}", "/runs/{run_id}/kpis", "/runs/{run_id}/series", "/runs/{run_id}/stream"]),
          ("/sweeps", "202"): ("sweep_id", ["/sweeps/{sweep_id}", "/sweeps/{sweep_id}/kpis"])}


def _links(schema: dict) -> None:
    paths = schema.get("paths", {})
    for (path, code), (param, targets) in _LINKS.items():
        resp = paths.get(path, {}).get("post", {}).get("responses", {}).get(code)
        if resp is None:
            continue
        links = resp.setdefault("links", {})
        for target in targets:
            for method in ("get", "delete"):
                if method in paths.get(target, {}):
                    ref = "#/paths/" + target.replace("~", "~0").replace("/", "~1") + "/" + method
                    name = method.capitalize() + "".join(part.strip("{}").title().replace("_", "") for part in target.split("/"))
                    links[name] = {"operationRef": ref, "parameters": {param: "$response.body#/id"}}


def _openapi(app: FastAPI):
    """The schema with two bearer schemes: readToken (GET routes, a write token also reads) and writeToken."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes)
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            if "security" not in op:
                continue
            op["security"] = [{"readToken": []}, {"writeToken": []}] if method in ("get", "head") else [{"writeToken": []}]
            for code, resp in AUTH_RESPONSES.items():
                op.setdefault("responses", {}).setdefault(str(code), resp)
            if method not in ("get", "head"):
                op["responses"].setdefault("503", WRITE_RESPONSES[503])
    schema["components"].setdefault("schemas", {}).update(component_schemas())
    schemes.pop("HTTPBearer", None)
    _links(schema)
    app.openapi_schema = schema
    return schema


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; ``settings`` default to the environment (:func:`api.config.get_settings`)."""

    def current_settings() -> Settings:
        return app.dependency_overrides.get(get_settings, get_settings)()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        s = current_settings()
        configure_logging(s.log_format, s.log_level)
        try:
            app.state.services = Services.start(s, asyncio.get_running_loop())
        except StartupError as exc:
            app.state.startup_error = str(exc)
            log.error("cannot start: %s", exc)
            raise
        restore = app.state.services.broadcaster.end_on_signals()  # open streams end at once on Ctrl-C / SIGTERM
        try:
            yield
        finally:
            restore()
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
    app.add_exception_handler(CatalogUnavailable, _storage_error)

    def current_metrics():
        svc = getattr(app.state, "services", None)
        return svc.metrics if svc is not None else None

    # innermost first: each add wraps the ones before
    app.add_middleware(BodyLimit, get_max=lambda: current_settings().max_body_bytes)
    app.add_middleware(LiveStateFastPath)
    app.add_middleware(AuthGate, get_settings=current_settings, public=PUBLIC_PATHS, token_scope=token_scope)
    app.add_middleware(MetricsMiddleware, get_metrics=current_metrics)
    app.add_middleware(CatchAll)
    app.add_middleware(RequestLog, enabled=lambda: current_settings().access_log)
    app.add_middleware(StartupErrors)
    for module in (health, sites, runs, sweeps, live, metrics, problems_route):
        app.include_router(module.router)
    app.include_router(page.data_router)
    app.include_router(page.router)
    app.openapi = lambda: _openapi(app)
    return app
