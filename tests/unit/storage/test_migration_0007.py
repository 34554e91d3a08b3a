"""Migration 0007 on SQLite and PostgreSQL: ``images.headers_blob_key`` and
``images.headers_sha256`` added, kept, counted as referenced blobs, and dropped on
downgrade with the images themselves kept."""

from __future__ import annotations

import sqlalchemy as sa

from medloop.storage import Database, make_engine, migrate
from medloop.storage import repositories as repo

from .dbfixtures import downgrade, settings_of


def _image(db: Database, headers: tuple[str, str] | None) -> str:
    with db.write() as s:
        project = repo.create_project(s, "series", settings_of())
        image, _ = repo.create_image(
            s,
            project_id=project.id,
            sha256="a" * 64,
            blob_key="a" * 64,
            filename="series.nii.gz",
            content_type="application/gzip",
            width=4,
            height=4,
            channels=1,
            headers=headers,
        )
        return image.id


def _columns(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return {c["name"] for c in sa.inspect(conn).get_columns("images")}


def test_the_headers_columns_up_down_and_up_again(db_url: str) -> None:
    migrate(db_url)
    engine = make_engine(db_url)
    try:
        db = Database(engine)
        assert {"headers_blob_key", "headers_sha256"} <= _columns(engine)
        iid = _image(db, ("h" * 64, "h" * 64))
        with db.read() as s:
            stored = repo.get_image(s, iid)
            assert (stored.headers_blob_key, stored.headers_sha256) == ("h" * 64, "h" * 64)
            assert repo.referenced_among(s, {"h" * 64, "z" * 64}) == {"h" * 64}
        downgrade(engine, "0006")
        assert not {"headers_blob_key", "headers_sha256"} & _columns(engine)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM images")).scalar() == 1
        migrate(engine)
        with db.read() as s:
            assert repo.get_image(s, iid).headers_blob_key is None  # dropped with the column
    finally:
        engine.dispose()
