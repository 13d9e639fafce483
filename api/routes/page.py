"""The engineer's page (``GET /``, assets under ``/ui/``) and the small reads it needs: presets and the token's scope.

The page is plain HTML, CSS and JavaScript modules shipped in ``api/static`` (package data): no build
step, no CDN, nothing fetched from outside the service. Its files are served without a token (they hold
no data); every request the page makes for data carries the token the user typed in, as any client's.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from ..deps import require_read
from ..problems import problem_doc

__all__ = ["router", "data_router", "STATIC_DIR", "public_paths"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
#: Media types of the page's files (by suffix); other suffixes are not served.
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".svg": "image/svg+xml", ".ico": "image/x-icon"}
#: The page may be cached briefly; a new version of the package is picked up within a minute.
_CACHE = {"Cache-Control": "public, max-age=60"}


def _assets() -> dict[str, Path]:
    """The page's files by name (only regular files with a known suffix, directly in ``api/static``)."""
    if not STATIC_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(STATIC_DIR.iterdir()) if p.is_file() and p.suffix in _TYPES}


def public_paths() -> frozenset[str]:
    """Paths served without a token: the page and each of its files."""
    return frozenset({"/", *(f"/ui/{name}" for name in _assets())})


router = APIRouter(tags=["page"], include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    """The engineer's page."""
    path = STATIC_DIR / "index.html"
    if not path.is_file():
        raise HTTPException(404, "the page is not installed (api/static/index.html is missing from the package)")
    return FileResponse(path, media_type=_TYPES[".html"], headers=_CACHE)


@router.get("/ui/{name}")
def asset(name: str) -> FileResponse:
    """One file of the page (by name; no sub-directories)."""
    path = _assets().get(name)
    if path is None:
        raise HTTPException(404, f"no page file {name!r}")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_CACHE)


# ---------------------------------------------------------------- data the page needs (read token)
class Preset(BaseModel):
    """A shipped scenario (twin/data/scenarios)."""

    name: str
    description: str
    site: str
    horizon: str | float


class PresetsPublic(BaseModel):
    data: list[Preset]
    count: int


class PresetDetail(Preset):
    doc: dict = Field(description="the scenario document (the TOML as JSON), ready to edit and POST to /runs")


class TokenScope(BaseModel):
    scope: str = Field(description="'read' (may look) or 'write' (may also submit)")


data_router = APIRouter(tags=["page"], dependencies=[Depends(require_read)])


def _preset(name: str) -> tuple[Preset, dict]:
    from twin.runner import scenario_doc
    from twin.scenario import ScenarioError, load_scenario

    try:
        sc = load_scenario(name)
    except ScenarioError:
        raise HTTPException(404, f"no preset {name!r}") from None
    h = sc.scenario
    return Preset(name=name, description=h.description, site=h.site, horizon=h.horizon), scenario_doc(sc)


@data_router.get("/scenarios", response_model=PresetsPublic)
def list_presets() -> PresetsPublic:
    """The shipped scenarios (presets) a what-if can start from."""
    from twin.scenario import list_scenarios

    data = [_preset(n)[0] for n in list_scenarios()]
    return PresetsPublic(data=data, count=len(data))


@data_router.get("/scenarios/{name}", response_model=PresetDetail, responses={404: problem_doc("no such preset")})
def read_preset(name: str) -> PresetDetail:
    """One preset and its scenario document."""
    from twin.scenario import list_scenarios

    if name not in list_scenarios():  # a name, never a path
        raise HTTPException(404, f"no preset {name!r}; expected one of {', '.join(list_scenarios())}")
    p, doc = _preset(name)
    return PresetDetail(**p.model_dump(), doc=doc)


@data_router.get("/auth/scope", response_model=TokenScope)
async def read_scope(request: Request, scope: str = Depends(require_read)) -> TokenScope:
    """The scope of the token of this request (the page hides what a read token may not do)."""
    return TokenScope(scope=scope)
