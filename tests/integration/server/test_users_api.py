"""Users and tokens over HTTP: create, list with last use, expiry, revoke (401 at once), disable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .conftest import Server


def _days_from_now(iso: str | None) -> float | None:
    if iso is None:
        return None
    at = datetime.fromisoformat(iso)
    return (at - datetime.now(UTC)) / timedelta(days=1)


def _me(server: Server, token: str) -> int:
    r = server.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    return r.status_code


def test_people_expire_by_default_devices_do_not(server: Server) -> None:
    c, h = server.client, server.h("admin")
    person = c.post("/api/v1/users", json={"name": "dr-x", "role": "viewer"}, headers=h)
    assert person.status_code == 201, person.text
    body = person.json()
    assert body["user"]["kind"] == "person" and body["user"]["project_id"] is None
    assert 89.9 < (_days_from_now(body["token"]["expires_at"]) or 0) <= 90
    assert body["token"]["token"].startswith("mlp_") and body["token"]["active"]
    device = c.post(
        "/api/v1/users",
        json={"name": "scanner-1", "role": "annotator", "kind": "device", "project": "discs"},
        headers=h,
    ).json()
    assert device["token"]["expires_at"] is None
    assert device["user"]["project_id"] == server.runtime.services.projects.find("discs").id
    never = c.post(
        "/api/v1/users", json={"name": "dr-y", "role": "viewer", "expires_in_days": None}, headers=h
    ).json()
    assert never["token"]["expires_at"] is None
    week = c.post(
        "/api/v1/users/dr-y/tokens", json={"name": "laptop", "expires_in_days": 7}, headers=h
    ).json()
    assert 6.9 < (_days_from_now(week["expires_at"]) or 0) <= 7 and week["name"] == "laptop"
    # the secret is shown once: never listed, never in the audit trail
    listed = c.get("/api/v1/users/dr-y/tokens", headers=h).json()["items"]
    assert {t["name"] for t in listed} == {"initial", "laptop"}
    assert all("token" not in t for t in listed)
    audit = c.get("/api/v1/audit?limit=100", headers=h).text
    assert week["token"] not in audit and never["token"]["token"] not in audit


def test_bad_users_answer_4xx_and_store_nothing(server: Server) -> None:
    c, h = server.client, server.h("admin")
    cases = [
        ({"name": "a", "role": "root"}, 422),
        ({"name": "", "role": "viewer"}, 422),
        ({"name": "b\n", "role": "viewer"}, 422),
        ({"name": "c", "role": "viewer", "expires_in_days": 0}, 422),
        ({"name": "d", "role": "viewer", "kind": "robot"}, 422),
        ({"name": "e", "role": "viewer", "project": "nope"}, 404),
        ({"name": "admin", "role": "viewer"}, 409),
    ]
    before = len(c.get("/api/v1/users", headers=h).json()["items"])
    for body, status in cases:
        r = c.post("/api/v1/users", json=body, headers=h)
        assert r.status_code == status, (body, r.text)
        assert r.json()["error"]["message"]
    assert len(c.get("/api/v1/users", headers=h).json()["items"]) == before


def test_a_revoked_token_answers_401_at_once_and_last_use_is_shown(server: Server) -> None:
    c, h = server.client, server.h("admin")
    made = c.post("/api/v1/users", json={"name": "dr-z", "role": "viewer"}, headers=h).json()
    first = made["token"]
    second = c.post("/api/v1/users/dr-z/tokens", json={"name": "phone"}, headers=h).json()
    assert _me(server, first["token"]) == 200 and _me(server, second["token"]) == 200
    users = {u["name"]: u for u in c.get("/api/v1/users", headers=h).json()["items"]}
    assert users["dr-z"]["last_used_at"] is not None
    r = c.post(f"/api/v1/users/dr-z/tokens/{first['id']}/revoke", headers=h)
    assert r.status_code == 200 and r.json()["revoked_at"] and not r.json()["active"]
    assert _me(server, first["token"]) == 401
    assert _me(server, second["token"]) == 200  # the other token still works
    # another user's token id is not found under this user
    admin_tokens = c.get("/api/v1/users/admin/tokens", headers=h).json()["items"]
    wrong = c.post(f"/api/v1/users/dr-z/tokens/{admin_tokens[0]['id']}/revoke", headers=h)
    assert wrong.status_code == 404
    # disabling the user stops every token; enabling brings back the unrevoked ones
    assert c.patch("/api/v1/users/dr-z", json={"disabled": True}, headers=h).status_code == 200
    assert _me(server, second["token"]) == 401
    c.patch("/api/v1/users/dr-z", json={"disabled": False}, headers=h)
    assert _me(server, second["token"]) == 200 and _me(server, first["token"]) == 401
    events = c.get("/api/v1/audit?limit=200", headers=h).json()["items"]
    revoked = [e for e in events if e["action"] == "token.revoke" and e["outcome"] == "ok"]
    assert revoked and revoked[0]["resource_id"] == first["id"]
    updates = [e for e in events if e["action"] == "user.update" and e["outcome"] == "ok"]
    assert updates[0]["detail"]["before"]["disabled"] is True
    assert updates[0]["detail"]["after"]["disabled"] is False


def test_role_and_scope_change_and_the_last_admin_stays(server: Server) -> None:
    c, h = server.client, server.h("admin")
    c.post("/api/v1/users", json={"name": "dr-w", "role": "viewer"}, headers=h)
    r = c.patch("/api/v1/users/dr-w", json={"role": "annotator", "project": "discs"}, headers=h)
    assert r.status_code == 200 and r.json()["role"] == "annotator"
    assert r.json()["project_id"] is not None
    r = c.patch("/api/v1/users/dr-w", json={"project": None}, headers=h)
    assert r.json()["project_id"] is None and r.json()["role"] == "annotator"
    # "admin" is the only admin of every project: it cannot be disabled, demoted or bound
    for change in ({"disabled": True}, {"role": "viewer"}, {"project": "discs"}):
        r = c.patch("/api/v1/users/admin", json=change, headers=h)
        assert r.status_code == 409 and "last" in r.json()["error"]["message"], change
    assert server.client.get("/api/v1/me", headers=h).json()["role"] == "admin"


def test_only_admins_of_every_project_manage_users(server: Server) -> None:
    c = server.client
    for who, status in (("outsider", 403), ("annotator", 403), ("viewer", 403), ("nobody", 401)):
        assert c.get("/api/v1/users", headers=server.h(who)).status_code == status, who
        r = c.post("/api/v1/users", json={"name": "x9", "role": "admin"}, headers=server.h(who))
        assert r.status_code == status, who
    events = c.get("/api/v1/audit?limit=100", headers=server.h("admin")).json()["items"]
    denied = [e for e in events if e["action"] == "user.create" and e["outcome"] == "denied"]
    assert {e["actor_name"] for e in denied} >= {"outsider", "annotator", "viewer"}
