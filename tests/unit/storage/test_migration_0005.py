"""Migration 0005 on SQLite and PostgreSQL: each user's token carried into ``api_tokens``
(still working, no expiry), and back on downgrade."""

from __future__ import annotations

import sqlalchemy as sa

from medloop.storage import Database, make_engine, migrate
from medloop.storage import repositories as repo
from medloop.storage.models import utcnow

from .dbfixtures import downgrade

SECRET = "mlp_old-token-of-an-installed-scanner-0123456789"


def test_tokens_move_to_their_table_and_back(db_url: str) -> None:
    migrate(db_url, "0004")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO projects (id, name, settings, created_at, dicom) VALUES "
                    "('p1', 'p', :settings, :at, '{}')"
                ),
                {
                    "settings": '{"labels": [{"value": 1, "name": "a", "color": "#000000"}]}',
                    "at": "2026-11-29 09:00:00",
                },
            )
            conn.execute(
                sa.text(
                    "INSERT INTO users (id, name, role, project_id, token_hash, created_at, disabled)"
                    " VALUES ('u1', 'scanner', 'annotator', 'p1', :h, :at, false)"
                ),
                {"h": repo.hash_token(SECRET), "at": "2026-11-29 09:00:00"},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO images (id, project_id, sha256, blob_key, filename, content_type,"
                    " width, height, channels, meta, created_at, created_by, frames) VALUES"
                    " ('i1', 'p1', :h, :h, 'x.png', 'image/png', 4, 4, 1, '{}', :at, 'u1', 1)"
                ),
                {"h": "c" * 64, "at": "2026-11-29 09:00:00"},
            )
        migrate(engine)
        db = Database(engine)
        with db.read() as s:
            found = repo.token_of(s, SECRET, utcnow())
            assert found is not None
            user, token = found
            assert (user.name, user.kind, user.project_id) == ("scanner", "person", "p1")
            assert (token.name, token.expires_at, token.revoked_at) == ("initial", None, None)
            assert repo.list_projects(s)[0].archived_at is None
        with db.write() as s:
            _, newer_secret = repo.issue_token(s, "u1", "second")
            repo.revoke_token(s, token.id)
        downgrade(engine, "0004")
        with engine.connect() as conn:
            (stored,) = conn.execute(sa.text("SELECT token_hash FROM users WHERE id = 'u1'")).one()
            tables = set(sa.inspect(conn).get_table_names())
        assert stored == repo.hash_token(newer_secret)  # the newest token that still works
        assert "api_tokens" not in tables and "erasures" not in tables
        migrate(engine)  # and up again
        with db.read() as s:
            assert repo.token_of(s, newer_secret, utcnow()) is not None
            assert repo.token_of(s, SECRET, utcnow()) is None
    finally:
        engine.dispose()
