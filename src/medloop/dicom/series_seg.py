"""DICOM SEG of a volume assembled from DICOM: one SEG referencing every source instance,
and a SEG of such a volume read back as a label volume.

The stored volume was sorted and reoriented by the assembler, so neither direction
trusts an order: each source frame's pixels are taken from (or put into) the volume at
the voxels its own Image Position / Orientation (Patient) and Pixel Spacing name
(:func:`~medloop.dicom.series_headers.voxel_indices`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset

from medloop.dicom.seg import deterministic_uid, segmentation
from medloop.dicom.seg_read import SegContent
from medloop.dicom.series_headers import source_frames, voxel_indices
from medloop.domain.labels import LabelSet
from medloop.errors import MaskError

__all__ = ["build_series_seg", "series_label_volume"]


_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)
"""Patient and study attributes a SEG copies from its sources (type 2: present, maybe empty)."""


def _completed(sources: Sequence[Dataset]) -> list[Dataset]:
    """The sources, copied where something a SEG copies from them is missing: empty
    patient and study attributes, and a Frame of Reference UID derived from the series
    (a SEG in patient space needs one)."""
    out = []
    for ds in sources:
        missing = [k for k in _TYPE2 if k not in ds]
        if not missing and ds.get("FrameOfReferenceUID"):
            out.append(ds)
            continue
        ds = copy.copy(ds)
        for keyword in missing:
            setattr(ds, keyword, "")
        if not ds.get("FrameOfReferenceUID"):
            ds.FrameOfReferenceUID = deterministic_uid(
                "frame-of-reference", str(ds.SeriesInstanceUID)
            )
        out.append(ds)
    return out


def _check_sources(sources: Sequence[Dataset]) -> None:
    if not sources:
        raise MaskError("a SEG needs the source instances' headers; there are none")
    if len(sources) > 1 and any(int(ds.get("NumberOfFrames") or 1) > 1 for ds in sources):
        raise MaskError("a volume is one series of single-frame instances or one multi-frame image")


def build_series_seg(
    sources: Sequence[Dataset],
    label_volume: np.ndarray,
    affine: np.ndarray,
    labels: LabelSet,
    *,
    model_version: str,
    sop_instance_uid: str,
    series_instance_uid: str,
    series_number: int = 9901,
    instance_number: int = 1,
    software_version: str = "",
) -> Dataset:
    """One BINARY SEG of a label volume, referencing every source instance.

    Args:
        sources: the headers of the volume's source instances (a series of single-frame
            instances, or one multi-frame image), in any order.
        label_volume: ``(X, Y, Z)`` values ``0..K`` on the stored volume's grid.
        affine: the stored volume's voxel-to-RAS matrix ``(4, 4)``, mm.
        labels: the project's labels (one segment each).
        model_version, sop_instance_uid, series_instance_uid, series_number,
        instance_number, software_version: as for :func:`~medloop.dicom.seg.build_seg`.

    Returns:
        The Segmentation: frame by source frame, only frames with content (every
        source instance is referenced all the same).

    Raises:
        MaskError: a source frame off the volume's grid, labels outside the project's.
    """
    _check_sources(sources)
    if label_volume.size and int(label_volume.max()) > labels.max_value:
        raise MaskError(f"label {int(label_volume.max())} is not one of the project's labels")
    frames = source_frames(sources)
    planes = np.stack(
        [label_volume[tuple(voxel_indices(f, affine, label_volume.shape))] for f in frames]
    ).astype(np.uint8)
    return segmentation(
        _completed(sources),
        planes,
        labels,
        model_version=model_version,
        sop_instance_uid=sop_instance_uid,
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        instance_number=instance_number,
        software_version=software_version,
        omit_empty_frames=bool(planes.any()),
    )


def series_label_volume(
    seg: SegContent,
    sources: Sequence[Dataset],
    affine: np.ndarray,
    shape: Sequence[int],
    name: str = "SEG",
) -> np.ndarray:
    """The label volume ``(X, Y, Z)`` uint8 a SEG gives a volume assembled from ``sources``.

    Source frames the SEG leaves out are empty (viewers often write only slices with
    content).

    Raises:
        MaskError: the SEG references another series or instances that are not
            among the sources, its frames are not the sources' size, or segments of
            different labels overlap.
    """
    _check_sources(sources)
    series = {str(ds.SeriesInstanceUID) for ds in sources}
    if seg.series and not seg.series & series:
        raise MaskError(
            f"{name}: the SEG references series {', '.join(sorted(seg.series))}; "
            f"the analysed volume is series {', '.join(sorted(series))}"
        )
    known = {str(ds.SOPInstanceUID) for ds in sources}
    unknown = sorted(set(seg.references) - known)
    if unknown:
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise MaskError(
            f"{name}: the SEG references instance(s) {', '.join(unknown[:3])}{more}, "
            f"which are not in the analysed series ({len(known)} instances)"
        )
    rows, cols = int(sources[0].Rows), int(sources[0].Columns)
    if (seg.rows, seg.columns) != (rows, cols):
        raise MaskError(
            f"{name}: SEG frames are {seg.columns}x{seg.rows}, the series {cols}x{rows}"
        )
    out = np.zeros(tuple(shape), dtype=np.uint8)
    frames = source_frames(sources)
    planes = {
        uid: seg.planes(uid, count)
        for uid, count in {(f.sop_instance_uid, f.frames) for f in frames}
        if seg.references.get(uid)
    }
    for frame in frames:
        if frame.sop_instance_uid in planes:
            out[tuple(voxel_indices(frame, affine, shape))] = planes[frame.sop_instance_uid][
                frame.frame
            ]
    return out
