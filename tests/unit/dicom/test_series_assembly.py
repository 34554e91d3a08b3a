"""DICOM series assembly: real geometry from hippocampus volumes, any instance order, and a
clear refusal for mixed series, gaps, duplicates, inconsistent instances or a lone one."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medloop.errors import ImageReadError, TooManyFrames
from medloop.io.dicom_series import assemble_frames, assemble_series
from medloop.io.volumes import decode_volume, encode_volume

from ...dicom_series import HIPPOCAMPUS, enhanced_file, hippocampus, series_files

pytestmark = pytest.mark.skipif(
    not Path(HIPPOCAMPUS).is_dir(), reason="needs the shared hippocampus volumes"
)
MAX = 10_000_000


def _nifti(arr: np.ndarray, affine: np.ndarray) -> bytes:
    return gzip.compress(nib.Nifti1Image(arr, affine).to_bytes())


def _edit(item: tuple[str, bytes], **changes: object) -> tuple[str, bytes]:
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(item[1]))
    for key, value in changes.items():
        setattr(ds, key, value)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return item[0], buf.getvalue()


@pytest.mark.parametrize(
    "affine",
    [
        None,  # the file's own (RAS, 1 mm)
        np.array([[-0.8, 0, 0, 20], [0, -0.9, 0, 30], [0, 0, 2.5, -40], [0, 0, 0, 1]]),  # LPS
        np.array([[0, 0, 1.2, 5], [1.0, 0, 0, 1], [0, -1.1, 0, 3], [0, 0, 0, 1]]),  # rotated
    ],
)
def test_a_shuffled_series_is_the_volume_it_was_made_from(affine: np.ndarray | None) -> None:
    arr, own = hippocampus("001")
    affine = own if affine is None else affine
    vol = assemble_series(series_files(arr, affine, shuffle=3), max_pixels=MAX)
    ref = decode_volume(_nifti(arr, affine))
    assert vol.shape == ref.shape and vol.spacing == pytest.approx(ref.spacing, abs=1e-4)
    assert np.allclose(vol.affine, ref.affine, atol=1e-4)
    assert np.array_equal(vol.pixels.astype(np.float32), ref.pixels.astype(np.float32))
    assert vol.metadata["instances"] == arr.shape[2] and vol.metadata["modality"] == "MR"
    again = decode_volume(encode_volume(vol))  # as stored: the same volume
    assert np.array_equal(again.pixels, vol.pixels) and np.allclose(again.affine, vol.affine)


def _refused(files: list[tuple[str, bytes]], message: str) -> None:
    with pytest.raises(ImageReadError, match=message):
        assemble_series(files, max_pixels=MAX)


def test_broken_series_are_refused_naming_the_problem() -> None:
    arr, affine = hippocampus("003")
    good = series_files(arr, affine, shuffle=None)
    stray = series_files(arr[:, :, :2], affine, series_uid="1.2.3.4")[0]
    _refused([*good, stray], "mixed series: 2 Series Instance UIDs")
    _refused(good[:10] + good[11:], r"gap in the series: 2\.000 mm between IM0009.dcm and IM0011")
    _refused([*good, ("copy.dcm", good[5][1])], "duplicate slice: .* same position")
    _refused(
        [*good[:4], _edit(good[4], PixelSpacing=["1.5", "1.0"]), *good[5:]],
        r"inconsistent spacing: IM0004.dcm",
    )
    _refused(
        [*good[:4], _edit(good[4], ImageOrientationPatient=[0, 1, 0, 1, 0, 0]), *good[5:]],
        "inconsistent orientation: IM0004.dcm",
    )
    small = series_files(arr[:20, :20, :2], affine)[0]
    _refused([*good[:3], small], "inconsistent size")
    _refused(good[:1], "at least 2 instances, got 1 .IM0000.dcm.")
    _refused([*good[:3], ("notes.txt", b"not dicom")], "notes.txt")
    with pytest.raises(ImageReadError, match="over the limit"):
        assemble_series(good, max_pixels=arr[:, :, 0].size * 3)


def test_an_enhanced_multiframe_image_is_the_volume_it_was_made_from() -> None:
    arr, _ = hippocampus("003")
    affine = np.array([[-0.8, 0, 0, 20], [0, -0.9, 0, 30], [0, 0, 2.5, -40], [0, 0, 0, 1]])
    vol = assemble_frames(enhanced_file(arr, affine, seed=5), "mf.dcm", max_pixels=MAX)
    ref = decode_volume(_nifti(arr, affine))
    assert vol.shape == ref.shape and np.allclose(vol.affine, ref.affine, atol=1e-4)
    assert np.array_equal(vol.pixels.astype(np.float32), ref.pixels.astype(np.float32))
    with pytest.raises(TooManyFrames, match="35 frames"):
        assemble_frames(enhanced_file(arr, affine), "mf.dcm", max_pixels=MAX, max_frames=20)
    flat = enhanced_file(arr, np.diag([1.0, 1.0, 0.0001, 1.0]))  # every frame at one place
    with pytest.raises(ImageReadError, match=r"duplicate slice: mf\.dcm frame"):
        assemble_frames(flat, "mf.dcm", max_pixels=MAX)
