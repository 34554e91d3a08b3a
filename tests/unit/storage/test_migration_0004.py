"""Migration 0004 on SQLite and PostgreSQL: settings converted, a registry folder imported."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import sqlalchemy as sa

from medloop.domain.model import VersionStatus
from medloop.domain.settings import ProjectSettings
from medloop.storage import BlobStore, Database, DbArtifactStore, make_engine, migrate
from medloop.storage import repositories as repo

from .dbfixtures import downgrade

FIXTURE = Path(__file__).parents[2] / "fixtures" / "legacy-data-0003.tar.gz"
PROJECT = "8f7365d4add14fd4b057c207a487aa84"  # the fixture's project
OLD_LEARNING = {
    "train_steps": 6,
    "patch_size": 32,
    "channels": [4, 8],
    "steps": 4,
    "finetune_every": 0,
    "replay_size": 2,
    "correction_weight": 8.0,
    "acceptance": {"max_class_dice_drop": 0.02},
}


def _registry(tmp_path: Path) -> Path:
    """The fixture's ``projects/`` folder, without its database."""
    data_dir = tmp_path / "data"
    with tarfile.open(FIXTURE) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("./projects")]
        tar.extractall(data_dir, members=members, filter="data")
    return data_dir


def test_settings_are_converted_and_versions_imported(db_url: str, tmp_path: Path) -> None:
    migrate(db_url, "0003")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO projects (id, name, labels, image_kind, learning, created_at, dicom)"
                    " VALUES (:id, 'discs', :labels, 'microscopy', :learning, :at, '{}')"
                ),
                {
                    "id": PROJECT,
                    "labels": json.dumps([{"value": 1, "name": "disc", "color": "#ff0000"}]),
                    "learning": json.dumps(OLD_LEARNING),
                    "at": "2026-11-29 09:00:00",
                },
            )
        data_dir = _registry(tmp_path)
        migrate(engine, data_dir=data_dir)
        db = Database(engine)
        with db.read() as s:
            settings = repo.get_project(s, PROJECT).settings
        assert settings == ProjectSettings.parse(
            {
                "labels": [{"value": 1, "name": "disc", "color": "#ff0000"}],
                "learning": {"correction_weight": 8.0, "replay_size": 2, "steps": 4},
                "acceptance": {"margin": 0.02},
                "training": {"steps": 6, "patch_size": [32], "channels": [4, 8]},
                "finetune_every": 0,
            }
        )
        store = DbArtifactStore(db, BlobStore(data_dir / "blobs"), PROJECT)
        assert [(v.name, v.status) for v in store.versions()] == [
            ("v0001", VersionStatus.RETIRED),
            ("v0002", VersionStatus.PRODUCTION),
        ]
        weights = data_dir / "projects" / PROJECT / "registry" / "versions" / "v0002" / "weights.pt"
        assert store.read_file("v0002") == weights.read_bytes()
        assert [e["event"] for e in store.events()] == [
            "created",
            "promoted",
            "created",
            "promoted",
        ]
        assert store.rollback("after the migration").name == "v0001"
    finally:
        engine.dispose()


def test_downgrade_restores_the_old_columns(db_url: str) -> None:
    migrate(db_url)
    engine = make_engine(db_url)
    try:
        db = Database(engine)
        settings = ProjectSettings.parse(
            {
                "labels": [{"value": 1, "name": "a", "color": "#000000"}],
                "training": {"steps": 40, "patch_size": [64]},
                "finetune_every": 3,
            }
        )
        with db.write() as s:
            pid = repo.create_project(s, "p", settings).id
        downgrade(engine, "0003")
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT labels, image_kind, learning FROM projects WHERE id = :id"),
                {"id": pid},
            ).one()
        labels, learning = (json.loads(v) if isinstance(v, str) else v for v in (row[0], row[2]))
        image_kind = row[1]
        assert labels[0]["name"] == "a" and image_kind == "microscopy"
        assert learning["finetune_every"] == 3
        assert (learning["train_steps"], learning["patch_size"]) == (40, 64)
    finally:
        engine.dispose()
