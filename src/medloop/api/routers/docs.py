"""``/docs``: the API documentation (Swagger UI), only when the server runs with ``--docs``.

Swagger UI's files come from the ``swagger-ui-bundle`` package and are served by this
server (no CDN); the page's own script is a separate file, so ``/docs`` runs under the
same Content Security Policy as every other page. The page and ``/openapi.json`` hold
no data (they describe the routes), so they load without a token; "Authorize" takes
one for "Try it out".
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Response

from medloop.api.routers.web import serve_file

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
}


def _swagger_dir() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


@router.get("/docs", response_class=Response)
def docs() -> Response:
    """The Swagger UI page."""
    return serve_file("docs/index.html")


@router.get("/docs/assets/{name}", response_class=Response)
def asset(name: str) -> Response:
    """One of Swagger UI's own files (a fixed list)."""
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, f"no docs asset {name!r}")
    return Response((_swagger_dir() / name).read_bytes(), media_type=media_type)
