"""DICOM via pydicom: one frame at a time, modality rescale, MONOCHROME1, spacing, UIDs.

Single-frame and multi-frame images (classic and enhanced, whose per-frame
rescale, window and spacing live in functional groups) are decoded one frame
per call, so a 200-frame series never sits in memory at once. Compressed
transfer syntaxes go through pydicom's pixel handlers and whichever decoder
plugins are installed (pylibjpeg, pylibjpeg-libjpeg, -openjpeg, -rle, pyjpegls).
"""

from __future__ import annotations

import math
import warnings
from io import BytesIO
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder, pixel_array
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medloop.domain.image import Image
from medloop.errors import ImageReadError
from medloop.io._common import as_hwc, check_dimensions, decode_guard, normalize_dtype

__all__ = ["MAX_FRAMES", "decode_dicom", "dicom_frame_count", "dicom_patient_id"]

MAX_FRAMES = 10_000
"""The most frames a DICOM image may declare (a guard against absurd headers)."""

_PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_UID_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
_BITS = (1, 8, 16, 32, 64)


def _parse(data: bytes, name: str, forced: bool, *, pixels: bool = True) -> Dataset | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about odd but readable files
        try:
            return pydicom.dcmread(BytesIO(data), force=forced, stop_before_pixels=not pixels)
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


def _frame_items(ds: Dataset, frame: int) -> list[Dataset]:
    """Functional group items that apply to ``frame``: its per-frame item, then the shared one."""
    items: list[Dataset] = []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame < len(per_frame):
        items.append(per_frame[frame])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        items.append(shared[0])
    return items


def _frame_value(ds: Dataset, frame: int, macro: str, key: str) -> Any:
    """``key`` for ``frame``: from its functional group ``macro`` if present, else top level."""
    for item in _frame_items(ds, frame):
        seq = item.get(macro)
        if seq and key in seq[0]:
            return seq[0].get(key)
    return ds.get(key)


def _spacing(ds: Dataset, frame: int) -> tuple[float, float] | None:
    candidates = (
        _frame_value(ds, frame, "PixelMeasuresSequence", "PixelSpacing"),
        ds.get("ImagerPixelSpacing"),
    )
    for value in candidates:
        if value is None:
            continue
        try:
            row, col = (float(v) for v in value)
        except (TypeError, ValueError):
            continue
        if all(math.isfinite(v) and v > 0 for v in (row, col)):
            return (row, col)
    return None


def _check_decoder(syntax: UID, name: str) -> None:
    if not syntax.is_compressed:
        return
    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError as err:
        raise ImageReadError(
            f"{name}: DICOM transfer syntax {syntax} ({syntax.name or 'unknown'}) is not supported"
        ) from err
    if not available:
        raise ImageReadError(
            f"{name}: no decoder installed for DICOM transfer syntax {syntax} "
            f"({syntax.name}); install pylibjpeg with its libjpeg, openjpeg and rle plugins"
        )


def _check_uncompressed_length(ds: Dataset, name: str, frames: int, rows: int, cols: int) -> None:
    """Refuse native pixel data shorter than its header says (a truncated file)."""
    if "PixelData" not in ds:
        return
    bits = int(ds.get("BitsAllocated") or 0)
    samples = int(ds.get("SamplesPerPixel") or 1)
    if bits not in _BITS:
        raise ImageReadError(f"{name}: unsupported DICOM BitsAllocated {bits}")
    total_bits = frames * rows * cols * samples * bits
    needed = (total_bits + 7) // 8
    have = len(ds.PixelData)
    if have < needed:
        raise ImageReadError(
            f"{name}: truncated or corrupt DICOM (pixel data has {have:,} bytes; "
            f"{frames} frame(s) of {cols}x{rows} need {needed:,})"
        )


