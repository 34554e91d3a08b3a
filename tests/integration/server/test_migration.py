"""Migration 0004 on a real data folder made by the code before it (tests/fixtures).

The folder holds a SQLite database at revision 0003 and the project's registry folder
with v0001 (train) and v0002 (fine-tune, production). After the new server starts on
it, the API shows both versions as they were, production unchanged, v0001 still
predicts exactly what it predicted then, the corrections are there, and a fine-tune
makes v0003 from the migrated data.
"""

from __future__ import annotations

import io
import json
import sqlite3
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from medloop.api import create_app
from medloop.settings import Settings

FIXTURE = Path(__file__).parents[2] / "fixtures" / "legacy-data-0003.tar.gz"


def _label_map(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def _before(data_dir: Path) -> dict[str, Any]:
    """What the old install held, read straight from its files."""
    (registry,) = (data_dir / "projects").glob("*/registry")
    versions = {}
    for v in ("v0001", "v0002"):
        folder = registry / "versions" / v
        versions[v] = {
            "metrics": json.loads((folder / "metrics.json").read_text()),
            "lineage": json.loads((folder / "lineage.json").read_text()),
            "report": json.loads((registry / "reports" / f"{v}.json").read_text()),
        }
    db = sqlite3.connect(data_dir / "medloop.db")
    try:
        analyses = db.execute("SELECT id, image_id, model_version FROM analyses").fetchall()
        corrections = [r[0] for r in db.execute("SELECT id FROM corrections ORDER BY seq")]
    finally:
        db.close()
    return {
        "state": json.loads((registry / "state.json").read_text()),
        "versions": versions,
        "analyses": analyses,
        "corrections": corrections,
        "registry": registry,
    }


def _wait(c: TestClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    end = time.monotonic() + 300
    while time.monotonic() < end:
        job = c.get(f"/api/v1/projects/discs/jobs/{job_id}", headers=headers).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return dict(job)
        time.sleep(0.2)
    raise TimeoutError(job_id)


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    data_dir = tmp_path / "srv"
    data_dir.mkdir()
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(data_dir, filter="data")
    return data_dir


def test_an_install_of_revision_0003_is_carried_over(legacy: Path) -> None:
    before = _before(legacy)
    token = (legacy / "TOKEN").read_text().strip()
    h = {"Authorization": f"Bearer {token}"}
    settings = Settings(data_dir=legacy, max_image_pixels=4_000_000)
    with TestClient(create_app(settings)) as c:
        # both versions, as they were
        models = {
            m["version"]: m
            for m in c.get("/api/v1/projects/discs/models", headers=h).json()["items"]
        }
        assert set(models) == {"v0001", "v0002"}
        for name, old in before["versions"].items():
            assert models[name]["status"] == before["state"]["status"][name]
            assert models[name]["metrics"] == old["metrics"]
            assert models[name]["lineage"] == old["lineage"]
            assert models[name]["report"] == old["report"]
        assert models["v0002"]["parent"] == "v0001" and models["v0002"]["kind"] == "finetune"
        project = c.get("/api/v1/projects/discs", headers=h).json()
        assert project["production_version"] == before["state"]["production"] == "v0002"
        # the old learning settings, now typed
        assert project["learning"]["correction_weight"] == 8.0
        assert project["training"]["patch_size"] == [32] and project["finetune_every"] == 0

        # v0001 predicts what it predicted before the migration
        for analysis_id, image_id, version in before["analyses"]:
            assert version == "v0001"
            old = c.get(f"/api/v1/projects/discs/analyses/{analysis_id}/mask", headers=h)
            again = c.post(
                "/api/v1/projects/discs/analyses",
                json={"image_id": image_id, "version": "v0001"},
                headers=h,
            )
            assert again.status_code == 201, again.text
            new = c.get(f"/api/v1/projects/discs/analyses/{again.json()['id']}/mask", headers=h)
            np.testing.assert_array_equal(_label_map(new.content), _label_map(old.content))

        # the corrections are still there, in order
        listed = c.get("/api/v1/projects/discs/corrections", headers=h).json()["items"]
        assert [x["id"] for x in listed] == before["corrections"]

        # and learning goes on from them
        job = c.post("/api/v1/projects/discs/jobs", json={"kind": "finetune"}, headers=h).json()
        done = _wait(c, job["id"], h)
        assert done["state"] == "succeeded", done
        assert done["result"]["version"] == "v0003" and done["result"]["parent"] == "v0002"
        v3 = c.get("/api/v1/projects/discs/models/v0003", headers=h).json()
        trained = {d["key"] for d in v3["lineage"]["data"] if d["role"] == "correction"}
        assert trained == set(before["corrections"])
        events = c.get("/api/v1/audit?limit=500", headers=h).json()["items"]
        assert any(e["action"] == "correction.create" for e in events)  # the old trail too
    # the old folders are left in place (they can be deleted)
    assert (before["registry"] / "versions" / "v0001" / "weights.pt").is_file()


def test_a_bare_database_is_only_migrated(legacy: Path) -> None:
    """Without the data folder (e.g. ``alembic upgrade`` on its own), 0004 changes only the schema
    (and 0005 moves each user's token to ``api_tokens``)."""
    from medloop.storage import migrate

    migrate(f"sqlite:///{legacy / 'medloop.db'}")
    db = sqlite3.connect(legacy / "medloop.db")
    try:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == ("0008",)
        assert db.execute("SELECT COUNT(*) FROM model_versions").fetchone() == (0,)
        (settings,) = db.execute("SELECT settings FROM projects").fetchone()
        assert json.loads(settings)["learning"] == {
            "correction_weight": 8.0,
            "replay_size": 2,
            "steps": 4,
        }
        (users,) = db.execute("SELECT COUNT(*) FROM users").fetchone()
        tokens = db.execute("SELECT name, expires_at, revoked_at FROM api_tokens").fetchall()
        assert users >= 1 and tokens == [("initial", None, None)] * users
    finally:
        db.close()
