"""The viewer's prepared copies: the stream inflates to exactly the volume's voxels in viewer
order with the right header; copies are stored once, point from their rows, stream back
checked, and a failure leaves nothing pointing and no blob behind; the viewer's fallback
for volumes analysed before keeps what it made."""

from __future__ import annotations

import dataclasses
import gzip
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medloop.domain.image import Image
from medloop.domain.records import AnalysisRecord, ImageRecord, ProjectRecord
from medloop.domain.viewer import VoxelHeader
from medloop.io import default_window
from medloop.io.volumes import decode_volume, encode_label_volume
from medloop.services.blob_removal import BlobRemoval
from medloop.services.display import Display
from medloop.services.images import Images
from medloop.services.uploads import UploadLimits
from medloop.services.viewer_copies import ViewerCopies
from medloop.services.voxels import grid_of, image_stream, label_stream
from medloop.storage import BlobStore, Database
from medloop.storage import repositories as repo

from ..storage.dbfixtures import settings_of

SHAPE = (12, 10, 7)


def _nifti(arr: np.ndarray, affine: np.ndarray) -> bytes:
    return gzip.compress(nib.Nifti1Image(arr, affine).to_bytes())


def _lps_volume(dtype: str = "int16") -> tuple[bytes, np.ndarray]:
    """A NIfTI stored LPS (x and y flipped against RAS+), spacing 0.7 x 0.8 x 2.5 mm, and
    its voxels in canonical RAS+ order."""
    rng = np.random.default_rng(3)
    arr = rng.integers(-1000, 1500, SHAPE).astype(dtype)
    if dtype == "float32":
        arr = arr + np.float32(0.25)
    affine = np.diag([-0.7, -0.8, 2.5, 1.0])
    return _nifti(arr, affine), arr[::-1, ::-1, :]


def _inflate(chunks: object, dtype: str) -> np.ndarray:
    """A viewer stream's voxels as ``(X, Y, Z)`` (they travel x fastest)."""
    raw = gzip.decompress(b"".join(chunks))  # type: ignore[arg-type]
    return np.frombuffer(raw, dtype).reshape(SHAPE[::-1]).transpose(2, 1, 0)


@pytest.mark.parametrize(("dtype", "wire"), [("int16", "<i2"), ("float32", "<f4")])
def test_the_stream_inflates_to_the_volume_in_viewer_order(dtype: str, wire: str) -> None:
    data, canonical = _lps_volume(dtype)
    volume = decode_volume(data, name="v.nii.gz")
    made = image_stream(volume)
    assert np.array_equal(_inflate(made.chunks, wire), canonical)
    head = made.header
    assert head.shape == SHAPE and head.dtype == dtype
    assert head.spacing == pytest.approx((0.7, 0.8, 2.5))
    assert (head.center, head.width) == default_window(volume)
    assert volume.affine is not None and head.affine is not None
    assert np.allclose(np.reshape(head.affine, (4, 4)), volume.affine)
    grid = grid_of(head)  # what label volumes are checked against, without the voxels
    assert grid.shape == volume.shape and np.allclose(grid.affine, volume.affine)  # type: ignore[arg-type]


def test_the_label_stream_needs_the_volume_grid() -> None:
    head = VoxelHeader(SHAPE, (1.0, 1.0, 2.0), "int16", 40.0, 400.0)
    labels = np.zeros(SHAPE, np.uint8)
    labels[2:5, 3:6, 1:4] = 2
    made = label_stream(labels, head)
    assert made.header == VoxelHeader(SHAPE, (1.0, 1.0, 2.0), "uint8")
    assert np.array_equal(_inflate(made.chunks, "u1"), labels)
    with pytest.raises(ValueError, match="not on the volume's grid"):
        label_stream(np.zeros((3, 3, 3), np.uint8), head)


def test_a_header_round_trips_through_json_and_refuses_bad_fields() -> None:
    head = VoxelHeader(SHAPE, (0.7, 0.8, 2.5), "int16", 40.0, 400.0, tuple(range(16)))
    assert VoxelHeader.from_json(head.to_json()) == head
    assert VoxelHeader.from_json(head.labels().to_json()).dtype == "uint8"
    bad = [
        ({"shape": [1, 2]}, "shape has 3 values"),
        ({"dtype": "int64"}, "dtype is one of"),
        ({"spacing": [1, 0, 1]}, "spacing must be"),
        ({"center": None}, "both center and width"),
        ({"affine": [1.0] * 15}, "affine must be 16"),
        ({"shape": None}, "not a viewer stream's header"),
    ]
    for change, message in bad:
        with pytest.raises(ValueError, match=message):
            VoxelHeader.from_json({**head.to_json(), **change})