def _decode_frame(ds: Dataset, name: str, syntax: UID, frame: int, frames: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if frames == 1:
                return np.asarray(ds.pixel_array)
            return np.asarray(pixel_array(ds, index=frame))
    except (RuntimeError, NotImplementedError) as err:
        detail = str(err).strip().splitlines()[-1].strip()[:200]
        raise ImageReadError(
            f"{name}: cannot decode DICOM transfer syntax {syntax} ({syntax.name}): {detail}"
        ) from err


def _modality_source(ds: Dataset, frame: int) -> Dataset:
    """A dataset holding the rescale that applies to ``frame`` (enhanced images keep it
    in the Pixel Value Transformation functional group)."""
    if "PerFrameFunctionalGroupsSequence" not in ds and "SharedFunctionalGroupsSequence" not in ds:
        return ds
    view = Dataset()
    for key in ("RescaleSlope", "RescaleIntercept", "RescaleType"):
        value = _frame_value(ds, frame, "PixelValueTransformationSequence", key)
        if value not in (None, ""):
            setattr(view, key, value)
    if "ModalityLUTSequence" in ds:
        view.ModalityLUTSequence = ds.ModalityLUTSequence
    return view


def _gray(ds: Dataset, raw: np.ndarray, meta: dict[str, Any], frame: int) -> np.ndarray:
    """Modality rescale to float32, then MONOCHROME1 inverted so that bright = high."""
    pixels = np.asarray(apply_modality_lut(raw, _modality_source(ds, frame)))
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


def _frame_count(ds: Dataset, name: str) -> int:
    raw: Any = "?"
    try:
        raw = ds.get("NumberOfFrames")
        frames = 1 if raw in (None, "") else int(raw)
    except (TypeError, ValueError) as err:
        raise ImageReadError(f"{name}: invalid DICOM NumberOfFrames {raw!r}") from err
    if frames < 1 or frames > MAX_FRAMES:
        raise ImageReadError(
            f"{name}: DICOM NumberOfFrames is {frames}; expected 1..{MAX_FRAMES:,}"
        )
    return frames


def dicom_frame_count(data: bytes, name: str) -> int | None:
    """How many frames a DICOM file holds, from its header; ``None`` if it is not DICOM.

    Raises:
        ImageReadError: a DICOM file whose header is corrupt or declares an absurd count.
    """
    forced = not (len(data) >= 132 and data[128:132] == b"DICM")
    ds = _parse(data, name, forced, pixels=False)
    if ds is None or (forced and not ("Rows" in ds and "Columns" in ds)):
        return None
    return _frame_count(ds, name)


def dicom_patient_id(data: bytes) -> str | None:
    """The Patient ID of a DICOM file (its header only), or ``None``."""
    ds = _parse(data, "dicom", True, pixels=False)
    value = None if ds is None else ds.get("PatientID")
    return None if value in (None, "") else str(value)


def _metadata(
    ds: Dataset, syntax: UID, photometric: str, frames: int, frame: int
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "PhotometricInterpretation": photometric,
        "TransferSyntaxUID": str(syntax),
        "bits": int(ds.get("BitsStored") or ds.get("BitsAllocated") or 0),
        "original_channels": int(ds.get("SamplesPerPixel") or 1),
    }
    if frames > 1:
        meta["NumberOfFrames"] = frames
    for key in (*_UID_KEYS, "Modality", "PatientID"):
        if ds.get(key) not in (None, ""):
            meta[key] = str(ds.get(key))
    if ds.get("BurnedInAnnotation") not in (None, ""):
        meta["BurnedInAnnotation"] = str(ds.get("BurnedInAnnotation")).strip().upper()
    for key in ("WindowCenter", "WindowWidth"):
        value = _first_float(_frame_value(ds, frame, "FrameVOILUTSequence", key))
        if value is not None:
            meta[key] = value
    return meta


def decode_dicom(
    data: bytes, name: str, max_pixels: int, *, forced: bool = False, frame: int = 0
) -> Image | None:
    """Decode one frame of a DICOM image.

    Args:
        data: the file content.
        name: file name for messages.
        max_pixels: largest ``Rows * Columns`` accepted, checked before decoding.
        forced: the bytes lack the ``DICM`` preamble; return ``None`` (instead of
            raising) unless they parse as a dataset with pixel data.
        frame: which frame, from 0 (``0`` for single-frame images).

    Returns:
        An :class:`Image`: gray ``(H, W, 1)`` float32 after a modality rescale
        (uint8/uint16 when the file has none), colour ``(H, W, 3)``; spacing in mm
        from PixelSpacing (per frame for enhanced images) or ImagerPixelSpacing;
        metadata with the UIDs, window centre/width (the default display) and
        ``NumberOfFrames`` when there are several. ``None`` only when ``forced``.

    Raises:
        ImageReadError: no pixel data, too large, too many frames, a frame out of
            range, corrupt or truncated, or a transfer syntax without a decoder.
    """
    ds = _parse(data, name, forced)
    has_pixels = ds is not None and any(tag in ds for tag in _PIXEL_TAGS)
    if ds is None or (forced and not (has_pixels and "Rows" in ds and "Columns" in ds)):
        return None
    if not has_pixels:
        raise ImageReadError(f"{name}: DICOM file has no pixel data (not an image)")
    if "Rows" not in ds or "Columns" not in ds:
        raise ImageReadError(f"{name}: DICOM pixel data without Rows/Columns")
    with decode_guard(name, "DICOM"):
        rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
        syntax = _transfer_syntax(ds)
        photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    frames = _frame_count(ds, name)
    if not 0 <= frame < frames:
        raise ImageReadError(f"{name}: no frame {frame}: the image has {frames} frame(s)")
    check_dimensions(name, cols, rows, max_pixels)
    _check_decoder(syntax, name)
    if not syntax.is_compressed:
        _check_uncompressed_length(ds, name, frames, rows, cols)
    meta = _metadata(ds, syntax, photometric, frames, frame)
    with decode_guard(name, "DICOM"):
        raw = _decode_frame(ds, name, syntax, frame, frames)
        if photometric == "PALETTE COLOR":
            pixels = np.asarray(apply_color_lut(raw, ds))
        elif raw.ndim == 3 and raw.shape[-1] in (3, 4):
            pixels = raw
        else:
            pixels = _gray(ds, raw, meta, frame)
        pixels = as_hwc(normalize_dtype(pixels, name), name)
    meta["mode"] = "RGB" if pixels.shape[2] == 3 else "L"
    return Image(pixels=pixels, spacing=_spacing(ds, frame), source_format="dicom", metadata=meta)
