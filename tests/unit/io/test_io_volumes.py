"""Volumes in and out: NIfTI and NRRD, canonical orientation, the input's grid back, bad files."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest

from medloop.errors import ImageReadError, MaskError
from medloop.io import decode_image, decode_mask
from medloop.io.volumes import decode_label_volume, decode_volume, encode_label_volume, sniff_volume

HIPPO = Path(__file__).parents[3].parent / "shared" / "data" / "msd_hippocampus"


def _nifti(
    arr: np.ndarray, affine: np.ndarray, gz: bool = True, zooms: tuple | None = None
) -> bytes:
    img = nib.Nifti1Image(arr, affine)
    if zooms is not None:
        img.header.set_zooms(zooms)
    buf = io.BytesIO()
    img.to_file_map({"image": nib.FileHolder(fileobj=buf), "header": nib.FileHolder(fileobj=buf)})
    data = buf.getvalue()
    return gzip.compress(data) if gz else data


def _degenerate() -> bytes:
    """A NIfTI whose sform squashes the third axis (nibabel will not write one itself)."""
    raw = bytearray(_nifti(np.zeros((4, 4, 4), np.float32), np.eye(4), gz=False))
    raw[252:256] = np.array([0, 1], dtype="<i2").tobytes()  # qform_code 0, sform_code 1
    raw[312:328] = np.zeros(4, dtype="<f4").tobytes()  # srow_z = 0
    return bytes(raw)


def _no_spacing(tmp: Path) -> bytes:
    """An NRRD with neither space directions nor spacings."""
    path = tmp / "nospacing.nrrd"
    nrrd.write(str(path), np.zeros((4, 4, 4), np.float32))
    return path.read_bytes()


LPS = np.array([[-0.8, 0, 0, 10.0], [0, -0.8, 0, 20.0], [0, 0, 2.5, -5.0], [0, 0, 0, 1]])


def _volume(shape: tuple[int, int, int] = (12, 10, 6)) -> np.ndarray:
    return np.arange(np.prod(shape), dtype=np.int16).reshape(shape)


def test_nifti_is_read_in_canonical_orientation_with_its_spacing() -> None:
    arr = _volume()
    image = decode_volume(_nifti(arr, LPS), name="scan.nii.gz")
    assert image.is_volume and image.shape == (12, 10, 6) and image.channels == 1
    assert image.spacing == pytest.approx((0.8, 0.8, 2.5))
    assert np.all(np.diag(image.affine)[:3] > 0)  # RAS+ after reorientation
    # Voxel (i, j, k) of the file is at the same world point as its canonical twin.
    world = LPS @ np.array([1, 2, 3, 1.0])
    ci = np.linalg.solve(image.affine, world)[:3].round().astype(int)
    assert image.pixels[tuple(ci)][0] == arr[1, 2, 3]


def test_a_label_volume_goes_back_on_the_inputs_own_grid() -> None:
    arr = _volume()
    image = decode_volume(_nifti(arr, LPS), name="scan.nii")
    labels = (image.pixels[..., 0] % 3).astype(np.uint8)
    back = nib.Nifti1Image.from_bytes(gzip.decompress(encode_label_volume(labels, image)))
    assert np.allclose(back.affine, LPS)
    assert np.array_equal(np.asarray(back.dataobj), (arr % 3).astype(np.uint8))


def test_plain_and_gzipped_nifti_and_nrrd_are_recognised(tmp_path: Path) -> None:
    arr = _volume((5, 6, 7)).astype(np.float32)
    assert sniff_volume(_nifti(arr, np.eye(4), gz=False)) == "nifti"
    assert sniff_volume(_nifti(arr, np.eye(4))) == "nifti"
    path = tmp_path / "v.nrrd"
    nrrd.write(
        str(path),
        arr,
        {
            "space": "left-posterior-superior",
            "space directions": np.diag([0.5, 0.5, 3.0]),
            "space origin": [0.0, 0.0, 0.0],
        },
    )
    data = path.read_bytes()
    assert sniff_volume(data) == "nrrd"
    image = decode_image(data, name="v.nrrd")  # decode_image dispatches volumes too
    assert image.shape == (5, 6, 7) and image.spacing == pytest.approx((0.5, 0.5, 3.0))
    assert sniff_volume(b"\x89PNG\r\n\x1a\n....") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_nifti(np.zeros((4, 4, 4, 3), np.float32), np.eye(4)), "4D"),
        (_degenerate(), "degenerate affine"),
        (_nifti(np.zeros((4, 4), np.float32), np.eye(4)), "a 2D file"),
        (gzip.compress(b"x" * 100), "not a NIfTI"),
    ],
)
def test_bad_volumes_are_named_and_refused(data: bytes, message: str) -> None:
    with pytest.raises(ImageReadError, match=message):
        decode_volume(data, name="bad.nii.gz")


def test_a_volume_without_spacing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="no voxel spacing"):
        decode_volume(_no_spacing(tmp_path), name="bad.nrrd")


def test_label_volumes_must_match_their_image_and_the_labels() -> None:
    image = decode_volume(_nifti(_volume(), np.eye(4)), name="img")
    good = _nifti(np.ones((12, 10, 6), np.uint8), np.eye(4))
    assert decode_label_volume(good, name="m", num_foreground=1, image=image).shape == (12, 10, 6)
    with pytest.raises(MaskError, match="is \\(12, 10, 5\\) but the image"):
        decode_label_volume(
            _nifti(np.ones((12, 10, 5), np.uint8), np.eye(4)),
            name="m",
            num_foreground=1,
            image=image,
        )
    shifted = np.eye(4)
    shifted[0, 3] = 5.0
    with pytest.raises(MaskError, match="affine differs"):
        decode_label_volume(
            _nifti(np.ones((12, 10, 6), np.uint8), shifted), name="m", num_foreground=1, image=image
        )
    with pytest.raises(MaskError, match=r"labels \[3\] are outside"):
        decode_label_volume(
            _nifti(np.full((12, 10, 6), 3, np.uint8), np.eye(4)),
            name="m",
            num_foreground=2,
            image=image,
        )
    with pytest.raises(MaskError, match="whole numbers"):
        decode_label_volume(
            _nifti(np.full((12, 10, 6), 0.5, np.float32), np.eye(4)),
            name="m",
            num_foreground=2,
            image=image,
        )
    with pytest.raises(MaskError, match="2D image"):
        decode_mask(good, name="m", num_foreground=1, image=decode_image(_png(), name="p.png"))


def _png() -> bytes:
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.shared_data
def test_the_hippocampus_volumes_read_with_their_float_label_files() -> None:
    if not HIPPO.is_dir():
        pytest.skip("../shared/data is not here")
    image = decode_volume((HIPPO / "images" / "hippocampus_001.nii.gz").read_bytes(), name="h")
    labels = decode_label_volume(
        (HIPPO / "masks" / "hippocampus_001.nii.gz").read_bytes(),
        name="m",
        num_foreground=2,
        image=image,
    )
    assert set(np.unique(labels)) == {0, 1, 2} and image.spacing == (1.0, 1.0, 1.0)
