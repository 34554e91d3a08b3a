"""Corrections sent as DICOM SEG: which analysed frames a SEG corrects, and with what label map.

A SEG corrects a DICOM image through the SOP Instance UIDs (and frames) it
references. Segments are matched to the project's labels by their ``99MEDLOOP``
code, else by segment label (:func:`~medloop.dicom.seg_read.read_seg`).

A SEG of a series stored as a volume (a 3D project) corrects the latest analysis of that
volume: each referenced instance frame is put back into the volume on its own geometry
(:func:`~medloop.dicom.series_seg.series_label_volume`), frames it leaves out are empty.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy.orm import Session

from medloop.dicom.seg_read import SegContent, read_seg
from medloop.domain.image import Image
from medloop.domain.labels import LabelSet
from medloop.domain.records import AnalysisRecord, ImageRecord
from medloop.errors import MaskError, NotFoundError
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore

__all__ = ["seg_for_analysis", "seg_targets", "series_seg_mask", "series_targets"]


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


def series_targets(
    session: Session, project_id: str, seg: SegContent
) -> list[tuple[AnalysisRecord, ImageRecord]]:
    """The latest analysis of each volume of the project assembled from a series the SEG
    references (with the volume's image)."""
    out = []
    images = repo.images_by_meta(session, project_id, "SeriesInstanceUID", seg.series)
    for image in images:
        if image.headers_blob_key is None:
            continue
        analysis = repo.latest_analysis(session, project_id, image.id, 0)
        if analysis is not None:
            out.append((analysis, image))
    return out


def series_seg_mask(
    blobs: BlobStore, seg: SegContent, name: str, image: ImageRecord, volume: Image
) -> np.ndarray:
    """The label volume ``(X, Y, Z)`` uint8 a SEG gives ``image``, a volume assembled from
    DICOM (``volume``: its decoded pixels and affine).

    Raises:
        MaskError: the volume came from a NIfTI or NRRD file (no DICOM to reference), or
            the SEG does not fit its series (see
            :func:`~medloop.dicom.series_seg.series_label_volume`).
    """
    from medloop.dicom.series_headers import unpack_headers
    from medloop.dicom.series_seg import series_label_volume

    if image.headers_blob_key is None or image.headers_sha256 is None or volume.affine is None:
        raise MaskError(
            f"{name}: a DICOM SEG corrects a volume sent as DICOM; {image.filename!r} came "
            "as a NIfTI or NRRD file: send the correction as a label volume (NIfTI or NRRD)"
        )
    headers = unpack_headers(blobs.read_bytes(image.headers_blob_key, image.headers_sha256))
    return series_label_volume(seg, headers, volume.affine, volume.shape, name)