class World:
    """A stored LPS volume (a NIfTI blob), its image row and an analysis whose label map
    holds a cube; the viewer's copies service and the display over them."""

    def __init__(self, db: Database, tmp: Path) -> None:
        self.db, self.blobs = db, BlobStore(tmp / "blobs")
        self.data, self.canonical = _lps_volume()
        self.volume = decode_volume(self.data, name="v.nii.gz")
        self.labels = np.zeros(SHAPE, np.uint8)
        self.labels[4:9, 2:6, 1:5] = 1
        self.viewer = ViewerCopies(db, self.blobs, BlobRemoval(db, self.blobs))
        self.images = Images(db, self.blobs, UploadLimits(), None)  # type: ignore[arg-type]
        stored = self.blobs.put_bytes(self.data)
        with db.write() as s:
            self.project: ProjectRecord = repo.create_project(s, "vol", settings_of())
            image, _ = repo.create_image(
                s,
                project_id=self.project.id,
                sha256=stored.sha256,
                blob_key=stored.key,
                filename="v.nii.gz",
                content_type="application/gzip",
                width=SHAPE[1],
                height=SHAPE[0],
                channels=1,
            )
        self.image_id = image.id
        self.analysis_id = self.analyse(self.labels)

    def analyse(self, labels: np.ndarray) -> str:
        ref = self.blobs.put_bytes(encode_label_volume(labels, self.volume))
        with self.db.write() as s:
            return repo.create_analysis(
                s,
                project_id=self.project.id,
                image_id=self.image_id,
                model_version="v0001",
                label_blob_key=ref.key,
                label_sha256=ref.sha256,
                uncertainty=0.1,
                measurements=[],
            ).id

    def records(self, analysis_id: str | None = None) -> tuple[ImageRecord, AnalysisRecord]:
        with self.db.read() as s:
            analysis = repo.get_analysis(s, analysis_id or self.analysis_id)
            return repo.get_image(s, self.image_id), analysis

    def display(self) -> Display:
        """A display as a restarted server has it: nothing cached."""
        return Display(self.db, self.blobs, self.images, self.viewer)

    def served(self, kind: str, analysis_id: str | None = None) -> tuple[np.ndarray, dict]:
        stream = self.display().voxels(self.project, analysis_id or self.analysis_id, kind)
        wire = {"int16": "<i2", "uint8": "u1"}[stream.header.dtype]
        return _inflate(stream.chunks, wire), stream.headers()

    def break_source(self) -> None:
        """Make the stored NIfTI unreadable (its sha256 no longer matches)."""
        with self.db.read() as s:
            key = repo.get_image(s, self.image_id).blob_key
        self.blobs.path(key).write_bytes(b"gone")


@pytest.fixture
def world(database: Database, tmp_path: Path) -> World:
    return World(database, tmp_path)


def test_prepared_copies_are_served_without_the_source(world: World) -> None:
    image, analysis = world.records()
    world.viewer.prepare(image, world.volume, analysis, world.labels)
    image, analysis = world.records()
    assert image.viewer_header == image_stream(world.volume).header
    assert image.viewer_blob_key and analysis.viewer_blob_key
    with world.db.read() as s:
        keys = {image.viewer_blob_key, analysis.viewer_blob_key}
        assert repo.referenced_among(s, keys) == keys
    world.break_source()  # nothing is decoded: the copies are sent as stored
    voxels, head = world.served("image")
    assert np.array_equal(voxels, world.canonical)
    assert head["x-volume-shape"] == "12,10,7" and head["x-volume-dtype"] == "int16"
    labels, head = world.served("labels")
    assert np.array_equal(labels, world.labels) and head["x-volume-dtype"] == "uint8"


