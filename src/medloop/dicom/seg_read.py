"""DICOM SEG back in: a corrected SEG (from medloop, 3D Slicer, OHIF ...) as label maps.

:func:`read_seg` parses a SEG, maps its segments to the project's labels (by medloop's
``99MEDLOOP`` type code, else by segment label) and gives a label map per referenced
source instance and frame. Every refusal is a :class:`~medloop.errors.MaskError` that
names the problem.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING, Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID

from medloop.dicom.seg import LABEL_SCHEME, is_seg
from medloop.domain.labels import LabelSet
from medloop.errors import MaskError

if TYPE_CHECKING:
    from highdicom.seg import Segmentation

__all__ = ["SegContent", "read_seg"]


@dataclass(frozen=True)
class SegContent:
    """What a SEG holds, mapped to a project's labels.

    Attributes:
        sop_instance_uid: the SEG's own SOP Instance UID.
        rows, columns: the frame size.
        references: ``{source SOP Instance UID: frames (from 0) that have pixels}``;
            every referenced instance is a key, possibly with no frames (all empty).
        manufacturer: who made it (``medloop`` for our own results).
        series: the Series Instance UIDs of the referenced instances.
    """

    sop_instance_uid: str
    rows: int
    columns: int
    references: dict[str, frozenset[int]]
    manufacturer: str
    series: frozenset[str]
    _seg: Segmentation
    _segment_to_label: dict[int, int]

    def label_map(self, sop_instance_uid: str, frame: int = 0, frames: int = 1) -> np.ndarray:
        """The ``(rows, columns)`` uint8 label map of one source frame.

        Args:
            sop_instance_uid: the source instance.
            frame: the frame, from 0.
            frames: how many frames the source has (1: single-frame).

        Raises:
            MaskError: the SEG does not reference this instance.
        """
        if sop_instance_uid not in self.references:
            raise MaskError(
                f"the SEG does not reference instance {sop_instance_uid}; "
                f"it references {', '.join(sorted(self.references)) or 'nothing'}"
            )
        out = np.zeros((self.rows, self.columns), dtype=np.uint8)
        if frame not in self.references[sop_instance_uid]:
            return out
        seg = self._seg
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for segment, value in sorted(self._segment_to_label.items()):
                kw: dict[str, Any] = {"segment_numbers": [segment], "combine_segments": True}
                if frames > 1:
                    pixels = seg.get_pixels_by_source_frame(
                        source_sop_instance_uid=sop_instance_uid,
                        source_frame_numbers=[frame + 1],
                        ignore_spatial_locations=True,
                        **kw,
                    )
                else:
                    pixels = seg.get_pixels_by_source_instance(
                        source_sop_instance_uids=[sop_instance_uid],
                        ignore_spatial_locations=True,
                        **kw,
                    )
                out[np.asarray(pixels)[0] > 0] = value
        return out

    def planes(self, sop_instance_uid: str, frames: int = 1) -> np.ndarray:
        """Every frame of one source instance as label maps ``(frames, rows, columns)``
        uint8 (frames the SEG leaves out are empty).

        Raises:
            MaskError: segments of different labels overlap on a pixel (no label map
                can say both).
        """
        out = np.zeros((frames, self.rows, self.columns), dtype=np.uint8)
        wanted = sorted(f for f in self.references.get(sop_instance_uid, ()) if f < frames)
        segments = sorted(self._segment_to_label)
        if not wanted or not segments:
            return out
        kw: dict[str, Any] = {
            "segment_numbers": segments,
            "combine_segments": False,
            "ignore_spatial_locations": True,
            "assert_missing_frames_are_empty": True,
            "skip_overlap_checks": True,
            "dtype": np.uint8,
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if frames > 1:
                pixels = self._seg.get_pixels_by_source_frame(
                    source_sop_instance_uid=sop_instance_uid,
                    source_frame_numbers=[f + 1 for f in wanted],
                    **kw,
                )
            else:
                pixels = self._seg.get_pixels_by_source_instance(
                    source_sop_instance_uids=[sop_instance_uid], **kw
                )
        values = np.asarray([self._segment_to_label[n] for n in segments], dtype=np.uint8)
        hits = np.asarray(pixels) > 0  # (n, rows, columns, segments)
        # a pixel in segments of two different labels cannot be one label map's pixel
        low = np.where(hits, values, 255).min(axis=-1)
        high = np.where(hits, values, 0).max(axis=-1)
        clash = hits.any(axis=-1) & (low != high)
        if clash.any():
            n, row, col = (int(v[0]) for v in np.nonzero(clash))
            raise MaskError(
                f"segments of labels {int(low[n, row, col])} and {int(high[n, row, col])} "
                f"overlap on instance {sop_instance_uid} frame {wanted[n] + 1} "
                f"(row {row}, column {col}): one voxel can have one label only"
            )
        out[wanted] = high
        return out


def _referenced_frames(ds: Dataset) -> dict[str, frozenset[int]]:
    refs: dict[str, set[int]] = {}
    for series in ds.get("ReferencedSeriesSequence") or []:
        for inst in series.get("ReferencedInstanceSequence") or []:
            refs.setdefault(str(inst.ReferencedSOPInstanceUID), set())
    for item in ds.get("PerFrameFunctionalGroupsSequence") or []:
        for derivation in item.get("DerivationImageSequence") or []:
            for src in derivation.get("SourceImageSequence") or []:
                uid = str(src.ReferencedSOPInstanceUID)
                numbers = src.get("ReferencedFrameNumber")
                if numbers in (None, ""):
                    frames = {0}
                else:
                    values = numbers if isinstance(numbers, Sequence) else [numbers]
                    frames = {int(n) - 1 for n in values}
                refs.setdefault(uid, set()).update(frames)
    return {uid: frozenset(frames) for uid, frames in refs.items()}


def _segment_map(seg: Segmentation, labels: LabelSet) -> dict[int, int]:
    by_name = {label.name.casefold(): label.value for label in labels.labels}
    mapping: dict[int, int] = {}
    unknown: list[str] = []
    for number in seg.segment_numbers:
        desc = seg.get_segment_description(number)
        code = desc.segmented_property_type
        value: int | None = None
        if code.scheme_designator == LABEL_SCHEME and code.value[1:].isdigit():
            value = int(code.value[1:])
            if value > labels.max_value:
                value = None
        if value is None:
            value = by_name.get(str(desc.segment_label).strip().casefold())
        if value is None:
            unknown.append(f"{number} {desc.segment_label!r}")
        else:
            mapping[int(number)] = value
    if unknown:
        names = ", ".join(label.name for label in labels.labels)
        raise MaskError(
            f"SEG segment(s) {'; '.join(unknown)} match none of the project's labels ({names})"
        )
    return mapping


def read_seg(data: bytes | Dataset, labels: LabelSet, name: str = "SEG") -> SegContent:
    """Parse a DICOM SEG and map its segments to ``labels``.

    Args:
        data: the SEG's file bytes, or its dataset.
        labels: the project's labels.
        name: what to call it in messages.

    Raises:
        MaskError: not a SEG, unreadable, or with segments that match no label.
    """
    import highdicom as hd
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = data if isinstance(data, Dataset) else pydicom.dcmread(BytesIO(data))
    except Exception as err:
        raise MaskError(f"{name}: not a readable DICOM file ({err})") from err
    if not is_seg(ds):
        sop_class = UID(str(ds.get("SOPClassUID", "")))
        raise MaskError(
            f"{name}: not a DICOM SEG (SOP class {sop_class.name or sop_class or 'missing'})"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
    except Exception as err:
        raise MaskError(f"{name}: invalid DICOM SEG ({err})") from err
    return SegContent(
        sop_instance_uid=str(ds.SOPInstanceUID),
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        references=_referenced_frames(ds),
        manufacturer=str(ds.get("Manufacturer", "")),
        series=frozenset(
            str(item.SeriesInstanceUID) for item in ds.get("ReferencedSeriesSequence") or []
        ),
        _seg=seg,
        _segment_to_label=_segment_map(seg, labels),
    )
