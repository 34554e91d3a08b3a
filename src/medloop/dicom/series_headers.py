"""The source headers of a volume assembled from DICOM, and where each source frame lies in it.

A DICOM series (or an enhanced multi-frame image) stored as a volume keeps its
instances' headers, without pixel data, as one blob: a zip of small DICOM files
(:func:`pack_headers`, :func:`unpack_headers`). A DICOM SEG of the volume references
those instances, and each of their frames is found in the volume by its own geometry
(:func:`source_frames`, :func:`voxel_indices`), never by the order the assembler
sorted them in.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from medloop.errors import MaskError

__all__ = [
    "SourceFrame",
    "headers_only",
    "pack_headers",
    "source_frames",
    "unpack_headers",
    "voxel_indices",
]

_LPS_TO_RAS = np.array([-1.0, -1.0, 1.0])
_GRID_TOLERANCE = 0.05  # voxels: how far off the volume's grid a source pixel may lie
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same headers always give the same bytes


def headers_only(data: bytes) -> Dataset:
    """A DICOM file's dataset without its pixel data (read up to Pixel Data, Float or
    Double Float Pixel Data, so nothing after them either); for files the assembler read
    already."""
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)


def pack_headers(datasets: Sequence[Dataset]) -> bytes:
    """One zip of ``datasets`` as DICOM files (``0000.dcm``, ...), in the given order.

    The zip's bytes depend only on the datasets (fixed member times), so the same
    series stored twice is one blob.
    """
    from medloop.dicom.seg import encode_dataset

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for k, ds in enumerate(datasets):
            info = zipfile.ZipInfo(f"{k:04d}.dcm", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, encode_dataset(ds))
    return buffer.getvalue()


def unpack_headers(data: bytes) -> list[Dataset]:
    """The datasets :func:`pack_headers` stored, in their order."""
    import pydicom

    out: list[Dataset] = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in sorted(archive.namelist()):
            out.append(pydicom.dcmread(io.BytesIO(archive.read(name))))
    return out


@dataclass(frozen=True)
class SourceFrame:
    """One frame of a source instance and its geometry.

    Attributes:
        sop_instance_uid: the instance.
        frame: the frame, from 0 (0 for a single-frame instance).
        frames: how many frames the instance has.
        rows, columns: the frame's size.
        position: Image Position (Patient) of its first pixel, mm (LPS).
        row_direction: direction of increasing column index (LPS unit vector).
        column_direction: direction of increasing row index (LPS unit vector).
        spacing: Pixel Spacing ``(between rows, between columns)`` in mm.
    """

    sop_instance_uid: str
    frame: int
    frames: int
    rows: int
    columns: int
    position: np.ndarray
    row_direction: np.ndarray
    column_direction: np.ndarray
    spacing: tuple[float, float]


def _floats(value: Any, count: int) -> np.ndarray:
    out = np.asarray([float(v) for v in value], dtype=np.float64)
    if out.shape != (count,) or not np.isfinite(out).all():
        raise ValueError(f"expected {count} numbers, got {list(value)}")
    return out


def _value(ds: Dataset, frame: int, macro: str, key: str) -> Any:
    for name in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        groups = ds.get(name) or []
        item = groups[frame if name.startswith("PerFrame") else 0] if groups else None
        if item is not None and item.get(macro) and key in item.get(macro)[0]:
            return item.get(macro)[0].get(key)
    return ds.get(key)


def source_frames(datasets: Sequence[Dataset]) -> list[SourceFrame]:
    """Every frame of the source instances ``datasets``, in their order, with its geometry.

    Raises:
        MaskError: an instance without the geometry a volume needs.
    """
    out = []
    for ds in datasets:
        frames = int(ds.get("NumberOfFrames") or 1)
        for frame in range(frames):
            position = _value(ds, frame, "PlanePositionSequence", "ImagePositionPatient")
            cosines = _value(ds, frame, "PlaneOrientationSequence", "ImageOrientationPatient")
            spacing = _value(ds, frame, "PixelMeasuresSequence", "PixelSpacing")
            try:
                where, axes, pixel = (
                    _floats(v, n) for v, n in ((position, 3), (cosines, 6), (spacing, 2))
                )
            except (TypeError, ValueError) as err:
                raise MaskError(
                    f"source instance {ds.get('SOPInstanceUID')}: no usable geometry ({err})"
                ) from err
            out.append(
                SourceFrame(
                    str(ds.SOPInstanceUID),
                    frame,
                    frames,
                    int(ds.Rows),
                    int(ds.Columns),
                    where,
                    axes[:3],
                    axes[3:],
                    (float(pixel[0]), float(pixel[1])),
                )
            )
    return out


def _axis_step(inverse: np.ndarray, direction_lps: np.ndarray, what: str) -> np.ndarray:
    """The voxel step (a signed unit vector along one volume axis) of one pixel step."""
    step = inverse[:3, :3] @ (direction_lps * _LPS_TO_RAS)
    rounded = np.round(step)
    if np.abs(rounded).sum() != 1 or not np.allclose(step, rounded, atol=_GRID_TOLERANCE):
        raise MaskError(f"{what} does not step along one axis of the volume's grid")
    return rounded.astype(np.int64)


def voxel_indices(frame: SourceFrame, affine: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Where each pixel of a source frame lies in a volume ``shape`` ``(X, Y, Z)`` with the
    voxel-to-RAS ``affine``: integer indices ``(3, rows, columns)``.

    ``volume[tuple(voxel_indices(...))]`` is the frame's ``(rows, columns)`` plane.

    Raises:
        MaskError: the frame does not lie on the volume's grid (another position,
            orientation or spacing), or lies outside it.
    """
    what = f"instance {frame.sop_instance_uid} frame {frame.frame + 1}"
    inverse = np.linalg.inv(affine)
    origin = inverse @ np.append(frame.position * _LPS_TO_RAS, 1.0)
    start = np.round(origin[:3])
    if not np.allclose(origin[:3], start, atol=_GRID_TOLERANCE):
        raise MaskError(f"{what}: its Image Position (Patient) is not on the volume's grid")
    per_column = _axis_step(inverse, frame.row_direction * frame.spacing[1], what)
    per_row = _axis_step(inverse, frame.column_direction * frame.spacing[0], what)
    rows = np.arange(frame.rows)[None, :, None]
    cols = np.arange(frame.columns)[None, None, :]
    out = start.astype(np.int64)[:, None, None] + per_row[:, None, None] * rows
    out = out + per_column[:, None, None] * cols
    limits = np.asarray(shape, dtype=np.int64)[:, None, None]
    if out.min() < 0 or (out >= limits).any():
        raise MaskError(f"{what} lies outside the volume {tuple(shape)}")
    return out
