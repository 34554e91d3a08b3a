"""The catalogue, part 1: every route × every caller, and nothing stored by a refusal.

Each caller comes from an address of its own (127.0.x.y), so the per-client limit on
failed authentications never mixes the cases up.
"""

from __future__ import annotations

import pytest

from medloop.api.app import ROUTERS
from medloop.api.routers import docs

from .catalogue import ROUTES, Route, expected_status, url
from .conftest import CALLERS
from .live import Live

CASES = [(route, caller) for route in ROUTES for caller in CALLERS]


def _source(route: Route, caller: str) -> str:
    return f"127.0.{10 + CALLERS.index(caller)}.{ROUTES.index(route) + 1}"


def test_the_catalogue_lists_every_route() -> None:
    served = {(m, r.path) for router in ROUTERS for r in router.routes for m in r.methods}
    served |= {("GET", r.path) for r in docs.router.routes} | {("GET", "/openapi.json")}
    listed = {(r.method, r.path) for r in ROUTES}
    assert served - listed == set(), "routes missing from the security catalogue"
    assert listed - served == set(), "catalogue entries for routes that do not exist"


@pytest.mark.parametrize(("route", "caller"), CASES, ids=[f"{r.name}-{c}" for r, c in CASES])
def test_route_and_caller(live: Live, route: Route, caller: str) -> None:
    who = None if caller == "none" else caller
    with live.client(who, _source(route, caller)) as c, live.unchanged(max_audit=1):
        r = c.request(route.method, url(route, live.ids), **route.probe(live))
    if route.after is not None:
        route.after(live)
    assert r.status_code in expected_status(route, caller), (r.status_code, r.text[:300])
    assert r.status_code < 500
    if r.status_code in (401, 403, 404) and route.access not in ("public", "off"):
        error = r.json()["error"]
        assert error["code"] in ("unauthorized", "forbidden", "not_found"), error
        if caller == "outsider":  # nothing about the other project comes back
            assert "disc" not in r.text.replace("'discs'", ""), r.text


IDOR = [
    "/images/{i}",
    "/images/{i}/file",
    "/images/{i}/display",
    "/analyses/{a}",
    "/analyses/{a}/mask",
    "/analyses/{a}/overlay",
    "/analyses/{a}/seg",
    "/corrections/{c}",
    "/corrections/{c}/mask",
    "/jobs/{j}",
]


@pytest.mark.parametrize("path", IDOR)
def test_another_projects_ids_are_not_found(live: Live, path: str) -> None:
    """An admin of ``other`` asking for ``discs``' resources through its own project."""
    with live.client("outsider", "127.0.9.1") as c, live.unchanged(max_audit=1):
        r = c.get("/api/v1/projects/other" + path.format(**live.ids))
    assert r.status_code == 404, r.text
    with live.client("outsider", "127.0.9.1") as c, live.unchanged(max_audit=1):
        r = c.post(
            f"/api/v1/projects/other/analyses/{live.ids['a']}/corrections",
            files={"file": ("m.png", live.files["mask"])},
        )
    assert r.status_code == 404, r.text


def test_a_denial_is_recorded_under_the_project_it_was_aimed_at(live: Live) -> None:
    last = live.last_audit_id()
    with live.client("outsider", "127.0.9.2") as c:
        assert c.get("/api/v1/projects/discs/corrections").status_code == 404
    events = live.audit_since(last)
    assert [(e["outcome"], e["project_id"]) for e in events] == [("denied", live.ids["discs"])]
    with live.client("padmin", "127.0.9.2") as c:  # the project's own admin sees it
        seen = c.get("/api/v1/audit", params={"limit": 5}).json()["items"]
    assert any(e["actor_name"] == "outsider" and e["outcome"] == "denied" for e in seen)


@pytest.mark.parametrize(
    ("path", "action"),
    [
        ("/corrections", "correction.list"),
        ("/review-queue", "review.read"),
        ("/reference", "reference.read"),
        ("/jobs", "job.list"),
        ("/jobs/{j}", "job.read"),
    ],
)
def test_reads_of_lists_are_audited_once_per_minute(live: Live, path: str, action: str) -> None:
    """Lists the browser polls are audited, once per caller and minute, not per poll."""
    last = live.last_audit_id()
    with live.client("viewer", "127.0.9.3") as c:
        for _ in range(3):
            assert c.get("/api/v1/projects/discs" + path.format(**live.ids)).status_code == 200
    events = [e for e in live.audit_since(last) if e["action"] == action]
    assert len(events) <= 1
    with live.client("admin", "127.0.9.3") as c:
        found = c.get("/api/v1/audit", params={"limit": 1000}).json()["items"]
    assert any(e["action"] == action and e["actor_name"] == "viewer" for e in found)


@pytest.mark.parametrize("caller", ["padmin", "outsider"])
def test_a_project_admin_cannot_act_for_the_server(live: Live, caller: str) -> None:
    with live.client(caller, "127.0.9.4") as c, live.unchanged():
        r = c.post(
            "/api/v1/projects", json={"name": "escape", "labels": [{"value": 1, "name": "x"}]}
        )
        assert r.status_code == 403 and "not bound to a project" in r.json()["error"]["message"]
    with live.client(caller, "127.0.9.4") as c, live.unchanged():
        assert c.get("/metrics").status_code == 403
    with live.client(caller, "127.0.9.4") as c:  # its audit view is its project's only
        items = c.get("/api/v1/audit", params={"limit": 1000, "project_id": "x"}).json()["items"]
    mine = live.ids["discs" if caller == "padmin" else "other"]
    assert items and {e["project_id"] for e in items} == {mine}
