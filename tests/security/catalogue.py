"""The catalogue's routes: for each, who may call it and a probe request.

Each probe is made by every caller of :data:`~.conftest.CALLERS`. A probe that gets past
the access checks is built to change nothing: reads, or writes whose input is refused
(a bad mask, an unknown id, invalid options) or whose state forbids them. So for every
route and every caller the expected answer is known, and in every case the server must
store nothing and write at most one audit event.

``access``:
    ``public``   no token needed (the page, its files, ``/healthz``);
    ``off``      not served at all without ``--docs`` (404 for everyone);
    ``any``      any authenticated user with ``role``;
    ``server``   an admin bound to no project (the whole server);
    ``project``  a user of the path's project with ``role`` (another project's user: 404).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .live import Live

__all__ = ["ROUTES", "Route", "expected_status", "url"]

RANK = {"viewer": 0, "annotator": 1, "padmin": 2, "outsider": 2, "admin": 2}
ROLE_RANK = {"viewer": 0, "annotator": 1, "admin": 2}
P = "/api/v1/projects/discs"
Probe = Callable[[Live], dict[str, Any]]


def _none(_: Live) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    access: str
    role: str = "viewer"
    probe: Probe = _none
    ok: tuple[int, ...] = (200,)
    """What a caller who may use the route gets for the probe."""
    after: Callable[[Live], None] | None = None
    """Put back what a probe that had to succeed changed (archiving the project)."""

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def _restore(live: Live) -> None:
    with live.client("admin", "127.0.9.9") as c:
        c.post(f"{P}/restore").raise_for_status()


NOBODY = "0" * 32
"""An id no row has."""


def _image_and_bad_mask(live: Live) -> dict[str, Any]:
    image = live.files["png"]
    return {
        "files": {"image": ("scan.png", image, "image/png"), "mask": ("m.png", b"not a png")},
        "data": {"split": "train"},
    }


ROUTES: list[Route] = [
    Route("GET", "/healthz", "public"),
    Route("GET", "/", "public"),
    Route("GET", "/static/{path:path}", "public"),
    Route("GET", "/docs", "off", ok=(404,)),
    Route("GET", "/docs/assets/{name}", "off", ok=(404,)),
    Route("GET", "/openapi.json", "off", ok=(404,)),
    Route("GET", "/metrics", "server", "admin"),
    Route("GET", "/api/v1/me", "any"),
    Route("GET", "/api/v1/projects", "any"),
    Route(
        "POST",
        "/api/v1/projects",
        "server",
        "admin",
        lambda lv: {"json": {"name": "no spaces allowed", "labels": [{"value": 1, "name": "x"}]}},
        (422,),
    ),
    Route("GET", "/api/v1/projects/{project}", "project"),
    Route("GET", "/api/v1/schemas/project-settings", "any"),
    Route(
        "PATCH",
        "/api/v1/projects/{project}",
        "project",
        "admin",
        lambda lv: {"json": {"finetune_every": -1}},
        (422,),  # the patched settings are checked whole: invalid_settings
    ),
    # Archiving changes no row count; the project is restored after each probe. The second
    # admin may find it archived already (409) when the restore has not run in between.
    Route(
        "POST",
        "/api/v1/projects/{project}/archive",
        "project",
        "admin",
        ok=(200, 409),
        after=_restore,
    ),
    Route("POST", "/api/v1/projects/{project}/restore", "project", "admin"),
    Route(
        "POST",
        "/api/v1/projects/{project}/reference/import",
        "project",
        "admin",
        lambda lv: {"files": {"file": ("data.zip", b"not a zip")}},
        (400,),
    ),
    Route("GET", "/api/v1/projects/{project}/reference/summary", "project"),
    Route("DELETE", "/api/v1/projects/{project}/reference/{pair}", "project", "admin", ok=(404,)),
    Route(
        "POST",
        "/api/v1/projects/{project}/erasures/preview",
        "project",
        "admin",
        lambda lv: {"json": {"scope": "patient", "value": "nobody"}},
        (404,),
    ),
    Route(
        "POST",
        "/api/v1/projects/{project}/erasures",
        "project",
        "admin",
        lambda lv: {"json": {"scope": "everything", "value": "x", "reason": "probe"}},
        (422,),
    ),
    Route("GET", "/api/v1/projects/{project}/erasures", "project", "admin"),
    Route("GET", "/api/v1/projects/{project}/erasures/{erasure}", "project", "admin", ok=(404,)),
    Route("GET", "/api/v1/projects/{project}/jobs/{job}/curve", "project"),
    Route("GET", "/api/v1/users", "server", "admin"),
    Route(
        "POST",
        "/api/v1/users",
        "server",
        "admin",
        lambda lv: {"json": {"name": "probe", "role": "superuser"}},
        (422,),
    ),
    Route("GET", "/api/v1/users/{user}", "server", "admin", ok=(404,)),
    Route(
        "PATCH",
        "/api/v1/users/{user}",
        "server",
        "admin",
        lambda lv: {"json": {"disabled": True}},
        (404,),
    ),
    Route("GET", "/api/v1/users/{user}/tokens", "server", "admin", ok=(404,)),
    Route("POST", "/api/v1/users/{user}/tokens", "server", "admin", ok=(404,)),
    Route("POST", "/api/v1/users/{user}/tokens/{token}/revoke", "server", "admin", ok=(404,)),
    Route("GET", "/api/v1/projects/{project}/reference", "project"),
    Route(
        "POST",
        "/api/v1/projects/{project}/reference",
        "project",
        "annotator",
        _image_and_bad_mask,
        (400,),
    ),
    Route(
        "POST",
        "/api/v1/projects/{project}/images",
        "project",
        "annotator",
        lambda lv: {"files": {"file": ("x.png", b"not an image")}},
        (400,),
    ),
    Route("GET", "/api/v1/projects/{project}/images/{image}", "project"),
    Route("GET", "/api/v1/projects/{project}/images/{image}/file", "project"),
    Route("GET", "/api/v1/projects/{project}/images/{image}/display", "project"),
    Route(
        "POST",
        "/api/v1/projects/{project}/analyses",
        "project",
        "annotator",
        lambda lv: {"json": {"image_id": "0" * 32}},
        (404,),
    ),
    Route("GET", "/api/v1/projects/{project}/analyses", "project"),
    Route("GET", "/api/v1/projects/{project}/analyses/{analysis}", "project"),
    Route("GET", "/api/v1/projects/{project}/analyses/{analysis}/mask", "project"),
    Route("GET", "/api/v1/projects/{project}/analyses/{analysis}/overlay", "project"),
    # The project is 2D: its analyses have no slices (400), nothing is rendered or kept.
    Route(
        "GET",
        "/api/v1/projects/{project}/analyses/{analysis}/slice",
        "project",
        probe=lambda lv: {"params": {"plane": "axial", "index": 0}},
        ok=(400,),
    ),
    Route("GET", "/api/v1/projects/{project}/analyses/{analysis}/seg", "project", ok=(409,)),
    # The viewer's whole volumes, interpolation and label volumes: a 2D analysis has no
    # voxels (400), nothing is kept.
    Route(
        "GET",
        "/api/v1/projects/{project}/analyses/{analysis}/voxels",
        "project",
        probe=lambda lv: {"params": {"kind": "image"}},
        ok=(400,),
    ),
    Route(
        "POST",
        "/api/v1/projects/{project}/analyses/{analysis}/interpolate",
        "project",
        "annotator",
        lambda lv: {
            "files": {"file": ("s.gz", b"\x1f\x8b")},
            "data": {"plane": "axial", "indices": "0,2"},
        },
        (400,),
    ),
    Route(
        "POST",
        "/api/v1/projects/{project}/analyses/{analysis}/corrections/voxels",
        "project",
        "annotator",
        lambda lv: {"files": {"file": ("l.gz", b"\x1f\x8b")}},
        (400,),
    ),
    Route("GET", "/api/v1/projects/{project}/review-queue", "project"),
    # A click whose x is a string: refused (422) before any model work; nothing is kept.
    Route(
        "POST",
        "/api/v1/projects/{project}/analyses/{analysis}/refine",
        "project",
        "annotator",
        lambda lv: {"json": {"clicks": [{"x": "1", "y": 1, "label": 1}]}},
        (422,),
    ),
    # The caller's refined label map: no interaction is live for the probe's caller (404).
    Route(
        "GET",
        "/api/v1/projects/{project}/analyses/{analysis}/refine/labels",
        "project",
        "annotator",
        ok=(404,),
    ),
    Route(
        "POST",
        "/api/v1/projects/{project}/images/{image}/segment",
        "project",
        "annotator",
        lambda lv: {"json": {"clicks": [{"x": 1, "y": 1, "label": 0}]}},
        (422,),
    ),
    Route(
        "POST",
        "/api/v1/projects/{project}/analyses/{analysis}/corrections",
        "project",
        "annotator",
        lambda lv: {"files": {"file": ("m.png", b"not a png")}},
        (400,),
    ),
    Route(
        "POST",
        "/api/v1/projects/{project}/corrections/seg",
        "project",
        "annotator",
        lambda lv: {"files": {"file": ("s.dcm", b"not dicom")}},
        (400,),
    ),
    Route("GET", "/api/v1/projects/{project}/corrections", "project"),
    Route("GET", "/api/v1/projects/{project}/corrections/{correction}", "project"),
    Route("GET", "/api/v1/projects/{project}/corrections/{correction}/mask", "project"),
    Route("GET", "/api/v1/projects/{project}/models", "project"),
    Route("GET", "/api/v1/projects/{project}/models/{version}", "project"),
    Route("POST", "/api/v1/projects/{project}/models/rollback", "project", "admin", ok=(409,)),
    Route(
        "POST",
        "/api/v1/projects/{project}/models/{version}/promote",
        "project",
        "admin",
        lambda lv: {"json": {"reason": "x" * 5000}},
        (422,),
    ),
    Route("GET", "/api/v1/projects/{project}/models/{version}/download", "project"),
    Route(
        "POST",
        "/api/v1/projects/{project}/jobs",
        "project",
        "admin",
        lambda lv: {"json": {"kind": "train", "options": {"steps": -5}}},
        (422,),
    ),
    Route("GET", "/api/v1/projects/{project}/jobs", "project"),
    Route("GET", "/api/v1/projects/{project}/jobs/{job}", "project"),
    Route("POST", "/api/v1/projects/{project}/jobs/{job}/cancel", "project", "admin", ok=(409,)),
    Route("GET", "/api/v1/audit", "any", "admin"),
    Route("GET", "/api/v1/projects/{project}/dicom", "project", "admin"),
    Route(
        "PUT",
        "/api/v1/projects/{project}/dicom",
        "project",
        "admin",
        lambda lv: {"json": {"dicomweb": {"url": "http://medloop:secret@127.0.0.1:9/dicom-web"}}},
        (422,),
    ),
    Route("POST", "/api/v1/projects/{project}/dicomweb/sync", "project", "admin", ok=(400,)),
    Route("GET", "/api/v1/projects/{project}/dicomweb/instances", "project", "admin"),
    Route("GET", "/api/v1/projects/{project}/pseudonyms", "project", "admin"),
]


def url(route: Route, ids: dict[str, str]) -> str:
    """The route's path with the catalogue server's ids filled in."""
    path = route.path.replace("{path:path}", "js/app.js")
    return path.format(
        project="discs",
        name="swagger-ui.css",
        image=ids["i"],
        analysis=ids["a"],
        correction=ids["c"],
        job=ids["j"],
        version="v0001",
        pair=NOBODY,
        erasure=NOBODY,
        user=NOBODY,
        token=NOBODY,
    )


def expected_status(route: Route, caller: str) -> tuple[int, ...]:
    """What ``caller`` must get from ``route``'s probe."""
    if route.access in ("public", "off"):
        return route.ok
    if caller in ("none", "bad"):
        return (401,)
    if route.access == "project" and caller == "outsider":
        return (404,)
    if RANK[caller] < ROLE_RANK[route.role]:
        return (403,)
    if route.access == "server" and caller != "admin":
        return (403,)
    return route.ok
