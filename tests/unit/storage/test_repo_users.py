"""Users and their tokens: stored only as sha256, several per user, expiry, revocation, last use."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from medloop.errors import NotFoundError
from medloop.storage import repositories as repo
from medloop.storage.models import ApiToken, utcnow


def test_tokens_are_stored_hashed(
    sessions: sessionmaker[Session], engine: Engine, project_id: str
) -> None:
    with sessions.begin() as s:
        user = repo.create_user(s, "dr-a", "annotator", project_id)
        admin = repo.create_user(s, "root", "admin", kind="person")
        _, token = repo.issue_token(s, user.id, "laptop")
        _, admin_token = repo.issue_token(s, admin.id)
    assert token.startswith("mlp_") and len(token) > 40
    assert token != admin_token
    now = utcnow()
    with sessions() as s:
        stored = s.scalars(select(ApiToken)).all()
        assert {t.token_hash for t in stored} == {
            repo.hash_token(token),
            repo.hash_token(admin_token),
        }
        for row in stored:
            assert token not in repr(vars(row)) and admin_token not in repr(vars(row))
        found = repo.token_of(s, token, now)
        assert found is not None
        assert found[0].id == user.id and found[0].project_id == project_id
        assert found[1].name == "laptop"
        assert repo.token_of(s, token + "x", now) is None
        assert repo.token_of(s, "", now) is None
        assert repo.token_of(s, repo.hash_token(token), now) is None
    if engine.dialect.name == "sqlite":
        db_file = engine.url.database
        assert db_file is not None
        with open(db_file, "rb") as fh:
            raw = fh.read()
        assert token.encode() not in raw


def test_several_tokens_revocation_expiry_and_disabled_users(
    sessions: sessionmaker[Session],
) -> None:
    now = utcnow()
    with sessions.begin() as s:
        user = repo.create_user(s, "scanner-3", "annotator", kind="device")
        first, secret1 = repo.issue_token(s, user.id, "one")
        second, secret2 = repo.issue_token(s, user.id, "two", expires_at=now + timedelta(days=1))
        _, secret3 = repo.issue_token(s, user.id, "old", expires_at=now - timedelta(seconds=1))
    with sessions.begin() as s:
        assert repo.token_of(s, secret1, now) is not None
        assert repo.token_of(s, secret2, now) is not None
        assert repo.token_of(s, secret3, now) is None  # expired
        assert repo.token_of(s, secret2, now + timedelta(days=2)) is None  # expires in a day
        revoked = repo.revoke_token(s, first.id, user.id)
        assert revoked.revoked_at is not None and not revoked.active(now)
        assert repo.revoke_token(s, first.id).revoked_at == revoked.revoked_at  # no-op
        with pytest.raises(NotFoundError):
            repo.revoke_token(s, second.id, "0" * 32)  # another user's token
    with sessions.begin() as s:
        assert repo.token_of(s, secret1, now) is None
        assert repo.token_of(s, secret2, now) is not None
        assert [t.name for t in repo.list_tokens(s, user.id)] == ["old", "two", "one"]
        repo.set_user_disabled(s, user.id)
    with sessions.begin() as s:
        assert repo.token_of(s, secret2, now) is None  # disabled user
        repo.set_user_disabled(s, user.id, False)
        assert repo.revoke_tokens(s, user.id) == 2
    with sessions() as s:
        assert all(not t.active(now) for t in repo.list_tokens(s, user.id))


def test_last_use_is_the_latest_of_the_tokens(sessions: sessionmaker[Session]) -> None:
    now = utcnow()
    with sessions.begin() as s:
        user = repo.create_user(s, "dr-b", "viewer")
        one, _ = repo.issue_token(s, user.id)
        two, _ = repo.issue_token(s, user.id)
        assert repo.get_user(s, user.id).last_used_at is None
        repo.touch_token(s, one.id, now - timedelta(hours=1))
        repo.touch_token(s, two.id, now)
    with sessions() as s:
        listed = {u.name: u for u in repo.list_users(s)}
        assert listed["dr-b"].last_used_at == now
        assert repo.get_token(s, one.id).last_used_at == now - timedelta(hours=1)


def test_admins_of_every_project_are_counted(
    sessions: sessionmaker[Session], project_id: str
) -> None:
    with sessions.begin() as s:
        root = repo.create_user(s, "root", "admin")
        repo.create_user(s, "scoped", "admin", project_id)
        repo.create_user(s, "viewer", "viewer")
        assert repo.count_admins(s) == 1
        assert repo.count_admins(s, exclude=root.id) == 0
        moved = repo.update_user(s, root.id, project_id=project_id)
        assert moved.project_id == project_id and repo.count_admins(s) == 0
        back = repo.update_user(s, root.id, unbind=True, role="annotator")
        assert back.project_id is None and back.role == "annotator"
