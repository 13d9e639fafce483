"""Shared dependencies, named once and used as ``Annotated`` aliases in the handlers.

Auth: ``Authorization: Bearer <token>``. Read routes need a read or write token, write routes a write
token; a missing or unknown token is 401, a read token on a write route 403. The check is made before
the route runs, by :class:`api.middleware.AuthGate` (so no body is read for an unauthenticated request);
the dependencies below declare the scopes in OpenAPI (``readToken``, ``writeToken``) and check again.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from twin.catalog import RUN_ID_PATTERN, Catalog

from .config import Settings, get_settings
from .live import LiveTwin
from .services import Services
from .workers import RunPool

__all__ = [
    "SettingsDep", "ServicesDep", "CatalogDep", "PoolDep", "LiveDep", "RunId", "SiteId",
    "require_read", "require_write", "SITE_ID_PATTERN", "token_scope",
]

#: Reference names: ``memphis``, ``colossus1:sub22`` (never a path).
SITE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}(:[a-z0-9][a-z0-9_-]{0,63})?$"

_read_bearer = HTTPBearer(auto_error=False, scheme_name="readToken",
                          description="a token of TWIN_READ_TOKENS (or of TWIN_WRITE_TOKENS): GET routes")
_write_bearer = HTTPBearer(auto_error=False, scheme_name="writeToken",
                           description="a token of TWIN_WRITE_TOKENS: every route")

SettingsDep = Annotated[Settings, Depends(get_settings)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_read_bearer)]
WriteCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_write_bearer)]


def token_scope(token: bytes | None, settings: Settings) -> str | None:
    """'write', 'read', or None for no or an unknown token (compared in constant time)."""
    if settings.auth_disabled:
        return "write"
    if not token:
        return None
    if any(hmac.compare_digest(token, t) for t in settings.write_token_bytes):
        return "write"
    if any(hmac.compare_digest(token, t) for t in settings.read_token_bytes):
        return "read"
    return None


def _scope(creds: HTTPAuthorizationCredentials | None, request: Request) -> str | None:
    known = request.scope.get("state", {}).get("auth_scope")
    if known is not None:
        return known
    return token_scope(creds.credentials.encode() if creds is not None and creds.credentials else None,
                       request.app.state.services.settings)


def _unauthorized(msg: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, msg, headers={"WWW-Authenticate": "Bearer"})


async def require_read(creds: Credentials, request: Request) -> str:
    """A read (or write) token (async: checked on the event loop, no thread hop on hot read paths)."""
    scope = _scope(creds, request)
    if scope is None:
        raise _unauthorized("missing or unknown bearer token" if creds else "a bearer token is required")
    return scope


async def require_write(creds: WriteCredentials, request: Request) -> str:
    """A write token."""
    scope = _scope(creds, request)
    if scope is None:
        raise _unauthorized("missing or unknown bearer token" if creds else "a bearer token is required")
    if scope != "write":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this token has read scope; this route needs a write token")
    return scope


async def get_services(request: Request):
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_catalog(request: Request) -> Catalog:
    return request.app.state.services.catalog


async def get_pool(request: Request):
    return request.app.state.services.pool


async def get_live(request: Request):
    return request.app.state.services.live


CatalogDep = Annotated[Catalog, Depends(get_catalog)]
PoolDep = Annotated[RunPool, Depends(get_pool)]
LiveDep = Annotated[LiveTwin | None, Depends(get_live)]
RunId = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="a run or sweep id", examples=["run-20260715-140000-a1b2c3"])]
SiteId = Annotated[str, Path(pattern=SITE_ID_PATTERN, max_length=129, description="a reference site name", examples=["memphis"])]

