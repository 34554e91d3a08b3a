"""The browser UI: ``/`` (the page) and ``/static/...`` (its scripts, styles and icons).

The files live inside the package (``medloop/web/``) and are read through
:mod:`importlib.resources`, so an installed wheel serves them as a checkout does.
They carry no patient data and so need no token: every call the page makes goes
to ``/api/v1`` with the user's own bearer token, like any other client. The
Content Security Policy of :class:`~medloop.api.middleware.SecurityHeaders`
allows only these same-origin files (no inline script or style).
"""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import APIRouter, HTTPException, Response

__all__ = ["router", "serve_file"]

router = APIRouter(include_in_schema=False)

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}
_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _web_root() -> Traversable:
    return files("medloop").joinpath("web")


def _find(path: str) -> Traversable:
    """The file at ``path`` under the web folder; 404 for anything else (no ``..``, no dot files)."""
    parts = path.split("/")
    if not parts or any(not _PART.match(p) or ".." in p for p in parts):
        raise HTTPException(404, f"no static file {path!r}")
    node = _web_root()
    for part in parts:
        node = node.joinpath(part)
    suffix = "." + parts[-1].rsplit(".", 1)[-1] if "." in parts[-1] else ""
    if suffix not in _MEDIA_TYPES or not node.is_file():
        raise HTTPException(404, f"no static file {path!r}")
    return node


def serve_file(path: str) -> Response:
    """The file at ``path`` under the web folder, with its media type (404 otherwise)."""
    node = _find(path)
    suffix = "." + path.rsplit(".", 1)[-1]
    return Response(node.read_bytes(), media_type=_MEDIA_TYPES[suffix])


@router.get("/", response_class=Response)
def index() -> Response:
    """The single page of the UI."""
    return serve_file("index.html")


@router.get("/static/{path:path}", response_class=Response)
def static(path: str) -> Response:
    """A script, style sheet or icon of the UI."""
    return serve_file(path)
