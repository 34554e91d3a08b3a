"""DICOM: rescale, MONOCHROME1, spacing, UIDs, colour, and the refusals."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import get_decoder

from medloop.errors import ImageReadError
from medloop.io import decode_image, read_image, to_display_rgb
from medloop.io.images import dicom_frames


def _save(ds: pydicom.Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def test_ct_small_rescale_spacing_and_uids(dicom_file: Callable[[str], Path]) -> None:
    path = dicom_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    image = read_image(path)
    assert image.source_format == "dicom"
    assert image.pixels.shape == (128, 128, 1)
    assert image.pixels.dtype == np.float32
    expected = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(
        ds.RescaleIntercept
    )
    np.testing.assert_array_equal(image.pixels[:, :, 0], expected.astype(np.float32))
    assert image.spacing == pytest.approx((0.661468, 0.661468))
    assert image.pixel_area_mm2 == pytest.approx(0.661468**2)
    meta = image.metadata
    assert meta["Modality"] == "CT"
    assert meta["PhotometricInterpretation"] == "MONOCHROME2"
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert meta[key] == str(ds[key].value)


def test_mr_small_window_and_spacing(dicom_file: Callable[[str], Path]) -> None:
    image = read_image(dicom_file("MR_small.dcm"))
    assert image.spacing == pytest.approx((0.3125, 0.3125))
    assert image.metadata["WindowCenter"] == 600.0
    assert image.metadata["WindowWidth"] == 1600.0
    assert isinstance(image.metadata["WindowCenter"], float)
    display = to_display_rgb(image)
    assert display.shape == (64, 64, 3) and display.dtype == np.uint8


def test_monochrome1_is_inverted(ct_dataset: pydicom.Dataset, tmp_path: Path) -> None:
    plain = read_image(_save(ct_dataset, tmp_path / "mono2.dcm")).pixels
    ct_dataset.PhotometricInterpretation = "MONOCHROME1"
    ct_dataset.WindowCenter = 100
    ct_dataset.WindowWidth = 500
    image = read_image(_save(ct_dataset, tmp_path / "mono1.dcm"))
    np.testing.assert_array_equal(image.pixels, plain.max() + plain.min() - plain)
    assert image.metadata["inverted"] is True
    assert image.metadata["WindowCenter"] == pytest.approx(
        float(plain.max()) + float(plain.min()) - 100
    )


def test_dicom_without_preamble(ct_dataset: pydicom.Dataset) -> None:
    expected = decode_image(_bytes_with_meta(ct_dataset)).pixels
    del ct_dataset.file_meta
    ct_dataset.preamble = None
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ct_dataset, implicit_vr=False, little_endian=True)
    data = buffer.getvalue()
    assert data[128:132] != b"DICM"
    image = decode_image(data, name="raw.dcm")
    assert image.source_format == "dicom"
    np.testing.assert_array_equal(image.pixels, expected)


def _bytes_with_meta(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_rgb_dicom(dicom_file: Callable[[str], Path]) -> None:
    image = read_image(dicom_file("SC_rgb_small_odd.dcm"))
    assert image.pixels.shape == (3, 3, 3)
    assert image.pixels.dtype == np.uint8
    assert image.spacing == pytest.approx((33.333333, 33.333333))


def test_multiframe_emri_reads_each_frame(dicom_file: Callable[[str], Path]) -> None:
    path = dicom_file("emri_small.dcm")
    frames = pydicom.dcmread(path).pixel_array
    assert dicom_frames(path) == 10
    for k in (0, 9):
        image = read_image(path, frame=k)
        np.testing.assert_array_equal(image.pixels[:, :, 0], frames[k])
        assert image.metadata["NumberOfFrames"] == 10


def test_multiframe_crafted_frame_out_of_range(ct_dataset: pydicom.Dataset, tmp_path: Path) -> None:
    ct_dataset.NumberOfFrames = 2
    ct_dataset.PixelData = ct_dataset.PixelData * 2
    path = _save(ct_dataset, tmp_path / "two.dcm")
    np.testing.assert_array_equal(read_image(path, frame=1).pixels, read_image(path).pixels)
    with pytest.raises(ImageReadError, match=r"two\.dcm: no frame 2: the image has 2 frame"):
        read_image(path, frame=2)


def test_dicom_without_pixel_data(ct_dataset: pydicom.Dataset, tmp_path: Path) -> None:
    del ct_dataset.PixelData
    path = _save(ct_dataset, tmp_path / "nopix.dcm")
    with pytest.raises(ImageReadError, match=r"nopix\.dcm: DICOM file has no pixel data"):
        read_image(path)


def test_unsupported_transfer_syntax_named(dicom_file: Callable[[str], Path]) -> None:
    path = dicom_file("JPEGLSNearLossless_08.dcm")
    syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    if get_decoder(syntax).is_available:
        pytest.skip("a JPEG-LS decoder is installed here")
    with pytest.raises(ImageReadError, match=r"1\.2\.840\.10008\.1\.2\.4\.81.*JPEG-LS"):
        read_image(path)


def test_dicom_too_many_pixels(dicom_file: Callable[[str], Path]) -> None:
    with pytest.raises(ImageReadError, match="128x128"):
        read_image(dicom_file("CT_small.dcm"), max_pixels=128 * 127)


def test_truncated_dicom(dicom_file: Callable[[str], Path]) -> None:
    data = dicom_file("CT_small.dcm").read_bytes()
    with pytest.raises(ImageReadError, match=r"half\.dcm: truncated or corrupt"):
        decode_image(data[: len(data) // 2], name="half.dcm")
