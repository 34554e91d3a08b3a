"""Corrections: a clinician's label map for an analysis, kept as a new immutable record.

A correction of a 2D analysis comes as a label-map image (PNG, TIFF, ...) or as a DICOM
SEG that references the analysed instance; either way the server keeps the canonical
label-map PNG (0..K). A correction of a volume analysis comes as a label volume (NIfTI
or NRRD) on the analysed volume's grid (shape and affine checked) and is kept as a
gzipped NIfTI on that grid, like the analysis's own; a volume assembled from a DICOM
series may also be corrected with a DICOM SEG of that series. Each new correction reports its
per-class agreement with the prediction (Dice, pixels or voxels changed). Corrections are numbered per project; every ``round(1/share)``-th is held
out for the gate, decided on arrival. Every ``finetune_every``-th correction queues a
fine-tune (a fine-tune already queued absorbs the trigger).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from medloop.dicom.seg_read import SegContent, read_seg
from medloop.domain.image import Image
from medloop.domain.jobs import FinetuneJob, FinetuneOptions
from medloop.domain.learning import is_held_out
from medloop.domain.measurements import ClassAgreement, agreement
from medloop.domain.records import (
    AnalysisRecord,
    CorrectionEffort,
    CorrectionRecord,
    ImageRecord,
    ProjectRecord,
)
from medloop.errors import MaskError
from medloop.io import decode_image, decode_mask, encode_label_map_png
from medloop.io.volumes import encode_label_volume, sniff_volume
from medloop.services.jobs import JobService
from medloop.services.model_pool import ModelPool
from medloop.services.seg_corrections import (
    seg_for_analysis,
    seg_targets,
    series_seg_mask,
    series_targets,
)
from medloop.services.uploads import UploadLimits, is_dicom, read_upload, sanitize_filename
from medloop.services.volume_view import LabelFile, label_file
from medloop.services.voxels import read_label_voxels
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

__all__ = ["CorrectionResult", "Corrections"]


@dataclass(frozen=True)
class CorrectionResult:
    """A stored correction, how many more start the next fine-tune, the job it started, and
    its per-class agreement with the prediction."""

    correction: CorrectionRecord
    until_finetune: int | None
    finetune_job_id: str | None
    agreement: tuple[ClassAgreement, ...] = ()


class Corrections:
    """Store corrections and read them back.

    Args:
        db: the database.
        blobs: where the label maps are kept.
        jobs: where automatic fine-tunes are queued.
        models: which version is in production (a fine-tune needs one).
        limits: the upload limit.
    """

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        jobs: JobService,
        models: ModelPool,
        limits: UploadLimits,
    ) -> None:
        self.db, self.blobs, self.jobs, self.models, self.limits = db, blobs, jobs, models, limits

    def correct(
        self,
        project: ProjectRecord,
        analysis_id: str,
        chunks: Iterable[bytes],
        name: str,
        user_id: str | None,
        effort: CorrectionEffort | None = None,
    ) -> CorrectionResult:
        """Store a corrected label map (an image or a DICOM SEG) for an analysis, with
        what it cost the clinician (``effort``) when the client reports it.

        Raises:
            NotFoundError: no such analysis in the project.
            MaskError: the label map does not fit the image or the labels.
        """
        name = sanitize_filename(name or "mask", "mask")
        with self.db.read() as s:
            analysis = repo.get_analysis(s, analysis_id, project.id)
            image = repo.get_image(s, analysis.image_id, project.id)
        # Decoded from memory, never stored as given: only the canonical form is kept.
        data = read_upload(chunks, self.limits.max_bytes)
        labels = project.settings.label_set
        predicted = self.blobs.read_bytes(analysis.label_blob_key, analysis.label_sha256)
        if sniff_volume(predicted) is not None:
            volume = decode_image(
                self.blobs.read_bytes(image.blob_key, image.sha256),
                name=image.filename,
                max_pixels=self.limits.max_pixels,
            )
            if is_dicom(data):
                seg = read_seg(data, labels, name)
                mask = series_seg_mask(self.blobs, seg, name, image, volume)
            else:
                mask = decode_mask(
                    data, name=name, num_foreground=labels.num_foreground, image=volume
                )
            return self._record(project, analysis, mask, user_id, effort, volume)
        if is_dicom(data):
            mask = seg_for_analysis(data, name or "SEG", labels, image, analysis.frame)
        else:
            mask = decode_mask(
                data,
                name=name,
                num_foreground=labels.num_foreground,
                expected_shape=(image.height, image.width),
            )
        return self._record(project, analysis, mask, user_id, effort)

    def correct_voxels(
        self,
        project: ProjectRecord,
        analysis_id: str,
        chunks: Iterable[bytes],
        user_id: str | None,
        effort: CorrectionEffort | None = None,
    ) -> CorrectionResult:
        """Store a corrected label volume sent in viewer order (gzip'd uint8, see
        :mod:`medloop.services.voxels`) for a volume analysis.

        Raises:
            NotFoundError: no such analysis in the project.
            MaskError: a 2D analysis, or voxels that do not fit the volume or the labels.
        """
        with self.db.read() as s:
            analysis = repo.get_analysis(s, analysis_id, project.id)
            image = repo.get_image(s, analysis.image_id, project.id)
        data = read_upload(chunks, self.limits.max_bytes)
        volume = decode_image(
            self.blobs.read_bytes(image.blob_key, image.sha256),
            name=image.filename,
            max_pixels=self.limits.max_pixels,
        )
        if not volume.is_volume or volume.channels != 1:
            raise MaskError(f"analysis {analysis_id} is not of a single-channel volume")
        shape = (volume.shape[0], volume.shape[1], volume.shape[2])
        labels = read_label_voxels(data, shape, project.settings.label_set.num_foreground)
        return self._record(project, analysis, labels, user_id, effort, volume)

    def correct_from_seg(
        self, project: ProjectRecord, chunks: Iterable[bytes], name: str, user_id: str | None
    ) -> list[CorrectionResult]:
        """Corrections from a DICOM SEG, each matched to its analysis by the instance it references.

        Raises:
            MaskError: not a SEG, or segments that match no project label.
            NotFoundError: the SEG references no analysed instance of the project.
        """
        name = sanitize_filename(name or "seg.dcm", "seg.dcm")
        seg = read_seg(read_upload(chunks, self.limits.max_bytes), project.settings.label_set, name)
        with self.db.read() as s:
            volumes = series_targets(s, project.id, seg)
            targets = [] if volumes else seg_targets(s, project.id, project.name, seg, name)
        if volumes:
            return self._record_volumes(project, seg, name, volumes, user_id)
        return [self._record(project, a, mask, user_id) for a, mask in targets]

    def _record_volumes(
        self,
        project: ProjectRecord,
        seg: SegContent,
        name: str,
        targets: list[tuple[AnalysisRecord, ImageRecord]],
        user_id: str | None,
    ) -> list[CorrectionResult]:
        """Corrections of volume analyses from one SEG of their series: every label volume
        is made (and checked) before the first is stored."""
        masks = []
        for analysis, image in targets:
            volume = decode_image(
                self.blobs.read_bytes(image.blob_key, image.sha256),
                name=image.filename,
                max_pixels=self.limits.max_pixels,
            )
            masks.append((analysis, series_seg_mask(self.blobs, seg, name, image, volume), volume))
        return [self._record(project, a, m, user_id, None, v) for a, m, v in masks]

    def _record(
        self,
        project: ProjectRecord,
        analysis: AnalysisRecord,
        mask: np.ndarray,
        user_id: str | None,
        effort: CorrectionEffort | None = None,
        volume: Image | None = None,
    ) -> CorrectionResult:
        """Store ``mask`` (on ``volume``'s canonical grid when the analysis is of a volume)."""
        from medloop.services.evaluation import per_image_dice

        settings = project.settings
        pred = decode_mask(
            self.blobs.read_bytes(analysis.label_blob_key, analysis.label_sha256),
            name="prediction",
            num_foreground=settings.label_set.num_foreground,
            image=volume,
        )
        encoded = (
            encode_label_map_png(mask) if volume is None else encode_label_volume(mask, volume)
        )
        ref = self.blobs.put_bytes(encoded)
        agreed = tuple(agreement(pred, mask, settings.label_set))
        share = settings.learning.held_out_share
        with self.db.write() as s:
            repo.claim_blobs(s, self.blobs.exists, ref.key)
            row = repo.create_correction(
                s,
                project_id=project.id,
                analysis_id=analysis.id,
                mask_blob_key=ref.key,
                mask_sha256=ref.sha256,
                dice_vs_prediction=per_image_dice(pred, mask),
                author_id=user_id,
                held_out=lambda seq: is_held_out(seq, share),
                effort=effort,
            )
            total = repo.count_corrections(s, project.id)
        every = settings.finetune_every
        if every <= 0:
            return CorrectionResult(row, None, None, agreed)
        job_id = None
        if total % every == 0 and self.models.production(project.id) is not None:
            options = FinetuneOptions(trigger="corrections", corrections=total)
            job_id = self.jobs.submit(project, FinetuneJob(options=options), user_id).id
        return CorrectionResult(row, every - total % every, job_id, agreed)

    def get(self, project_id: str, correction_id: str) -> CorrectionRecord:
        """One correction of the project (``NotFoundError`` otherwise)."""
        with self.db.read() as s:
            return repo.get_correction(s, correction_id, project_id)

    def recent(self, project_id: str, limit: int = 100) -> list[CorrectionRecord]:
        """The project's corrections in arrival order (``limit`` 1..1000)."""
        with self.db.read() as s:
            return repo.list_corrections(s, project_id, limit=min(max(limit, 1), 1000))

    def mask(self, project_id: str, correction_id: str) -> LabelFile:
        """The stored label map, whatever was uploaded: an 8-bit gray PNG (value = label),
        or for a volume a gzipped NIfTI on the analysed volume's grid."""
        correction = self.get(project_id, correction_id)
        data = self.blobs.read_bytes(correction.mask_blob_key, correction.mask_sha256)
        return label_file(data, correction_id)
