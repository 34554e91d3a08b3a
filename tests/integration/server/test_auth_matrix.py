"""Every route × every caller: no token, viewer, annotator, admin, and an admin of another project.

Expected: no token -> 401; a role below the route's -> 403; a caller bound to another
project -> 404 (the project is not even confirmed to exist); otherwise the request
gets past auth (any answer but 401/403).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import Server, image_bytes, mask_bytes

ROLES = ["none", "viewer", "annotator", "admin", "outsider"]
RANK = {"viewer": 0, "annotator": 1, "admin": 2}


def _ids(server: Server) -> dict[str, str]:
    h = server.h("admin")
    a = server.client.post(
        "/api/v1/projects/discs/analyses",
        files={"file": ("x.png", image_bytes(server, 8))},
        headers=h,
    ).json()
    jobs = server.client.get("/api/v1/projects/discs/jobs", headers=h).json()["items"]
    return {"a": a["id"], "i": a["image_id"], "j": jobs[0]["id"]}


# (method, path, min role, project-scoped, request kwargs builder)
Kw = Callable[[Server], dict[str, Any]]
NONE: Kw = lambda s: {}  # noqa: E731
ROUTES: list[tuple[str, str, str, bool, Kw]] = [
    ("GET", "/api/v1/me", "viewer", False, NONE),
    ("GET", "/api/v1/projects", "viewer", False, NONE),
    (
        "POST",
        "/api/v1/projects",
        "admin",
        False,
        lambda s: {
            "json": {"name": "p-matrix", "labels": [{"value": 1, "name": "x", "color": "#000000"}]}
        },
    ),
    ("GET", "/api/v1/projects/discs", "viewer", True, NONE),
    ("GET", "/api/v1/projects/discs/reference", "viewer", True, NONE),
    (
        "POST",
        "/api/v1/projects/discs/reference",
        "annotator",
        True,
        lambda s: {
            "files": {"image": ("i.png", image_bytes(s, 9)), "mask": ("m.png", mask_bytes(s, 9))},
            "data": {"split": "test"},
        },
    ),
    (
        "POST",
        "/api/v1/projects/discs/images",
        "annotator",
        True,
        lambda s: {"files": {"file": ("i.png", image_bytes(s, 9))}},
    ),
    ("GET", "/api/v1/projects/discs/images/{i}", "viewer", True, NONE),
    ("GET", "/api/v1/projects/discs/images/{i}/file", "viewer", True, NONE),
    (
        "POST",
        "/api/v1/projects/discs/analyses",
        "annotator",
        True,
        lambda s: {"json": {"image_id": "missing"}},
    ),
    ("GET", "/api/v1/projects/discs/analyses", "viewer", True, NONE),
    ("GET", "/api/v1/projects/discs/analyses/{a}", "viewer", True, NONE),
    ("GET", "/api/v1/projects/discs/analyses/{a}/mask", "viewer", True, NONE),
    ("GET", "/api/v1/projects/discs/analyses/{a}/overlay", "viewer", True, NONE),
    (
        "POST",
        "/api/v1/projects/discs/analyses/{a}/corrections",
        "annotator",
        True,
        lambda s: {"files": {"file": ("m.png", b"not a png")}},
    ),
    ("GET", "/api/v1/projects/discs/corrections", "viewer", True, NONE),
    ("GET", "/api/v1/projects/discs/review-queue", "viewer", True, NONE),
    ("GET", "/api/v1/projects/discs/models", "viewer", True, NONE),
    ("GET", "/api/v1/projects/discs/models/v0001", "viewer", True, NONE),
    ("GET", "/api/v1/projects/discs/models/v0001/download", "viewer", True, NONE),
    ("POST", "/api/v1/projects/discs/models/v0001/promote", "admin", True, NONE),
    ("POST", "/api/v1/projects/discs/models/rollback", "admin", True, NONE),
    (
        "POST",
        "/api/v1/projects/discs/jobs",
        "admin",
        True,
        lambda s: {"json": {"kind": "evaluate"}},
    ),
    ("GET", "/api/v1/projects/discs/jobs", "viewer", True, NONE),
    ("GET", "/api/v1/projects/discs/jobs/{j}", "viewer", True, NONE),
    ("POST", "/api/v1/projects/discs/jobs/{j}/cancel", "admin", True, NONE),
    ("GET", "/api/v1/audit", "admin", False, NONE),
    ("GET", "/metrics", "admin", False, NONE),
]


SERVER_WIDE = {("POST", "/api/v1/projects"), ("GET", "/metrics")}
"""Routes for admins bound to no project (tests/security has the full catalogue)."""


@pytest.fixture(scope="module")
def ids(server: Server) -> dict[str, str]:
    return _ids(server)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("method", "path", "min_role", "scoped", "kw"), ROUTES, ids=[f"{m} {p}" for m, p, *_ in ROUTES]
)
def test_auth_matrix(
    server: Server,
    ids: dict[str, str],
    role: str,
    method: str,
    path: str,
    min_role: str,
    scoped: bool,
    kw: Kw,
) -> None:
    url = path.format(**ids)
    r = server.client.request(method, url, headers=server.h(role), **kw(server))
    if role == "none":
        expected: tuple[int, ...] = (401,)
    elif role == "outsider":  # an admin bound to another project
        expected = (404,) if scoped else (403,) if (method, path) in SERVER_WIDE else ()
    elif RANK[role] < RANK[min_role]:
        expected = (403,)
    else:
        expected = ()
    if expected:
        assert r.status_code in expected, (r.status_code, r.text)
        if scoped and role != "none":
            assert "disc" not in r.text.lower() or "discs" in r.json()["error"]["message"]
    else:
        assert r.status_code not in (401, 403), (r.status_code, r.text)
        assert r.status_code < 500, r.text


def test_healthz_needs_no_token(server: Server) -> None:
    assert server.client.get("/healthz").status_code == 200
