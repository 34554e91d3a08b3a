"""Analyses of DICOM images as DICOM SEG (server use case).

A SEG's SOP Instance UID and series UID are derived from what it holds (the
analyses, the source series, the model version), so building it again, e.g. for a
retried upload to a PACS, gives the same instance.

A volume assembled from a DICOM series (or an enhanced multi-frame image) gets ONE SEG
referencing every source instance, from the headers kept with it
(:func:`series_seg_dataset`); a volume sent as NIfTI or NRRD has none to reference.
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
from medloop.io import decode_image, decode_mask
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

__all__ = ["SegResults", "seg_datasets", "series_seg_dataset", "source_dataset"]


def source_dataset(blobs: BlobStore, image: ImageRecord) -> Dataset:
    """The stored DICOM image's dataset, without its pixel data.

    Raises:
        ConflictError: the image is not DICOM (a SEG needs a DICOM source).
    """
    if not image.sop_instance_uid and "orientation" in image.metadata:  # a volume
        raise ConflictError(
            f"image {image.id!r} ({image.filename}) is a volume sent as a NIfTI or NRRD "
            "file: it has no DICOM instances for a DICOM SEG to reference; use its label "
            "volume (.../mask) instead"
        )
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
        if image.headers_blob_key is not None:
            return encode_dataset(series_seg_dataset(self.blobs, project, image, analysis))
        (seg,) = seg_datasets(self.blobs, project, image, [analysis])
        return encode_dataset(seg)

    def series_dataset(
        self, project: ProjectRecord, image: ImageRecord, analysis: AnalysisRecord
    ) -> Dataset:
        """The SEG of a volume analysis (see :func:`series_seg_dataset`)."""
        return series_seg_dataset(self.blobs, project, image, analysis)


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


def series_seg_dataset(
    blobs: BlobStore, project: ProjectRecord, image: ImageRecord, analysis: AnalysisRecord
) -> Dataset:
    """ONE SEG of a volume analysis, referencing every instance of the DICOM series (or the
    enhanced multi-frame image) the volume was assembled from; one segment per project
    label; UIDs derived from the analysis (SOP Instance) and from the project, source
    series and model version (series), as for 2D.

    Raises:
        ConflictError: the volume was not assembled from DICOM.
        MaskError: the label volume does not fit the source instances.
    """
    from medloop.dicom.series_headers import unpack_headers
    from medloop.dicom.series_seg import build_series_seg

    if image.headers_blob_key is None or image.headers_sha256 is None:
        source_dataset(blobs, image)  # raises the reason (not DICOM, or a NIfTI volume)
        raise ConflictError(f"image {image.id!r} has no DICOM series headers")
    headers = unpack_headers(blobs.read_bytes(image.headers_blob_key, image.headers_sha256))
    volume = decode_image(blobs.read_bytes(image.blob_key, image.sha256), name=image.filename)
    labels = project.settings.label_set
    label_volume = decode_mask(
        blobs.read_bytes(analysis.label_blob_key, analysis.label_sha256),
        name="label volume",
        num_foreground=labels.num_foreground,
        image=volume,
    )
    if volume.affine is None:  # pragma: no cover - every stored volume has one
        raise ConflictError(f"image {image.id!r}: a volume without its affine")
    version = analysis.model_version
    series = str(headers[0].get("SeriesInstanceUID", ""))
    return build_series_seg(
        headers,
        label_volume,
        volume.affine,
        labels,
        model_version=version,
        sop_instance_uid=deterministic_uid("seg", analysis.id),
        series_instance_uid=deterministic_uid("seg-series", project.id, series, version),
        software_version=__version__,
    )
