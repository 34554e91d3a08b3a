"""Images, reference pairs, analyses and corrections on the server (blobs + database).

Every upload is streamed into the blob store (hashed, fsynced, renamed), decoded and
validated, and only then recorded; a rejected upload leaves no row, and its blob is
removed unless another row already uses the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medloop.domain.image import Image
from medloop.domain.measurements import measure
from medloop.errors import InputError, NoProductionModel
from medloop.io import decode_mask, encode_label_map_png, read_image
from medloop.registry.corrections import CorrectionRecord, is_held_out
from medloop.services.evaluation import per_image_dice
from medloop.services.server_projects import label_set
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobRef
from medloop.storage.models import Analysis, Correction, Project, ReferencePair
from medloop.storage.models import Image as ImageRow

if TYPE_CHECKING:
    from medloop.runtime import Runtime

__all__ = [
    "DbCorrections",
    "analyze_image",
    "correct_analysis",
    "ingest_image",
    "ingest_reference",
    "load_image",
]


def _discard(rt: Runtime, ref: BlobRef) -> None:
    """Remove a just-stored blob unless a row already references it."""
    with rt.session() as s:
        if ref.key in repo.referenced_blob_keys(s):
            return
    rt.blobs.path(ref.key).unlink(missing_ok=True)


def load_image(rt: Runtime, row: ImageRow) -> Image:
    return read_image(
        rt.blobs.open_verified(row.blob_key, row.sha256), max_pixels=rt.settings.max_image_pixels
    )


def ingest_image(
    rt: Runtime,
    project_id: str,
    chunks: Iterable[bytes],
    filename: str,
    content_type: str,
    user_id: str | None,
) -> tuple[ImageRow, bool]:
    """Store and validate an uploaded image; returns ``(row, created)``."""
    ref = rt.blobs.put_stream(chunks, max_bytes=rt.settings.max_upload_bytes)
    try:
        image = read_image(rt.blobs.path(ref.key), max_pixels=rt.settings.max_image_pixels)
    except InputError as err:
        _discard(rt, ref)
        raise type(err)(
            str(err).replace(str(rt.blobs.path(ref.key)), filename or "upload")
        ) from err
    with rt.session() as s:
        existing = repo.find_image(s, project_id, ref.sha256)
        if existing is not None:
            return existing, False
        row = repo.create_image(
            s,
            project_id=project_id,
            sha256=ref.sha256,
            blob_key=ref.key,
            filename=filename,
            content_type=content_type or "application/octet-stream",
            width=image.width,
            height=image.height,
            channels=image.channels,
            spacing_row_mm=image.spacing[0] if image.spacing else None,
            spacing_col_mm=image.spacing[1] if image.spacing else None,
            meta=json.loads(json.dumps(image.metadata, default=str)),
            created_by=user_id,
        )
        return row, True


def _store_mask(
    rt: Runtime, chunks: Iterable[bytes], name: str, project: Project, shape: tuple[int, int]
) -> tuple[BlobRef, np.ndarray]:
    ref = rt.blobs.put_stream(chunks, max_bytes=rt.settings.max_upload_bytes)
    try:
        mask = decode_mask(
            rt.blobs.read_bytes(ref.key, ref.sha256),
            name=name or "mask",
            num_foreground=label_set(project).num_foreground,
            expected_shape=shape,
        )
    except InputError:
        _discard(rt, ref)
        raise
    # Masks are kept as the canonical label-map PNG (0..K), whatever was uploaded.
    canonical = rt.blobs.put_bytes(encode_label_map_png(mask))
    if canonical.key != ref.key:
        _discard(rt, ref)
    return canonical, mask


def ingest_reference(
    rt: Runtime,
    project: Project,
    image: ImageRow,
    mask_chunks: Iterable[bytes],
    mask_name: str,
    split: str,
) -> ReferencePair:
    ref, _ = _store_mask(rt, mask_chunks, mask_name, project, (image.height, image.width))
    with rt.session() as s:
        return repo.add_reference_pair(
            s,
            project_id=project.id,
            image_id=image.id,
            mask_blob_key=ref.key,
            mask_sha256=ref.sha256,
            split=split,
        )


def analyze_image(
    rt: Runtime, project: Project, image_row: ImageRow, version: str | None, user_id: str | None
) -> Analysis:
    """Run the model (production unless ``version``) on a stored image; blocking (call off the event loop)."""
    if version is None and rt.production_version(project.id) is None:
        raise NoProductionModel(
            f"project {project.name!r} has no model in production yet: train one first"
        )
    name, predictor = rt.predictor(project.id, version)
    image = load_image(rt, image_row)
    pred = rt.batcher().predict(predictor, image)
    png = encode_label_map_png(pred.label_map)
    ref = rt.blobs.put_bytes(png)
    measurements = [
        m.to_dict() for m in measure(pred.label_map, label_set(project), image.pixel_area_mm2)
    ]
    with rt.session() as s:
        return repo.create_analysis(
            s,
            project_id=project.id,
            image_id=image_row.id,
            model_version=name,
            label_blob_key=ref.key,
            label_sha256=ref.sha256,
            uncertainty=pred.uncertainty,
            measurements={"classes": measurements},
            created_by=user_id,
        )


@dataclass(frozen=True)
class CorrectionResult:
    correction: Correction
    until_finetune: int | None
    finetune_job_id: str | None


def correct_analysis(
    rt: Runtime,
    project: Project,
    analysis: Analysis,
    chunks: Iterable[bytes],
    name: str,
    user_id: str | None,
) -> CorrectionResult:
    """Store a corrected label map for ``analysis``; may start an automatic fine-tune."""
    with rt.session() as s:
        image_row = repo.get_image(s, analysis.image_id, project.id)
    ref, mask = _store_mask(rt, chunks, name, project, (image_row.height, image_row.width))
    pred = decode_mask(
        rt.blobs.read_bytes(analysis.label_blob_key, analysis.label_sha256),
        name="prediction",
        num_foreground=label_set(project).num_foreground,
    )
    dice = per_image_dice(pred, mask)
    share = float(project.learning.get("held_out_share", 0.2))
    with rt.session() as s:
        row = repo.create_correction(
            s,
            project_id=project.id,
            analysis_id=analysis.id,
            mask_blob_key=ref.key,
            mask_sha256=ref.sha256,
            dice_vs_prediction=dice,
            author_id=user_id,
            held_out=lambda seq: is_held_out(seq, share),
        )
        total = repo.count_corrections(s, project.id)
    every = int(project.learning.get("finetune_every", 10))
    job_id: str | None = None
    until: int | None = None
    if every > 0:
        # Every N-th correction queues a fine-tune; a queued one absorbs later triggers.
        until = every - total % every
        if total % every == 0 and rt.production_version(project.id) is not None:
            job = rt.queue.enqueue(
                project.id,
                "finetune",
                {"trigger": "corrections", "corrections": total},
                created_by=user_id,
                coalesce=True,
            )
            job_id = job.id
            rt.wake_worker()
    return CorrectionResult(row, until, job_id)


class DbCorrections:
    """The server's corrections as a :class:`~medloop.registry.corrections.CorrectionSource`."""

    def __init__(self, rt: Runtime, project_id: str) -> None:
        self.rt, self.project_id = rt, project_id

    def latest_per_image(self) -> list[CorrectionRecord]:
        with self.rt.session() as s:
            rows = repo.list_corrections(s, self.project_id)
            images = {r.image_id: repo.get_image(s, r.image_id, self.project_id) for r in rows}
        latest: dict[str, CorrectionRecord] = {}
        for r in sorted(rows, key=lambda r: r.seq):
            img = images[r.image_id]
            latest[img.sha256] = CorrectionRecord(
                id=r.id,
                seq=r.seq,
                key=r.id,
                image=str(self.rt.blobs.open_verified(img.blob_key, img.sha256)),
                mask=str(self.rt.blobs.open_verified(r.mask_blob_key, r.mask_sha256)),
                image_sha256=img.sha256,
                mask_sha256=r.mask_sha256,
                held_out=r.held_out,
                author=r.author_id or "system",
                corrects_version=r.model_version,
                created_at=r.created_at.isoformat(),
            )
        return sorted(latest.values(), key=lambda r: r.seq)

    def path(self, rel: str) -> Path:
        return Path(rel)
