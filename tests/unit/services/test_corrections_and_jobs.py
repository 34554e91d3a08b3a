"""Corrections count toward the next fine-tune and queue it; job submissions are checked
against the project's settings before anything is queued."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from medloop.domain.jobs import FinetuneJob, JobRecord, TrainJob, TrainOverrides
from medloop.domain.records import ProjectRecord
from medloop.errors import ConfigError, MaskError
from medloop.services.corrections import Corrections
from medloop.services.jobs import JobService
from medloop.services.uploads import UploadLimits
from medloop.storage import BlobStore, Database
from medloop.storage import repositories as repo

from ..storage.dbfixtures import settings_of


class FakeQueue:
    def __init__(self) -> None:
        self.jobs: list[tuple[str, str, dict[str, Any]]] = []

    def enqueue(
        self,
        project_id: str,
        kind: str,
        options: dict[str, Any] | None = None,
        created_by: str | None = None,
        coalesce: bool = False,
    ) -> JobRecord:
        self.jobs.append((project_id, kind, dict(options or {})))
        return JobRecord(f"j{len(self.jobs)}", project_id, kind, "queued", dict(options or {}))


class FakeModels:
    def __init__(self, production: str | None) -> None:
        self.current = production

    def production(self, project_id: str) -> str | None:
        return self.current


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _project(database: Database, **values: Any) -> ProjectRecord:
    with database.write() as s:
        return repo.create_project(s, "corr", settings_of(**values))


def _analysis(database: Database, blobs: BlobStore, project_id: str, seed: int) -> str:
    image = blobs.put_bytes(_png(np.full((8, 8), seed, np.uint8)))
    label = blobs.put_bytes(_png(np.eye(8, dtype=np.uint8)))
    with database.write() as s:
        img, _ = repo.create_image(
            s,
            project_id=project_id,
            sha256=image.sha256,
            blob_key=image.key,
            filename="i.png",
            content_type="image/png",
            width=8,
            height=8,
            channels=1,
        )
        return repo.create_analysis(
            s,
            project_id=project_id,
            image_id=img.id,
            model_version="v0001",
            label_blob_key=label.key,
            label_sha256=label.sha256,
            uncertainty=0.3,
            measurements=[],
        ).id


def test_every_nth_correction_queues_a_finetune(database: Database, tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    project = _project(database, finetune_every=2, learning={"held_out_share": 0.5})
    queue = FakeQueue()
    service = Corrections(database, blobs, JobService(queue), FakeModels("v0001"), UploadLimits())
    mask = _png(np.eye(8, dtype=np.uint8) * 255)
    results = [
        service.correct(project, _analysis(database, blobs, project.id, n), [mask], "m.png", None)
        for n in range(4)
    ]
    assert [r.until_finetune for r in results] == [1, 2, 1, 2]
    assert [r.correction.held_out for r in results] == [False, True, False, True]
    assert [r.correction.dice_vs_prediction for r in results] == [1.0] * 4
    assert [bool(r.finetune_job_id) for r in results] == [False, True, False, True]
    assert queue.jobs[0] == (project.id, "finetune", {"trigger": "corrections", "corrections": 2})
    with pytest.raises(MaskError, match=r"8x8|size"):
        service.correct(
            project,
            _analysis(database, blobs, project.id, 9),
            [_png(np.zeros((4, 4), np.uint8))],
            "m.png",
            None,
        )


def test_no_finetune_without_a_production_model_or_when_off(
    database: Database, tmp_path: Path
) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    queue = FakeQueue()
    mask = _png(np.eye(8, dtype=np.uint8))
    waiting = _project(database, finetune_every=1)
    service = Corrections(database, blobs, JobService(queue), FakeModels(None), UploadLimits())
    first = service.correct(waiting, _analysis(database, blobs, waiting.id, 1), [mask], "m", None)
    assert first.finetune_job_id is None and first.until_finetune == 1
    with database.write() as s:
        off = repo.create_project(s, "off", settings_of(finetune_every=0))
    r = service.correct(off, _analysis(database, blobs, off.id, 2), [mask], "m", None)
    assert (r.until_finetune, r.finetune_job_id) == (None, None) and queue.jobs == []


def test_submit_checks_the_merged_options_and_stores_what_was_given(database: Database) -> None:
    project = _project(database, training={"channels": [8, 16, 32], "patch_size": [32]})
    queue, woken = FakeQueue(), []
    jobs = JobService(queue, lambda: woken.append(True))
    with pytest.raises(ConfigError, match=r"patch_size \[34\]"):
        jobs.submit(project, TrainJob(options=TrainOverrides(patch_size=(34,))))
    assert queue.jobs == [] and woken == []
    jobs.submit(project, TrainJob(options=TrainOverrides(steps=5)))
    jobs.submit(project, FinetuneJob.model_validate({"options": {"lr": 0.01}}))
    assert [j[1:] for j in queue.jobs] == [("train", {"steps": 5}), ("finetune", {"lr": 0.01})]
    assert woken == [True, True]
