"""The browser viewer's volume routes over HTTP: a whole volume and its labels streamed
once (gzip, x fastest, geometry in headers), interpolation between edited slices, and a
whole label volume posted back as a correction; every refusal stores nothing."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np

from .conftest import VOLS as P
from .conftest import Vols


def _canonical(data: bytes) -> np.ndarray:
    """A (gzipped) NIfTI's voxels in RAS+ ``(X, Y, Z)``."""
    img = nib.Nifti1Image.from_bytes(gzip.decompress(data))
    return np.asarray(nib.as_closest_canonical(img).dataobj)


def _voxels(v: Vols, analysis: str, kind: str) -> tuple[np.ndarray, dict[str, str]]:
    r = v.client.get(f"{P}/analyses/{analysis}/voxels", params={"kind": kind}, headers=v.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/gzip" and "content-encoding" not in r.headers
    shape = tuple(int(n) for n in r.headers["x-volume-shape"].split(","))
    dtype = {"int16": "<i2", "float32": "<f4", "uint8": "u1"}[r.headers["x-volume-dtype"]]
    flat = np.frombuffer(gzip.decompress(r.content), dtype)
    return flat.reshape(shape[::-1]).transpose(2, 1, 0), dict(r.headers)


def _analyse(v: Vols, i: int) -> str:
    files = {"file": (f"case{i}.nii.gz", v.nii("images", i))}
    r = v.client.post(f"{P}/analyses", files=files, headers=v.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_a_volume_and_its_labels_come_whole_in_canonical_order(vols: Vols) -> None:
    a = _analyse(vols, 4)
    image, head = _voxels(vols, a, "image")
    assert np.array_equal(image, _canonical(vols.nii("images", 4)))  # LPS on disk, RAS+ here
    assert head["x-volume-dtype"] == "int16" and head["x-volume-spacing"] == "1,1,2"
    assert float(head["x-window-width"]) > 0
    again, _ = _voxels(vols, a, "image")  # the compressed voxels kept after the first answer
    assert np.array_equal(again, image)
    labels, head = _voxels(vols, a, "labels")
    mask = vols.client.get(f"{P}/analyses/{a}/mask", headers=vols.headers).content
    assert head["x-volume-dtype"] == "uint8" and np.array_equal(labels, _canonical(mask))
    r = vols.client.get(f"{P}/analyses/{a}/voxels", params={"kind": "x"}, headers=vols.headers)
    assert r.status_code == 400 and "unknown kind" in r.text


def test_interpolation_between_two_edited_slices(vols: Vols) -> None:
    a = _analyse(vols, 5)
    rows, cols = 28, 24  # an axial slice of a 24 x 28 x 20 volume
    ends = np.zeros((2, rows, cols), np.uint8)
    ends[:, 8:20, 6:18] = 1
    body = {"plane": "axial", "indices": "12,6"}
    files = {"file": ("s.gz", gzip.compress(ends.tobytes()))}
    url = f"{P}/analyses/{a}/interpolate"
    r = vols.client.post(url, data=body, files=files, headers=vols.headers)
    assert r.status_code == 200, r.text
    assert r.headers["x-slice-indices"] == "7,8,9,10,11"
    between = np.frombuffer(gzip.decompress(r.content), np.uint8).reshape(5, rows, cols)
    assert (between == ends[0]).all()  # the same square at both ends: the same between
    for data, files_, message in [
        ({"plane": "oblique", "indices": "1,2"}, files, "unknown plane"),
        ({"plane": "axial", "indices": "1,20"}, files, "out of range"),
        ({"plane": "coronal", "indices": "12,6"}, files, "bytes"),
    ]:
        r = vols.client.post(url, data=data, files=files_, headers=vols.headers)
        assert r.status_code == 400 and message in r.text, r.text
    huge = {"file": ("s.gz", bytes(5000))}  # more than two slices' worth, even incompressible
    r = vols.client.post(url, data=body, files=huge, headers=vols.headers)
    assert r.status_code == 413, r.text


def test_a_label_volume_posted_whole_is_the_stored_correction(vols: Vols) -> None:
    a = _analyse(vols, 4)
    labels, _ = _voxels(vols, a, "labels")
    url = f"{P}/analyses/{a}/corrections/voxels"
    before = vols.counts()
    wrong = [
        (gzip.compress(np.zeros(10, np.uint8).tobytes()), "must hold 13440 voxels"),
        (gzip.compress(np.full(labels.size, 3, np.uint8).tobytes()), "label 3"),
        (b"not gzip", "not gzip"),
    ]
    for body, message in wrong:
        r = vols.client.post(url, files={"file": ("l.gz", body)}, headers=vols.headers)
        assert r.status_code == 400 and message in r.text, r.text
    assert vols.counts() == before
    edited = labels.copy()
    edited[2:6, 3:9, 4:7] = 2
    payload = gzip.compress(np.ascontiguousarray(edited.transpose(2, 1, 0)).tobytes())
    r = vols.client.post(
        url, files={"file": ("l.gz", payload)}, data={"brush_strokes": "3"}, headers=vols.headers
    )
    assert r.status_code == 201, r.text
    out = r.json()
    changed = int((edited != labels).sum())
    assert sum(c["changed"] for c in out["agreement"]) >= changed > 0
    stored = vols.client.get(f"{P}/corrections/{out['id']}/mask", headers=vols.headers).content
    assert np.array_equal(_canonical(stored), edited)
