"""Single-frame DICOM via pydicom: modality rescale, MONOCHROME1, spacing, UIDs."""

from __future__ import annotations

import math
import warnings
from io import BytesIO
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medloop.domain.image import Image
from medloop.errors import ImageReadError
from medloop.io._common import as_hwc, check_dimensions, decode_guard, normalize_dtype

__all__ = ["decode_dicom"]

_PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_UID_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def _parse(data: bytes, name: str, forced: bool) -> Dataset | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about odd but readable files
        try:
            return pydicom.dcmread(BytesIO(data), force=forced)
        except Exception as err:
            if forced:
                return None
            raise ImageReadError(f"{name}: truncated or corrupt DICOM ({err})") from err


def _transfer_syntax(ds: Dataset) -> UID:
    """The dataset's transfer syntax, inferred from its encoding when the meta lacks it."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = ds.file_meta = FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        implicit, little = ds.original_encoding
        if implicit:
            meta.TransferSyntaxUID = ImplicitVRLittleEndian
        else:
            meta.TransferSyntaxUID = ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    return UID(str(meta.TransferSyntaxUID))


def _first_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        first = value[0] if isinstance(value, list | tuple | MultiValue) else value
        result = float(first)
    except (TypeError, ValueError, IndexError):
        return None
    return result if math.isfinite(result) else None


def _spacing(ds: Dataset) -> tuple[float, float] | None:
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(key)
        if value is None:
            continue
        try:
            row, col = (float(v) for v in value)
        except (TypeError, ValueError):
            continue
        if all(math.isfinite(v) and v > 0 for v in (row, col)):
            return (row, col)
    return None


def _decode_pixels(ds: Dataset, name: str, syntax: UID) -> np.ndarray:
    if syntax.is_compressed:
        try:
            available = get_decoder(syntax).is_available
        except NotImplementedError as err:
            raise ImageReadError(
                f"{name}: DICOM transfer syntax {syntax} ({syntax.name}) is not supported"
            ) from err
        if not available:
            raise ImageReadError(
                f"{name}: no decoder installed for DICOM transfer syntax {syntax} "
                f"({syntax.name}); install pylibjpeg or python-gdcm"
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(ds.pixel_array)
    except (RuntimeError, NotImplementedError) as err:
        detail = str(err).strip().splitlines()[-1].strip()[:200]
        raise ImageReadError(
            f"{name}: cannot decode DICOM transfer syntax {syntax} ({syntax.name}): {detail}"
        ) from err


def _gray(ds: Dataset, raw: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """Modality rescale to float32, then MONOCHROME1 inverted so that bright = high."""
    pixels = np.asarray(apply_modality_lut(raw, ds))
    if pixels is not raw or raw.dtype.kind not in "u" or raw.dtype.itemsize > 2:
        pixels = pixels.astype(np.float32)
    if meta.get("PhotometricInterpretation") == "MONOCHROME1" and pixels.size:
        low, high = pixels.min(), pixels.max()
        wide = pixels.astype(np.float64 if pixels.dtype.kind == "f" else np.int64)
        pixels = (float(low) + float(high) - wide).astype(pixels.dtype)
        meta["inverted"] = True
        if "WindowCenter" in meta:
            meta["WindowCenter"] = float(low) + float(high) - meta["WindowCenter"]
    return pixels


def decode_dicom(data: bytes, name: str, max_pixels: int, *, forced: bool = False) -> Image | None:
    """Decode a single-frame DICOM image.

    Args:
        data: the file content.
        name: file name for messages.
        max_pixels: largest ``Rows * Columns`` accepted, checked before decoding.
        forced: the bytes lack the ``DICM`` preamble; return ``None`` (instead of
            raising) unless they parse as a dataset with pixel data.

    Returns:
        An :class:`Image`: gray ``(H, W, 1)`` float32 after a modality rescale
        (uint8/uint16 when the file has none), colour ``(H, W, 3)``; spacing in mm
        from PixelSpacing or ImagerPixelSpacing. ``None`` only when ``forced``.

    Raises:
        ImageReadError: no pixel data, multi-frame, too large, corrupt, or a
            transfer syntax without an installed decoder.
    """
    ds = _parse(data, name, forced)
    has_pixels = ds is not None and any(tag in ds for tag in _PIXEL_TAGS)
    if ds is None or (forced and not (has_pixels and "Rows" in ds and "Columns" in ds)):
        return None
    if not has_pixels:
        raise ImageReadError(f"{name}: DICOM file has no pixel data (not an image)")
    with decode_guard(name, "DICOM"):
        frames = int(ds.get("NumberOfFrames") or 1)
        rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
        syntax = _transfer_syntax(ds)
        photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if frames > 1:
        raise ImageReadError(
            f"{name}: multi-frame DICOM ({frames} frames) is not supported by this reader; "
            "export single frames"
        )
    if "Rows" not in ds or "Columns" not in ds:
        raise ImageReadError(f"{name}: DICOM pixel data without Rows/Columns")
    check_dimensions(name, cols, rows, max_pixels)
    meta: dict[str, Any] = {
        "PhotometricInterpretation": photometric,
        "TransferSyntaxUID": str(syntax),
        "bits": int(ds.get("BitsStored") or ds.get("BitsAllocated") or 0),
        "original_channels": int(ds.get("SamplesPerPixel") or 1),
    }
    for key in (*_UID_KEYS, "Modality"):
        if ds.get(key) not in (None, ""):
            meta[key] = str(ds.get(key))
    for key in ("WindowCenter", "WindowWidth"):
        value = _first_float(ds.get(key))
        if value is not None:
            meta[key] = value
    with decode_guard(name, "DICOM"):
        raw = _decode_pixels(ds, name, syntax)
        if photometric == "PALETTE COLOR":
            pixels = np.asarray(apply_color_lut(raw, ds))
        elif raw.ndim == 3 and raw.shape[-1] in (3, 4):
            pixels = raw
        else:
            pixels = _gray(ds, raw, meta)
        pixels = as_hwc(normalize_dtype(pixels, name), name)
    meta["mode"] = "RGB" if pixels.shape[2] == 3 else "L"
    return Image(pixels=pixels, spacing=_spacing(ds), source_format="dicom", metadata=meta)
