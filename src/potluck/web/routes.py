"""Pages of the web app: one router, made of each area's router.

Areas: ``auth`` (sign up/in/out), ``home`` (start page, dashboard), ``groups`` (sharing), and
the ones other modules add: a module ``potluck.web.<area>`` for each name in ``AREAS`` that
exists is included when it defines ``router`` (console, admin, orders, wallet).
"""

from __future__ import annotations

import importlib
import importlib.util

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, Response

from potluck.web import auth, groups, home, pages

router = APIRouter(include_in_schema=False)

AREAS = ("console", "admin", "orders", "wallet")

_STATIC = pages.STATIC_DIR.resolve()
_TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


@router.get("/static/{path:path}")
def static(path: str) -> Response:
    """The files under web/static/ (no directory listing, nothing outside it)."""
    target = (_STATIC / path).resolve()
    if not target.is_relative_to(_STATIC) or not target.is_file() or path.endswith(".md"):
        return Response(status_code=404)
    return FileResponse(
        target,
        media_type=_TYPES.get(target.suffix, "application/octet-stream"),
        headers={"Cache-Control": "public, max-age=3600"},
    )


router.include_router(auth.router)
router.include_router(home.router)
router.include_router(groups.router)
for _area in AREAS:
    _name = f"potluck.web.{_area}"
    if importlib.util.find_spec(_name) is not None:
        _module = importlib.import_module(_name)
        if hasattr(_module, "router"):
            router.include_router(_module.router)


def install(app: FastAPI) -> None:
    """Errors of page paths as pages (404, 403, sign-in redirects); see pages.install."""
    pages.install(app)
