"""Migration 0006 on SQLite and PostgreSQL: ``corrections.effort`` added, kept, and dropped
on downgrade with the corrections themselves kept."""

from __future__ import annotations

import sqlalchemy as sa

from medloop.domain.records import CorrectionEffort
from medloop.storage import Database, make_engine, migrate
from medloop.storage import repositories as repo

from .dbfixtures import downgrade, settings_of


def _correction(db: Database, effort: CorrectionEffort | None) -> str:
    with db.write() as s:
        project = repo.create_project(s, "effort", settings_of())
        image, _ = repo.create_image(
            s,
            project_id=project.id,
            sha256="a" * 64,
            blob_key="a" * 64,
            filename="i.png",
            content_type="image/png",
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
            uncertainty=0.5,
            measurements=[],
        )
        return repo.create_correction(
            s,
            project_id=project.id,
            analysis_id=analysis.id,
            mask_blob_key="c" * 64,
            mask_sha256="c" * 64,
            dice_vs_prediction=0.75,
            author_id=None,
            effort=effort,
        ).id


def _columns(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return {c["name"] for c in sa.inspect(conn).get_columns("corrections")}


def test_the_effort_column_up_down_and_up_again(db_url: str) -> None:
    migrate(db_url)
    engine = make_engine(db_url)
    try:
        db = Database(engine)
        assert "effort" in _columns(engine)
        cid = _correction(db, CorrectionEffort(clicks=3, brush_strokes=1, active_seconds=12.5))
        with db.read() as s:
            stored = repo.get_correction(s, cid)
        assert stored.effort == CorrectionEffort(3, 1, 12.5) and stored.dice_vs_prediction == 0.75
        downgrade(engine, "0005")
        assert "effort" not in _columns(engine)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM corrections")).scalar() == 1
        migrate(engine)
        with db.read() as s:
            assert repo.get_correction(s, cid).effort is None  # dropped with the column
    finally:
        engine.dispose()


def test_no_effort_is_stored_as_null(db_url: str) -> None:
    migrate(db_url)
    engine = make_engine(db_url)
    try:
        db = Database(engine)
        cid = _correction(db, CorrectionEffort())
        with db.read() as s:
            assert repo.get_correction(s, cid).effort is None
    finally:
        engine.dispose()
