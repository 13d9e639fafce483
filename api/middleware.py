"""Pure ASGI middleware of the app: auth before any body is read, body size cap, last-resort 500s, start-up errors.

Order, outermost first (see :func:`api.main.create_app`): request id and access log → :class:`CatchAll`
→ metrics → :class:`AuthGate` → :class:`LiveStateFastPath` → :class:`BodyLimit` → the routes.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException

from .problems import INTERNAL_ERROR, send_problem

__all__ = ["AuthGate", "BodyLimit", "CatchAll", "StartupErrors", "BodyTooLarge", "LiveStateFastPath"]

log = logging.getLogger("twin.api")


class AuthGate:
    """Check the bearer token before the route (and its body parsing) runs.

    ``GET``/``HEAD`` need a read or write token, every other method a write token; ``public`` paths
    need none. The scope found is left in ``scope["state"]["auth_scope"]`` for the route dependencies.
    """

    def __init__(self, app, get_settings, public: frozenset[str], token_scope):
        self.app = app
        self.get_settings = get_settings
        self.public = public
        self.token_scope = token_scope

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in self.public:
            return await self.app(scope, receive, send)
        token = None
        for k, v in scope.get("headers", ()):
            if k == b"authorization":
                kind, _, cred = v.partition(b" ")
                if kind.lower() == b"bearer" and cred.strip():
                    token = cred.strip()
                break
        auth = self.token_scope(token, self.get_settings())
        if auth is None:
            detail = "missing or unknown bearer token" if token else "a bearer token is required"
            return await send_problem(send, scope, 401, detail, [(b"www-authenticate", b"Bearer")])
        if auth != "write" and scope["method"] not in ("GET", "HEAD"):
            return await send_problem(send, scope, 403, "this token has read scope; this route needs a write token")
        scope.setdefault("state", {})["auth_scope"] = auth
        await self.app(scope, receive, send)


class BodyTooLarge(HTTPException):
    """A request body over the cap (an HTTPException, so body parsing passes it on as 413)."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body over the {limit} byte limit")


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, by Content-Length or while streaming (chunked)."""

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
                    return await send_problem(send, scope, 413, f"request body over the {limit} byte limit")
        seen = 0
        started = False

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def send_wrapper(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, send_wrapper)
        except BodyTooLarge as exc:
            if not started:
                await send_problem(send, scope, 413, exc.detail)


class CatchAll:
    """The last resort: an exception no handler took becomes a 500 Problem, and the connection stays usable.

    (Starlette's own last resort re-raises after answering, and the server then drops the connection,
    failing every request pipelined behind it.)
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def send_wrapper(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await send_problem(send, scope, 500, f"internal error ({type(exc).__name__}); see the server log",
                                   type_=INTERNAL_ERROR)


class StartupErrors:
    """Report a failed start-up by its message alone (the framework would send the whole traceback to the log)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)

        async def send_wrapper(message):
            if message["type"] == "lifespan.startup.failed":
                reason = getattr(scope["app"].state, "startup_error", None) if "app" in scope else None
                if reason:
                    message = {**message, "message": reason}
            await send(message)

        await self.app(scope, receive, send_wrapper)


class LiveStateFastPath:
    """``GET /live/state`` answered from the live twin's cached JSON, without routing or dependency injection.

    The hot path of monitoring systems that poll; it runs after the token check, is counted by the
    metrics under the route's path, and leaves every other case (no state yet, a failed twin) to the
    route in :mod:`api.routes.live`, which documents it and answers 503.
    """

    class _Route:
        path = "/live/state"

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/live/state" and scope["method"] == "GET":
            svc = getattr(scope["app"].state, "services", None)
            live = svc.live if svc is not None else None
            body = live.current_json() if live is not None else None
            if body is not None:
                scope["route"] = self._Route
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