def test_the_image_copy_is_made_once_per_image(world: World) -> None:
    image, analysis = world.records()
    world.viewer.prepare(image, world.volume, analysis, world.labels)
    other = world.labels.copy()
    other[0, 0, 0] = 1
    second = world.analyse(other)
    image, analysis = world.records(second)
    made: list[int] = []
    put = world.blobs.put_stream
    world.blobs.put_stream = lambda chunks, *a: made.append(1) or put(chunks, *a)  # type: ignore[method-assign]
    world.viewer.prepare(image, world.volume, analysis, other)
    assert len(made) == 1  # the labels only
    assert np.array_equal(world.served("labels", second)[0], other)


def test_a_failed_copy_leaves_no_row_pointing_and_no_blob(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    before = set(world.blobs.keys())
    image, analysis = world.records()
    calls: list[int] = []
    put = world.blobs.put_stream

    def full_disk(chunks: object, *args: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return put(chunks, *args)  # type: ignore[arg-type]

    world.blobs.put_stream = full_disk  # type: ignore[method-assign,assignment]
    with caplog.at_level(logging.ERROR):
        world.viewer.prepare(image, world.volume, analysis, world.labels)  # does not raise
    assert "could not prepare the viewer's copy" in caplog.text
    image, analysis = world.records()
    assert image.viewer_blob_key is None and analysis.viewer_blob_key is None
    assert set(world.blobs.keys()) == before  # the image's copy, stored first, is gone


def test_a_copy_for_a_row_erased_meanwhile_is_removed(world: World) -> None:
    before = set(world.blobs.keys())
    image, analysis = world.records()
    gone = dataclasses.replace(image, id="0" * 32)
    world.viewer.prepare(gone, world.volume, analysis, world.labels)
    image, analysis = world.records()
    assert image.viewer_blob_key is None and analysis.viewer_blob_key is not None
    assert set(world.blobs.keys()) == before | {analysis.viewer_blob_key}


def test_a_corrupt_copy_is_not_served(world: World, caplog: pytest.LogCaptureFixture) -> None:
    image, analysis = world.records()
    world.viewer.prepare(image, world.volume, analysis, world.labels)
    image, _ = world.records()
    assert image.viewer_blob_key is not None
    world.blobs.path(image.viewer_blob_key).write_bytes(b"not the stream")
    with caplog.at_level(logging.ERROR):
        voxels, _ = world.served("image")  # decoded from the source instead
    assert np.array_equal(voxels, world.canonical) and "unusable" in caplog.text


def test_a_volume_analysed_before_keeps_its_copies_on_first_open(world: World) -> None:
    image, analysis = world.records()
    assert image.viewer_blob_key is None and analysis.viewer_blob_key is None
    voxels, head = world.served("image")  # decoded, sent, then kept
    assert np.array_equal(voxels, world.canonical)
    image, _ = world.records()
    assert image.viewer_header == image_stream(world.volume).header
    assert float(head["x-window-width"]) == image.viewer_header.width  # type: ignore[union-attr]
    world.break_source()
    # the label map is decoded on the image's grid as its header states (no image decode)
    labels, _ = world.served("labels")
    assert np.array_equal(labels, world.labels)
    _, analysis = world.records()
    assert analysis.viewer_blob_key is not None
    assert np.array_equal(world.served("image")[0], world.canonical)  # the kept copy


def test_a_2d_image_or_an_rgb_volume_gets_no_copy(world: World) -> None:
    image, analysis = world.records()
    flat = Image(np.zeros((4, 5, 1), np.uint8))
    rgb = Image(np.zeros((*SHAPE, 3), np.uint8))
    for pixels in (flat, rgb):
        world.viewer.prepare(image, pixels, analysis, world.labels)
    image, analysis = world.records()
    assert image.viewer_blob_key is None and analysis.viewer_blob_key is None


def test_a_copy_that_cannot_be_kept_is_held_in_memory(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    def full_disk(*_: object) -> object:
        raise OSError(28, "No space left on device")

    world.blobs.put_stream = full_disk  # type: ignore[method-assign,assignment]
    display = world.display()
    with caplog.at_level(logging.ERROR):
        sent = b"".join(display.voxels(world.project, world.analysis_id, "image").chunks)
    image, _ = world.records()
    assert image.viewer_blob_key is None and "could not keep" in caplog.text
    held = display.cache.peek(("voxels", image.sha256))
    assert held is not None and b"".join(held.chunks) == sent
