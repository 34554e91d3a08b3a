"""The server's TrainingData: pairs and the latest correction per image and frame from the
database, pixels from the blob store, checked against their sha256; nothing written."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medloop.domain.ports import CorrectionSample
from medloop.errors import TrainingError
from medloop.services.training_data import DbTrainingData
from medloop.storage import BlobStore, Database
from medloop.storage import repositories as repo


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def _image(db: Database, blobs: BlobStore, project_id: str, seed: int) -> str:
    pixels = np.random.default_rng(seed).integers(0, 255, (16, 16), dtype=np.uint8)
    ref = blobs.put_bytes(_png(pixels))
    with db.write() as s:
        image, _ = repo.create_image(
            s,
            project_id=project_id,
            sha256=ref.sha256,
            blob_key=ref.key,
            filename=f"{seed}.png",
            content_type="image/png",
            width=16,
            height=16,
            channels=1,
        )
    return image.id


def _mask(blobs: BlobStore, value: int) -> tuple[str, str]:
    mask = np.zeros((16, 16), np.uint8)
    mask[2 : 2 + value, 2:8] = 1
    ref = blobs.put_bytes(_png(mask))
    return ref.key, ref.sha256


def _correct(
    db: Database, blobs: BlobStore, project_id: str, image_id: str, frame: int, n: int
) -> str:
    key, sha = _mask(blobs, n)
    with db.write() as s:
        analysis = repo.create_analysis(
            s,
            project_id=project_id,
            image_id=image_id,
            model_version="v0001",
            label_blob_key=key,
            label_sha256=sha,
            uncertainty=0.5,
            measurements=[],
            frame=frame,
        )
        return repo.create_correction(
            s,
            project_id=project_id,
            analysis_id=analysis.id,
            mask_blob_key=key,
            mask_sha256=sha,
            dice_vs_prediction=1.0,
            author_id=None,
            held_out=lambda seq: seq == 3,
        ).id


def test_reference_pairs_and_latest_corrections(
    database: Database, blobs: BlobStore, project_id: str
) -> None:
    a, b = _image(database, blobs, project_id, 1), _image(database, blobs, project_id, 2)
    for image_id, split in ((a, "train"), (b, "val")):
        key, sha = _mask(blobs, 4)
        with database.write() as s:
            repo.add_reference_pair(
                s,
                project_id=project_id,
                image_id=image_id,
                mask_blob_key=key,
                mask_sha256=sha,
                split=split,
            )
    first = _correct(database, blobs, project_id, a, 0, 1)
    second = _correct(database, blobs, project_id, a, 0, 2)  # replaces the first
    frame1 = _correct(database, blobs, project_id, a, 1, 3)  # another frame: kept
    other = _correct(database, blobs, project_id, b, 0, 4)  # held out (seq 3)
    data = DbTrainingData(database, blobs, project_id, num_foreground=1)

    reference = data.reference()
    assert sorted(s.split or "" for s in reference) == ["train", "val"]
    corrections = data.corrections()
    assert [c.id for c in corrections] == [second, frame1, other]
    assert first not in {c.id for c in corrections}
    assert [c.frame for c in corrections] == [0, 1, 0]
    assert [c.held_out for c in corrections] == [False, False, True]
    assert all(
        isinstance(c, CorrectionSample) and c.corrects_version == "v0001" for c in corrections
    )

    pair = data.load(corrections[0])
    assert pair.image.shape == (16, 16) and int(pair.mask.sum()) == 2 * 6
    loaded = DbTrainingData(database, blobs, project_id, 1).load(reference[0])  # a fresh adapter
    assert loaded.mask.shape == (16, 16)


def test_changed_bytes_are_refused(database: Database, blobs: BlobStore, project_id: str) -> None:
    image_id = _image(database, blobs, project_id, 3)
    _correct(database, blobs, project_id, image_id, 0, 2)
    data = DbTrainingData(database, blobs, project_id, 1)
    (sample,) = data.corrections()
    path = blobs.path(sample.mask_sha256)
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(TrainingError, match="corrupt"):
        data.load(sample)


def test_a_dataset_file_gone_while_in_use_is_a_training_error_naming_it(tmp_path: Path) -> None:
    from medloop.services.folder_data import FolderTrainingData

    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for i in range(2):
        pixels = np.random.default_rng(i).integers(0, 255, (16, 16), dtype=np.uint8)
        (tmp_path / "images" / f"p{i}.png").write_bytes(_png(pixels))
        (tmp_path / "masks" / f"p{i}.png").write_bytes(_png((pixels > 128).astype(np.uint8)))
    data = FolderTrainingData(tmp_path, 1)
    first, second = sorted(data.reference(), key=lambda s: s.key)
    assert data.load(first).image.shape[:2] == (16, 16)
    (tmp_path / "images" / "p1.png").unlink()  # e.g. a mount went away mid-run
    with pytest.raises(TrainingError, match=r"p1\.png.*changed while it was in use"):
        data.load(second)
