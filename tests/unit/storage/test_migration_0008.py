"""Migration 0008 on SQLite and PostgreSQL: the viewer's copies on ``images`` (key, sha256,
header) and ``analyses`` (key, sha256) added, set once, counted as referenced blobs, and
dropped on downgrade with the images and analyses themselves kept."""

from __future__ import annotations

import sqlalchemy as sa

from medloop.domain.viewer import VoxelHeader
from medloop.storage import Database, make_engine, migrate
from medloop.storage import repositories as repo

from .dbfixtures import downgrade, settings_of

IMAGE = ("images", ("viewer_blob_key", "viewer_sha256", "viewer_header"))
ANALYSIS = ("analyses", ("viewer_blob_key", "viewer_sha256"))
HEADER = VoxelHeader((4, 4, 3), (1.0, 1.0, 2.0), "int16", 40.0, 400.0)


def _rows(db: Database) -> tuple[str, str]:
    with db.write() as s:
        project = repo.create_project(s, "volumes", settings_of())
        image, _ = repo.create_image(
            s,
            project_id=project.id,
            sha256="a" * 64,
            blob_key="a" * 64,
            filename="ct.nii.gz",
            content_type="application/gzip",
            width=4,
            height=4,
            channels=1,
        )
        analysis = repo.create_analysis(
            s,
            project_id=project.id,
            image_id=image.id,
            model_version="v0001",
            label_blob_key="b" * 64,
            label_sha256="b" * 64,
            uncertainty=0.1,
            measurements=[],
        )
        return image.id, analysis.id


def _columns(engine: sa.Engine, table: str) -> set[str]:
    with engine.connect() as conn:
        return {c["name"] for c in sa.inspect(conn).get_columns(table)}


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar() or 0)


def test_the_viewer_columns_up_down_and_up_again(db_url: str) -> None:
    migrate(db_url)
    engine = make_engine(db_url)
    try:
        db = Database(engine)
        for table, names in (IMAGE, ANALYSIS):
            assert set(names) <= _columns(engine, table)
        iid, aid = _rows(db)
        with db.write() as s:
            assert repo.set_image_viewer(s, iid, "c" * 64, "c" * 64, HEADER.to_json())
            assert repo.set_analysis_viewer(s, aid, "d" * 64, "d" * 64)
            # set once: a second copy (another thread's) does not replace it
            assert not repo.set_image_viewer(s, iid, "e" * 64, "e" * 64, HEADER.to_json())
            assert not repo.set_analysis_viewer(s, aid, "e" * 64, "e" * 64)
        with db.read() as s:
            image, analysis = repo.get_image(s, iid), repo.get_analysis(s, aid)
            assert (image.viewer_blob_key, image.viewer_header) == ("c" * 64, HEADER)
            assert analysis.viewer_sha256 == "d" * 64
            assert repo.referenced_among(s, {"c" * 64, "d" * 64, "e" * 64}) == {"c" * 64, "d" * 64}
            assert {"c" * 64, "d" * 64} <= repo.referenced_blob_keys(s)
        downgrade(engine, "0007")
        for table, names in (IMAGE, ANALYSIS):
            assert not set(names) & _columns(engine, table)
            assert _count(engine, table) == 1
        migrate(engine)
        with db.read() as s:  # dropped with the columns
            assert repo.get_image(s, iid).viewer_header is None
            assert repo.get_analysis(s, aid).viewer_blob_key is None
    finally:
        engine.dispose()
