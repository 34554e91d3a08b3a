"""Analyses of DICOM images as DICOM SEG (server use case).

A SEG's SOP Instance UID and series UID are derived from what it holds (the
analyses, the source series, the model version), so building it again, e.g. for a
retried upload to a PACS, gives the same instance.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pydicom
from pydicom.dataset import Dataset

from medloop import __version__
from medloop.dicom.seg import build_seg, deterministic_uid, encode_dataset, one_frame_per_seg
from medloop.domain.records import AnalysisRecord, ImageRecord, ProjectRecord
from medloop.errors import ConflictError, ImageReadError
from medloop.io import decode_mask
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

__all__ = ["SegResults", "seg_datasets", "source_dataset"]


def source_dataset(blobs: BlobStore, image: ImageRecord) -> Dataset:
    """The stored DICOM image's dataset, without its pixel data.

    Raises:
        ConflictError: the image is not DICOM (a SEG needs a DICOM source).
    """
    if not image.sop_instance_uid:
        raise ConflictError(
            f"image {image.id!r} ({image.filename}) is not DICOM: "
            "a DICOM SEG needs a DICOM source; use the PNG mask instead"
        )
    path = blobs.open_verified(image.blob_key, image.sha256)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as err:
        raise ImageReadError(f"{image.filename}: stored DICOM unreadable ({err})") from err


class SegResults:
    """Analyses as DICOM SEG.

    Args:
        db: the database.
        blobs: where the sources and label maps are.
    """

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db, self.blobs = db, blobs

    def datasets(
        self,
        project: ProjectRecord,
        image: ImageRecord,
        analyses: Sequence[AnalysisRecord],
        source: Dataset | None = None,
    ) -> list[Dataset]:
        """SEGs of some analyses of one image (see :func:`seg_datasets`)."""
        return seg_datasets(self.blobs, project, image, analyses, source)

    def analysis_seg(self, project: ProjectRecord, analysis_id: str) -> bytes:
        """One analysis as a DICOM SEG file.

        Raises:
            ConflictError: the analysed image is not DICOM.
        """
        with self.db.read() as s:
            analysis = repo.get_analysis(s, analysis_id, project.id)
            image = repo.get_image(s, analysis.image_id, project.id)
        (seg,) = seg_datasets(self.blobs, project, image, [analysis])
        return encode_dataset(seg)


def seg_datasets(
    blobs: BlobStore,
    project: ProjectRecord,
    image: ImageRecord,
    analyses: Sequence[AnalysisRecord],
    source: Dataset | None = None,
) -> list[Dataset]:
    """SEGs of some analyses of one image, all made by the same model version.

    One SEG covers every analysed frame, except for a multi-frame source without
    patient geometry, which gets one SEG per frame.

    Raises:
        ConflictError: the image is not DICOM, or the analyses come from several versions.
        MaskError: a label map does not fit the source.
    """
    if not analyses:
        return []
    versions = {a.model_version for a in analyses}
    if len(versions) != 1:
        raise ConflictError(f"analyses of several model versions {sorted(versions)} in one SEG")
    (version,) = versions
    src = source if source is not None else source_dataset(blobs, image)
    labels = project.settings.label_set
    maps = {
        a.frame: decode_mask(
            blobs.read_bytes(a.label_blob_key, a.label_sha256),
            name="label map",
            num_foreground=labels.num_foreground,
        )
        for a in sorted(analyses, key=lambda a: (a.frame, a.created_at))
    }
    by_frame = {a.frame: a for a in analyses}
    groups = [[frame] for frame in sorted(maps)] if one_frame_per_seg(src) else [sorted(maps)]
    series_uid = deterministic_uid(
        "seg-series", project.id, str(src.get("SeriesInstanceUID", "")), version
    )
    out = []
    for number, frames in enumerate(groups, start=1):
        ids = sorted(by_frame[f].id for f in frames)
        out.append(
            build_seg(
                src,
                {f: maps[f] for f in frames},
                labels,
                model_version=version,
                sop_instance_uid=deterministic_uid("seg", *ids),
                series_instance_uid=series_uid,
                instance_number=number,
                software_version=__version__,
            )
        )
    return out
