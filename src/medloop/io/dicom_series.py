"""A DICOM series (single-frame instances), or the frames of an enhanced multi-frame image
with per-frame geometry, assembled into one volume.

The instances are sorted by their Image Position (Patient) along the slice normal (the
cross product of the two Image Orientation (Patient) directions), then checked: one
Series Instance UID, one orientation, one Rows x Columns, one Pixel Spacing, gray
pixels, and evenly spaced positions (no gap, no duplicate). Each problem is an
:class:`~medloop.errors.ImageReadError` naming it (and the instances concerned).

The volume is an :class:`~medloop.domain.image.Image` like a NIfTI's: pixels
``(X, Y, Z, 1)`` in canonical RAS+ orientation, spacing in mm, the affine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import numpy as np

from medloop.domain.image import Image
from medloop.errors import ImageReadError, TooManyFrames
from medloop.io._dicom import _frame_value, decode_dicom
from medloop.io.volumes import volume_image

__all__ = ["assemble_frames", "assemble_series"]

_ORIENTATION_TOLERANCE = 1e-4
_SPACING_TOLERANCE = 0.01  # relative: 1 % between slice steps or pixel spacings


@dataclass(frozen=True)
class _Instance:
    name: str
    series: str
    orientation: np.ndarray  # (6,): row then column direction cosines (LPS)
    position: np.ndarray  # (3,) mm (LPS)
    spacing: tuple[float, float]  # (between rows, between columns) mm
    image: Image  # (rows, cols, 1)


def _dataset(name: str, data: bytes) -> Any:
    import pydicom

    try:
        return pydicom.dcmread(BytesIO(data), stop_before_pixels=True, force=True)
    except Exception as err:
        raise ImageReadError(f"{name}: truncated or corrupt DICOM ({err})") from err


def _located(name: str, ds: Any, frame: int, image: Image) -> _Instance:
    """A decoded frame with its geometry (per frame for an enhanced multi-frame image)."""
    if image.channels != 1:
        raise ImageReadError(f"{name}: colour pixels; a volume must be gray")
    orientation = _frame_value(ds, frame, "PlaneOrientationSequence", "ImageOrientationPatient")
    position = _frame_value(ds, frame, "PlanePositionSequence", "ImagePositionPatient")
    missing = [
        key
        for key, value in (
            ("SeriesInstanceUID", ds.get("SeriesInstanceUID")),
            ("ImageOrientationPatient", orientation),
            ("ImagePositionPatient", position),
            ("PixelSpacing", image.spacing),
        )
        if value in (None, "")
    ]
    if missing:
        raise ImageReadError(
            f"{name}: no {', '.join(missing)}; a volume needs each slice's geometry"
        )
    try:
        cosines = np.asarray([float(v) for v in orientation], dtype=np.float64)
        where = np.asarray([float(v) for v in position], dtype=np.float64)
    except (TypeError, ValueError):
        cosines = where = np.zeros(0)
    if cosines.shape != (6,) or where.shape != (3,):
        raise ImageReadError(f"{name}: malformed Image Orientation or Position (Patient)")
    assert image.spacing is not None
    spacing = (float(image.spacing[0]), float(image.spacing[1]))
    return _Instance(name, str(ds.SeriesInstanceUID), cosines, where, spacing, image)


def _instance(name: str, data: bytes, max_pixels: int) -> _Instance:
    """One single-frame instance of a series."""
    image = decode_dicom(data, name, max_pixels)
    if image is None:  # pragma: no cover - not forced: decode_dicom raises instead
        raise ImageReadError(f"{name}: not a DICOM image")
    ds = _dataset(name, data)
    if int(ds.get("NumberOfFrames") or 1) > 1:
        raise ImageReadError(
            f"{name}: a multi-frame instance in a series; send it alone (one volume)"
        )
    return _located(name, ds, 0, image)


def _check_alike(items: Sequence[_Instance]) -> None:
    first = items[0]
    series = sorted({i.series for i in items})
    if len(series) > 1:
        odd = [i.name for i in items if i.series != first.series][:5]
        raise ImageReadError(
            f"mixed series: {len(series)} Series Instance UIDs among {len(items)} instances "
            f"(e.g. {', '.join(odd)} differ from {first.name}); send one series"
        )
    for item in items[1:]:
        if not np.allclose(item.orientation, first.orientation, atol=_ORIENTATION_TOLERANCE):
            raise ImageReadError(
                f"inconsistent orientation: {item.name} and {first.name} differ in "
                "Image Orientation (Patient)"
            )
        if item.image.shape != first.image.shape:
            raise ImageReadError(
                f"inconsistent size: {item.name} is {item.image.shape[0]}x{item.image.shape[1]} "
                f"(rows x columns), {first.name} {first.image.shape[0]}x{first.image.shape[1]}"
            )
        if not np.allclose(item.spacing, first.spacing, rtol=_SPACING_TOLERANCE):
            raise ImageReadError(
                f"inconsistent spacing: {item.name} has Pixel Spacing {list(item.spacing)}, "
                f"{first.name} {list(first.spacing)}"
            )


def _check_steps(items: Sequence[_Instance], along: np.ndarray) -> float:
    """The slice step in mm of instances sorted by ``along`` (their positions on the normal)."""
    steps = np.diff(along)
    for k, step in enumerate(steps):
        if step < 1e-3:
            raise ImageReadError(
                f"duplicate slice: {items[k].name} and {items[k + 1].name} are at the same "
                f"position ({along[k]:.3f} mm along the slice normal)"
            )
    step = float(np.median(steps))
    for k, s in enumerate(steps):
        if abs(s - step) > _SPACING_TOLERANCE * step:
            raise ImageReadError(
                f"gap in the series: {s:.3f} mm between {items[k].name} and "
                f"{items[k + 1].name}, where the slices are {step:.3f} mm apart"
            )
    return step


def assemble_series(files: Sequence[tuple[str, bytes]], *, max_pixels: int) -> Image:
    """One volume from the instances of a DICOM series, in any order.

    Args:
        files: ``(name, bytes)`` of each instance.
        max_pixels: most voxels the volume may have (and pixels per instance).

    Returns:
        pixels ``(X, Y, Z, 1)`` canonical RAS+, spacing in mm, affine; metadata with the
        modality and the number of instances.

    Raises:
        ImageReadError: fewer than 2 instances, an instance that is no gray single-frame
            image with its geometry, mixed series, inconsistent orientation, size or
            spacing, a duplicate position or a gap; too many voxels.
    """
    if len(files) < 2:
        raise ImageReadError(
            f"a DICOM series needs at least 2 instances, got {len(files)}"
            + (f" ({files[0][0]})" if files else "")
        )
    return _assemble([_instance(name, data, max_pixels) for name, data in files], max_pixels)


def assemble_frames(
    data: bytes, name: str, *, max_pixels: int, max_frames: int | None = None
) -> Image:
    """One volume from the frames of a multi-frame image with per-frame geometry (enhanced
    CT/MR: Plane Position and Orientation in its functional groups), checked as a series.

    Raises:
        ImageReadError: fewer than 2 frames, a frame without its geometry, frames that
            are no evenly spaced stack; see :func:`assemble_series`.
        TooManyFrames: more frames than ``max_frames``.
    """
    ds = _dataset(name, data)
    frames = int(ds.get("NumberOfFrames") or 1)
    if frames < 2:
        raise ImageReadError(f"{name}: one frame; a volume needs at least 2")
    if max_frames is not None and frames > max_frames:
        raise TooManyFrames(
            f"{name}: {frames} frames; this project analyses at most {max_frames} slices "
            "per request (its max_frames setting)"
        )
    items = []
    for k in range(frames):
        image = decode_dicom(data, name, max_pixels, frame=k)
        assert image is not None
        items.append(_located(f"{name} frame {k + 1}", ds, k, image))
    return _assemble(items, max_pixels)


def _assemble(items: list[_Instance], max_pixels: int) -> Image:
    """The checked, sorted stack of ``items`` as a canonical volume."""
    _check_alike(items)
    first = items[0]
    rows, cols = first.image.shape
    if rows * cols * len(items) > max_pixels:
        raise ImageReadError(
            f"series is {cols}x{rows}x{len(items)} voxels, over the limit of {max_pixels:,}"
        )
    row_dir, col_dir = first.orientation[:3], first.orientation[3:]
    normal = np.cross(row_dir, col_dir)
    order = sorted(range(len(items)), key=lambda k: float(items[k].position @ normal))
    items = [items[k] for k in order]
    step = _check_steps(items, np.asarray([i.position @ normal for i in items]))
    # voxel (i = column, j = row, k = slice) -> LPS mm, then RAS
    lps = np.eye(4)
    lps[:3, 0] = row_dir * first.spacing[1]
    lps[:3, 1] = col_dir * first.spacing[0]
    lps[:3, 2] = normal * step
    lps[:3, 3] = items[0].position
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    stack = np.stack([i.image.pixels[..., 0].T for i in items], axis=-1)  # (cols, rows, n)
    meta = {"instances": len(items), "modality": first.image.metadata.get("Modality")}
    return volume_image(stack, affine, "dicom-series", meta, "series")
