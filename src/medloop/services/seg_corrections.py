"""Corrections sent as DICOM SEG: which analysed frames a SEG corrects, and with what label map.

A SEG corrects a DICOM image through the SOP Instance UIDs (and frames) it
references. Segments are matched to the project's labels by their ``99MEDLOOP``
code, else by segment label (:func:`~medloop.dicom.seg_read.read_seg`).
"""

from __future__ import annotations

import numpy as np
from sqlalchemy.orm import Session

from medloop.dicom.seg_read import SegContent, read_seg
from medloop.domain.labels import LabelSet
from medloop.domain.records import AnalysisRecord, ImageRecord
from medloop.errors import MaskError, NotFoundError
from medloop.storage import repositories as repo

__all__ = ["seg_for_analysis", "seg_targets"]


def _check_size(seg: SegContent, name: str, image: ImageRecord) -> None:
    if (seg.rows, seg.columns) != (image.height, image.width):
        raise MaskError(
            f"{name}: SEG frames are {seg.columns}x{seg.rows}, "
            f"the image is {image.width}x{image.height}"
        )


def seg_for_analysis(
    data: bytes, name: str, labels: LabelSet, image: ImageRecord, frame: int
) -> np.ndarray:
    """The label map a SEG gives frame ``frame`` of ``image`` (the analysed instance).

    Raises:
        MaskError: the image is not DICOM, the SEG does not reference it, or sizes differ.
    """
    sop_uid = image.sop_instance_uid
    if not sop_uid:
        raise MaskError(
            f"{name}: a DICOM SEG corrects a DICOM image; image {image.filename!r} "
            "has no SOP Instance UID"
        )
    seg = read_seg(data, labels, name)
    if sop_uid not in seg.references:
        raise MaskError(
            f"{name}: the SEG does not reference instance {sop_uid} (the analysed image); "
            f"it references {', '.join(sorted(seg.references)) or 'nothing'}"
        )
    _check_size(seg, name, image)
    return seg.label_map(sop_uid, frame, image.frames)


def seg_targets(
    session: Session, project_id: str, project_name: str, seg: SegContent, name: str
) -> list[tuple[AnalysisRecord, np.ndarray]]:
    """Every analysis a SEG corrects, with its new label map.

    Every frame the SEG segments, of every instance it references that the project
    holds, corrects the latest analysis of that frame. A referenced single-frame
    instance without segmented pixels corrects its analysis to empty.

    Raises:
        NotFoundError: the SEG references no analysed instance of the project.
        MaskError: a referenced image is not the SEG's size.
    """
    targets: list[tuple[AnalysisRecord, np.ndarray]] = []
    for sop_uid, seg_frames in sorted(seg.references.items()):
        for image in repo.find_images_by_sop_uid(session, project_id, sop_uid):
            frames = seg_frames if seg_frames or image.frames > 1 else frozenset({0})
            for frame in sorted(frames):
                analysis = repo.latest_analysis(session, project_id, image.id, frame)
                if analysis is None:
                    continue
                _check_size(seg, name, image)
                targets.append((analysis, seg.label_map(sop_uid, frame, image.frames)))
    if not targets:
        raise NotFoundError(
            f"{name}: the SEG references no analysed instance of project {project_name!r} "
            f"(it references {', '.join(sorted(seg.references)) or 'nothing'})"
        )
    return targets
