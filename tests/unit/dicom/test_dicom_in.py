"""DICOM in: transfer syntaxes, multi-frame (classic and enhanced), MONOCHROME1, rescale,
window, spacing, UIDs, and the refusals."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import JPEG2000Lossless, RLELossless

from medloop.errors import ImageReadError
from medloop.io import decode_image, read_image, to_display_rgb
from medloop.io.images import dicom_frames, image_frames

from .conftest import sample


def _bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _reference(name: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(sample(name)).pixel_array


@pytest.mark.parametrize(
    ("compressed", "plain"),
    [
        ("MR_small_RLE.dcm", "MR_small.dcm"),  # RLE lossless
        ("MR_small_jp2klossless.dcm", "MR_small.dcm"),  # JPEG 2000 lossless
        ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),  # JPEG-LS lossless
        ("MR_small_implicit.dcm", "MR_small.dcm"),  # implicit VR
        ("MR_small_bigendian.dcm", "MR_small.dcm"),  # explicit VR big endian
        ("SC_rgb_jpeg_gdcm.dcm", "SC_rgb.dcm"),  # JPEG lossless (process 14), pydicom-data
        ("693_J2KR.dcm", "693_UNCR.dcm"),  # JPEG 2000 lossless CT, pydicom-data
    ],
)
def test_lossless_syntaxes_decode_exactly(compressed: str, plain: str) -> None:
    image = read_image(sample(compressed))
    expected = read_image(sample(plain))
    np.testing.assert_array_equal(image.pixels, expected.pixels)
    assert image.spacing == expected.spacing


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("SC_rgb_jpeg_dcmtk.dcm", (100, 100, 3)),  # JPEG baseline, YBR
        ("SC_rgb_jpeg.dcm", (256, 256, 3)),  # JPEG baseline, RGB
        ("JPGExtended.dcm", (1024, 256, 1)),  # JPEG extended 12-bit
        ("JPEG-LL.dcm", (1024, 256, 1)),  # JPEG lossless 16-bit, pydicom-data
        ("JPGLosslessP14SV1_1s_1f_8b.dcm", (768, 1024, 1)),  # JPEG lossless 8-bit
        ("JPEG2000.dcm", (1024, 256, 1)),  # JPEG 2000 lossy
        ("SC_rgb_rle.dcm", (100, 100, 3)),
        ("GDCMJ2K_TextGBR.dcm", (400, 400, 3)),
    ],
)
def test_lossy_and_colour_syntaxes_decode(name: str, shape: tuple[int, int, int]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = read_image(sample(name))
    assert image.pixels.shape == shape
    assert image.metadata["TransferSyntaxUID"] == str(
        pydicom.dcmread(sample(name), stop_before_pixels=True).file_meta.TransferSyntaxUID
    )


def test_jpeg_baseline_close_to_its_source() -> None:
    jpeg = read_image(sample("SC_rgb_dcmtk_+eb+cy+n1.dcm")).pixels.astype(int)
    plain = read_image(sample("SC_rgb_dcmtk_ebcyn1_dcmd.dcm")).pixels.astype(int)  # pydicom-data
    assert np.abs(jpeg - plain).mean() < 2


def _multiframe(frames: int = 3) -> tuple[Dataset, np.ndarray]:
    ds = pydicom.dcmread(sample("CT_small.dcm"))
    stack = np.stack([np.roll(ds.pixel_array, 5 * k, axis=1) for k in range(frames)])
    ds.NumberOfFrames = frames
    ds.PixelData = stack.tobytes()
    return ds, stack


@pytest.mark.parametrize("syntax", [None, RLELossless, JPEG2000Lossless])
def test_multiframe_each_frame(syntax: str | None) -> None:
    ds, stack = _multiframe(3)
    if syntax is not None:
        ds.compress(syntax)
    data = _bytes(ds)
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    for k in range(3):
        image = decode_image(data, name="mf.dcm", frame=k)
        np.testing.assert_array_equal(
            image.pixels[:, :, 0], (stack[k] * slope + intercept).astype(np.float32)
        )
        assert image.metadata["NumberOfFrames"] == 3
    with pytest.raises(ImageReadError, match=r"mf\.dcm: no frame 3: the image has 3 frame"):
        decode_image(data, name="mf.dcm", frame=3)


def test_frames_helpers(tmp_path: Path) -> None:
    ds, _ = _multiframe(4)
    path = tmp_path / "four.dcm"
    path.write_bytes(_bytes(ds))
    assert dicom_frames(path) == 4
    frames = list(image_frames(path))
    assert [k for k, _ in frames] == [0, 1, 2, 3]
    assert dicom_frames(sample("CT_small.dcm")) == 1


def test_emri_multiframe_rle_matches_uncompressed() -> None:
    plain, rle = sample("emri_small.dcm"), sample("emri_small_RLE.dcm")
    assert dicom_frames(rle) == 10
    for k in (0, 4, 9):
        np.testing.assert_array_equal(
            read_image(rle, frame=k).pixels, read_image(plain, frame=k).pixels
        )


def test_enhanced_functional_groups_per_frame() -> None:
    ds, stack = _multiframe(2)
    for key in ("RescaleSlope", "RescaleIntercept", "PixelSpacing", "WindowCenter", "WindowWidth"):
        if key in ds:
            delattr(ds, key)
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [0.5, 0.25]
    measures.SliceThickness = 1
    shared.PixelMeasuresSequence = [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for k in range(2):
        item = Dataset()
        transform = Dataset()
        transform.RescaleSlope = 2 if k else 1
        transform.RescaleIntercept = -100
        transform.RescaleType = "HU"
        item.PixelValueTransformationSequence = [transform]
        voi = Dataset()
        voi.WindowCenter = 40 + k
        voi.WindowWidth = 400
        item.FrameVOILUTSequence = [voi]
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    data = _bytes(ds)
    second = decode_image(data, name="enh.dcm", frame=1)
    np.testing.assert_array_equal(second.pixels[:, :, 0], (stack[1] * 2.0 - 100).astype(np.float32))
    assert second.spacing == (0.5, 0.25)
    assert second.pixel_area_mm2 == pytest.approx(0.125)
    assert second.metadata["WindowCenter"] == 41.0 and second.metadata["WindowWidth"] == 400.0
    first = decode_image(data, name="enh.dcm", frame=0)
    assert first.metadata["WindowCenter"] == 40.0


def test_monochrome1_radiograph_inverted() -> None:
    path = sample("RG3_J2KI.dcm")  # MONOCHROME1 CR, JPEG 2000, pydicom-data
    image = read_image(path)
    raw = _reference("RG3_J2KI.dcm").astype(np.float64)
    assert image.metadata["PhotometricInterpretation"] == "MONOCHROME1"
    assert image.metadata["inverted"] is True
    pixels = image.pixels[:, :, 0].astype(np.float64)
    # bright stays bright after inversion: the raw maximum becomes the minimum
    assert np.argmax(raw) == np.argmin(pixels)


def test_window_is_the_default_display() -> None:
    image = read_image(sample("MR_small.dcm"))
    centre, width = image.metadata["WindowCenter"], image.metadata["WindowWidth"]
    display = to_display_rgb(image)[:, :, 0].astype(int)
    pixels = image.pixels[:, :, 0].astype(float)
    low = pixels <= centre - width / 2
    high = pixels >= centre + width / 2
    assert (display[low] == 0).all() and (display[high] == 255).all()


def test_uids_kept() -> None:
    path = sample("CT_small.dcm")
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    meta = read_image(path).metadata
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"):
        assert meta[key] == str(ds[key].value)


def test_unknown_transfer_syntax_is_named() -> None:
    ds = pydicom.dcmread(sample("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video
    ds.PixelData = pydicom.encaps.encapsulate([b"\x00" * 16])
    ds["PixelData"].VR = "OB"
    with pytest.raises(
        ImageReadError,
        match=r"x\.dcm: DICOM transfer syntax 1\.2\.840\.10008\.1\.2\.4\.100 .*not supported",
    ):
        decode_image(_bytes(ds), name="x.dcm")


@pytest.mark.parametrize("frames", ["0", "-3", "100000", "many"])
def test_absurd_frame_counts(frames: str) -> None:
    ds = pydicom.dcmread(sample("CT_small.dcm"))
    ds.NumberOfFrames = 1
    tag = b"\x28\x00\x08\x00IS\x02\x001 "  # (0028,0008) IS "1 " in explicit VR little endian
    value = frames.encode().ljust(len(frames) + len(frames) % 2)
    data = _bytes(ds).replace(tag, tag[:6] + len(value).to_bytes(2, "little") + value)
    with pytest.raises(ImageReadError, match=r"x\.dcm: .*NumberOfFrames"):
        decode_image(data, name="x.dcm")


def test_pixel_data_shorter_than_the_header_says() -> None:
    ds = pydicom.dcmread(sample("CT_small.dcm"))
    ds.PixelData = ds.PixelData[:1000]
    with pytest.raises(
        ImageReadError, match=r"x\.dcm: truncated or corrupt DICOM \(pixel data has 1,000 bytes"
    ):
        decode_image(_bytes(ds), name="x.dcm")
