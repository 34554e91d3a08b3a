"""The viewer's prepared copies over HTTP: an uploaded volume (NIfTI or a DICOM series)
is opened from the copies made with its analysis (the route answers the same bytes with
the stored NIfTI and label map made unreadable), a volume analysed before gets its copies
on its first open, and erasure removes them with the image."""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Iterator

import nibabel as nib
import numpy as np
import pytest
from sqlalchemy import update

from medloop.domain.records import AnalysisRecord, ImageRecord
from medloop.storage import repositories as repo
from medloop.storage.models import Analysis, Image

from ...dicom_series import series_files
from .conftest import VOLS as P
from .conftest import Vols


def _analyse(v: Vols, files: list[tuple[str, tuple[str, bytes]]]) -> str:
    r = v.client.post(f"{P}/analyses", files=files, headers=v.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _records(v: Vols, analysis_id: str) -> tuple[ImageRecord, AnalysisRecord]:
    with v.runtime.db.read() as s:
        analysis = repo.get_analysis(s, analysis_id)
        return repo.get_image(s, analysis.image_id), analysis


def _voxels(v: Vols, analysis_id: str, kind: str) -> bytes:
    url = f"{P}/analyses/{analysis_id}/voxels"
    r = v.client.get(url, params={"kind": kind}, headers=v.headers)
    assert r.status_code == 200, r.text
    return r.content


def _canonical(data: bytes) -> np.ndarray:
    """A (gzipped) NIfTI's voxels in RAS+ ``(X, Y, Z)``."""
    img = nib.Nifti1Image.from_bytes(gzip.decompress(data))
    return np.asarray(nib.as_closest_canonical(img).dataobj)


def _inflate(stream: bytes, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    raw = gzip.decompress(stream)
    return np.frombuffer(raw, dtype).reshape(shape[::-1]).transpose(2, 1, 0)


@contextlib.contextmanager
def _unreadable(v: Vols, *keys: str) -> Iterator[None]:
    """The blobs ``keys`` fail their sha256 check inside the block (restored after)."""
    paths = [v.runtime.blobs.path(k) for k in keys]
    kept = [p.read_bytes() for p in paths]
    try:
        for path in paths:
            path.write_bytes(b"unreadable")
        yield
    finally:
        for path, data in zip(paths, kept, strict=True):
            path.write_bytes(data)


def test_an_uploaded_volume_opens_from_its_prepared_copies(vols: Vols) -> None:
    a = _analyse(vols, [("file", ("case4.nii.gz", vols.nii("images", 4)))])
    image, analysis = _records(vols, a)
    assert image.viewer_header is not None and image.viewer_blob_key and analysis.viewer_blob_key
    shape = image.viewer_header.shape
    with _unreadable(vols, image.blob_key, analysis.label_blob_key):  # no decode can succeed
        voxels = _voxels(vols, a, "image")
        labels = _voxels(vols, a, "labels")
    assert voxels == vols.runtime.blobs.read_bytes(image.viewer_blob_key)  # sent as stored
    assert np.array_equal(_inflate(voxels, shape, "<i2"), _canonical(vols.nii("images", 4)))
    mask = vols.client.get(f"{P}/analyses/{a}/mask", headers=vols.headers).content
    assert np.array_equal(_inflate(labels, shape, "u1"), _canonical(mask))


def test_a_dicom_series_gets_its_copies_too(vols: Vols) -> None:
    arr = np.random.default_rng(7).integers(0, 900, (24, 28, 20)).astype(np.int16)
    files = series_files(
        arr, np.diag([0.9, 0.9, 2.0, 1.0]), series_uid="1.2.826.0.1.3680043.8.498.77"
    )
    a = _analyse(vols, [("file", f) for f in files])
    image, analysis = _records(vols, a)
    assert image.viewer_header is not None and analysis.viewer_blob_key is not None
    assert image.viewer_header.spacing == pytest.approx((0.9, 0.9, 2.0))
    with _unreadable(vols, image.blob_key):
        voxels = _voxels(vols, a, "image")
    wire = {"int16": "<i2", "float32": "<f4"}[image.viewer_header.dtype]
    assert np.array_equal(_inflate(voxels, arr.shape, wire), arr)


def test_a_volume_analysed_before_keeps_its_copies_on_first_open(vols: Vols) -> None:
    a = _analyse(vols, [("file", ("case5.nii.gz", vols.nii("images", 5)))])
    image, analysis = _records(vols, a)
    expected = (_voxels(vols, a, "image"), _voxels(vols, a, "labels"))
    with vols.runtime.db.write() as s:  # as the server stored it before version 0008
        s.execute(update(Image).where(Image.id == image.id).values(viewer_blob_key=None))
        s.execute(update(Analysis).where(Analysis.id == a).values(viewer_blob_key=None))
    for key in (image.viewer_blob_key, analysis.viewer_blob_key):
        assert key is not None and vols.runtime.blobs.delete(key)
    # decoded (nothing is held in memory: the first opens sent the copies), then kept
    assert (_voxels(vols, a, "image"), _voxels(vols, a, "labels")) == expected
    image_again, analysis_again = _records(vols, a)
    assert image_again.viewer_blob_key == image.viewer_blob_key
    assert analysis_again.viewer_blob_key == analysis.viewer_blob_key
    assert vols.runtime.blobs.exists(str(image.viewer_blob_key))
    assert vols.runtime.blobs.exists(str(analysis.viewer_blob_key))


def test_erasure_removes_the_copies_with_the_image(vols: Vols) -> None:
    flipped = _canonical(vols.nii("images", 4))[::-1].copy()  # a volume of its own
    img = nib.Nifti1Image(flipped, np.diag([1.0, 1.0, 2.0, 1.0]))
    a = _analyse(vols, [("file", ("mine.nii.gz", gzip.compress(img.to_bytes())))])
    image, analysis = _records(vols, a)
    own, labels = str(image.viewer_blob_key), str(analysis.viewer_blob_key)
    assert vols.runtime.blobs.exists(own) and vols.runtime.blobs.exists(labels)
    r = vols.client.post(
        f"{P}/erasures",
        json={"scope": "image", "value": image.id, "reason": "test"},
        headers=vols.headers,
    )
    assert r.status_code == 202, r.text
    assert vols.wait_job(r.json()["job"]["id"])["state"] == "succeeded"
    assert not vols.runtime.blobs.exists(own)
    with vols.runtime.db.read() as s:
        used = repo.referenced_blob_keys(s)
    # the label map's copy goes too, unless another analysis has the very same labels
    assert own not in used and vols.runtime.blobs.exists(labels) == (labels in used)
