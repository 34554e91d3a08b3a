"""Images, reference pairs, analyses and corrections on the server (blobs + database).

Every upload is streamed into the blob store (hashed, fsynced, renamed), decoded and
validated, and only then recorded; a rejected upload leaves no row, and its blob is
removed unless another row already uses the same bytes.

A multi-frame DICOM image is one image row (``frames``) with one analysis per frame
(``frame``). Corrections come as label-map images or as DICOM SEG, matched to the
analysed instance by its SOP Instance UID.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from medloop.domain.image import Image
from medloop.domain.measurements import measure
from medloop.errors import InputError, MaskError, NoProductionModel, NotFoundError
from medloop.io import decode_image, decode_mask, encode_label_map_png, read_image
from medloop.io.atomic import sha256_file
from medloop.io.images import dicom_frames
from medloop.registry.corrections import CorrectionRecord, is_held_out
from medloop.services.evaluation import per_image_dice
from medloop.services.server_projects import label_set
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobRef, UploadTooLarge
from medloop.storage.models import Analysis, Correction, Project, ReferencePair
from medloop.storage.models import Image as ImageRow

if TYPE_CHECKING:
    from medloop.runtime import Runtime

__all__ = [
    "CorrectionResult",
    "DbCorrections",
    "analyze_frames",
    "analyze_image",
    "correct_analysis",
    "correct_from_seg",
    "find_images_by_sop_uid",
    "ingest_image",
    "ingest_reference",
    "load_image",
    "read_upload",
]


def load_image(rt: Runtime, row: ImageRow, frame: int = 0) -> Image:
    """A stored image's pixels (frame ``frame`` of a multi-frame image)."""
    return read_image(
        rt.blobs.open_verified(row.blob_key, row.sha256),
        max_pixels=rt.settings.max_image_pixels,
        frame=frame,
    )


def _deidentify_settings(rt: Runtime, project_id: str) -> str | None:
    """The project's de-identification key when it de-identifies DICOM on ingest."""
    from medloop.domain.dicom import DicomSettings

    with rt.session() as s:
        raw = repo.get_project(s, project_id).dicom
    settings = DicomSettings.load(raw)
    return settings.deidentify.key if settings.deidentify.enabled else None


def _deidentified_copy(
    rt: Runtime, path: Path, key: str
) -> tuple[BlobRef, list[tuple[str, str, str]]]:
    """Store a de-identified copy of the DICOM file at ``path``; returns it and the pseudonyms."""
    import pydicom

    from medloop.dicom.deid import Deidentifier
    from medloop.dicom.seg import encode_dataset

    ds = pydicom.dcmread(path)
    entries = Deidentifier(key).apply(ds)
    return rt.blobs.put_bytes(encode_dataset(ds)), entries


def ingest_image(
    rt: Runtime,
    project_id: str,
    chunks: Iterable[bytes],
    filename: str,
    content_type: str,
    user_id: str | None,
) -> tuple[ImageRow, bool]:
    """Store and validate an uploaded image; returns ``(row, created)``.

    When the project de-identifies on ingest, a DICOM upload is de-identified (Basic
    Profile, keyed pseudonyms) before its row is written; the original bytes are not
    kept, the file name becomes the pseudonymous SOP Instance UID, and the pseudonyms
    go to the project's pseudonym map.
    """
    entries: list[tuple[str, str, str]] = []
    # Validated while still private: a rejected upload never enters the shared store,
    # and with de-identification on ingest the original bytes never do either.
    with rt.blobs.staged(chunks, max_bytes=rt.settings.max_upload_bytes) as staged:
        try:
            image = read_image(staged.path, max_pixels=rt.settings.max_image_pixels)
            frames = dicom_frames(staged.path)
        except InputError as err:
            raise type(err)(str(err).replace(str(staged.path), filename or "upload")) from err
        key = _deidentify_settings(rt, project_id) if image.source_format == "dicom" else None
        if key is not None:
            ref, entries = _deidentified_copy(rt, staged.path, key)
            image = read_image(rt.blobs.path(ref.key), max_pixels=rt.settings.max_image_pixels)
            filename = f"{image.metadata.get('SOPInstanceUID', 'image')}.dcm"
        else:
            ref = staged.commit()
    with rt.session() as s:
        if entries:
            from medloop.storage import repo_dicom

            repo_dicom.add_pseudonyms(s, project_id, entries)
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
        row.frames = frames
        s.flush()
        return row, True


def read_upload(chunks: Iterable[bytes], max_bytes: int) -> bytes:
    """An upload's bytes, refused as soon as they pass ``max_bytes``."""
    buf = bytearray()
    for chunk in chunks:
        if len(buf) + len(chunk) > max_bytes:
            raise UploadTooLarge(f"upload exceeds the limit of {max_bytes} bytes")
        buf += chunk
    return bytes(buf)


def _store_mask(
    rt: Runtime, chunks: Iterable[bytes], name: str, project: Project, shape: tuple[int, int]
) -> tuple[BlobRef, np.ndarray]:
    # The upload is decoded from memory and never stored as a blob of its own: removing
    # a rejected or non-canonical upload from the shared, content-addressed store pulled
    # it from under concurrent requests that had stored the same bytes (a 500 "blob ...
    # is missing", or an image row left pointing at a deleted blob).
    raw = read_upload(chunks, rt.settings.max_upload_bytes)
    mask = decode_mask(
        raw,
        name=name or "mask",
        num_foreground=label_set(project).num_foreground,
        expected_shape=shape,
    )
    # Masks are kept as the canonical label-map PNG (0..K), whatever was uploaded.
    return rt.blobs.put_bytes(encode_label_map_png(mask)), mask


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
    rt: Runtime,
    project: Project,
    image_row: ImageRow,
    version: str | None,
    user_id: str | None,
    frame: int | None = None,
) -> Analysis:
    """Run the model (production unless ``version``) on a stored image; blocking (call off the event loop).

    Without ``frame``, a multi-frame image has every frame analysed (one analysis
    each) and frame 0's analysis is returned; see :func:`analyze_frames`.
    """
    return analyze_frames(
        rt, project, image_row, version, user_id, None if frame is None else [frame]
    )[0]


def analyze_frames(
    rt: Runtime,
    project: Project,
    image_row: ImageRow,
    version: str | None,
    user_id: str | None,
    frames: Sequence[int] | None = None,
) -> list[Analysis]:
    """Analyse frames of a stored image with one model version; one analysis per frame.

    The file is read once and decoded a frame at a time; the analyses are recorded
    together, so either every frame has its analysis or none has.

    Args:
        frames: which frames (from 0); default all of them.

    Returns:
        The analyses, in the order of ``frames``.

    Raises:
        NoProductionModel: no ``version`` given and nothing in production.
        ImageReadError: a frame the image does not have.
    """
    if version is None and rt.production_version(project.id) is None:
        raise NoProductionModel(
            f"project {project.name!r} has no model in production yet: train one first"
        )
    wanted = list(range(max(1, image_row.frames))) if frames is None else list(frames)
    name, predictor = rt.predictor(project.id, version)
    data = rt.blobs.read_bytes(image_row.blob_key, image_row.sha256)
    labels = label_set(project)
    results = []
    for frame in wanted:
        image = decode_image(
            data,
            name=image_row.filename,
            max_pixels=rt.settings.max_image_pixels,
            frame=frame,
        )
        pred = rt.batcher().predict(predictor, image)
        ref = rt.blobs.put_bytes(encode_label_map_png(pred.label_map))
        measurements = [m.to_dict() for m in measure(pred.label_map, labels, image.pixel_area_mm2)]
        results.append((frame, ref, pred.uncertainty, measurements))
    rows = []
    with rt.session() as s:
        for frame, ref, uncertainty, measurements in results:
            row = repo.create_analysis(
                s,
                project_id=project.id,
                image_id=image_row.id,
                model_version=name,
                label_blob_key=ref.key,
                label_sha256=ref.sha256,
                uncertainty=uncertainty,
                measurements={"classes": measurements},
                created_by=user_id,
            )
            row.frame = frame
            rows.append(row)
        s.flush()
    return rows


@dataclass(frozen=True)
class CorrectionResult:
    correction: Correction
    until_finetune: int | None
    finetune_job_id: str | None


def _seg_label_map(
    data: bytes, name: str, project: Project, image_row: ImageRow, frame: int
) -> np.ndarray:
    from medloop.dicom.seg import read_seg

    sop_uid = str((image_row.meta or {}).get("SOPInstanceUID") or "")
    if not sop_uid:
        raise MaskError(
            f"{name}: a DICOM SEG corrects a DICOM image; image {image_row.filename!r} "
            "has no SOP Instance UID"
        )
    seg = read_seg(data, label_set(project), name)
    if sop_uid not in seg.references:
        raise MaskError(
            f"{name}: the SEG does not reference instance {sop_uid} (the analysed image); "
            f"it references {', '.join(sorted(seg.references)) or 'nothing'}"
        )
    if (seg.rows, seg.columns) != (image_row.height, image_row.width):
        raise MaskError(
            f"{name}: SEG frames are {seg.columns}x{seg.rows}, "
            f"the image is {image_row.width}x{image_row.height}"
        )
    return seg.label_map(sop_uid, frame, max(1, image_row.frames))


def _is_dicom(data: bytes) -> bool:
    return len(data) >= 132 and data[128:132] == b"DICM"


def _store_correction_mask(
    rt: Runtime,
    chunks: Iterable[bytes],
    name: str,
    project: Project,
    image_row: ImageRow,
    frame: int,
) -> tuple[BlobRef, np.ndarray]:
    """Store a correction given as a label-map image or a DICOM SEG, as a canonical PNG."""
    # Read into memory, not stored as a blob: see _store_mask.
    data = read_upload(chunks, rt.settings.max_upload_bytes)
    if not _is_dicom(data):
        return _store_mask(rt, (data,), name, project, (image_row.height, image_row.width))
    mask = _seg_label_map(data, name or "SEG", project, image_row, frame)
    return rt.blobs.put_bytes(encode_label_map_png(mask)), mask


def correct_analysis(
    rt: Runtime,
    project: Project,
    analysis: Analysis,
    chunks: Iterable[bytes],
    name: str,
    user_id: str | None,
) -> CorrectionResult:
    """Store a corrected label map for ``analysis``; may start an automatic fine-tune.

    The correction is a label-map image, or a DICOM SEG that references the analysed
    instance (the analysed frame's pixels are taken from it).
    """
    with rt.session() as s:
        image_row = repo.get_image(s, analysis.image_id, project.id)
    ref, mask = _store_correction_mask(rt, chunks, name, project, image_row, analysis.frame)
    return _record_correction(rt, project, analysis, ref, mask, user_id)


def find_images_by_sop_uid(rt: Runtime, project_id: str, sop_uid: str) -> list[ImageRow]:
    """The project's images whose DICOM SOP Instance UID is ``sop_uid`` (oldest first)."""
    with rt.session() as s:
        query = (
            select(ImageRow)
            .where(
                ImageRow.project_id == project_id,
                ImageRow.meta["SOPInstanceUID"].as_string() == sop_uid,
            )
            .order_by(ImageRow.created_at, ImageRow.id)
        )
        return list(s.scalars(query))


def _latest_analysis(rt: Runtime, project_id: str, image_id: str, frame: int) -> Analysis | None:
    with rt.session() as s:
        query = (
            select(Analysis)
            .where(
                Analysis.project_id == project_id,
                Analysis.image_id == image_id,
                Analysis.frame == frame,
            )
            .order_by(Analysis.created_at.desc(), Analysis.id)
            .limit(1)
        )
        return s.scalars(query).first()


def correct_from_seg(
    rt: Runtime, project: Project, data: bytes, name: str, user_id: str | None
) -> list[CorrectionResult]:
    """Corrections from a DICOM SEG, each matched to its analysis through the referenced instance.

    Every frame the SEG segments, of every instance it references that the project
    holds, corrects the latest analysis of that frame. A referenced single-frame
    instance without segmented pixels corrects its analysis to empty.

    Raises:
        MaskError: not a SEG, or segments that match no project label.
        NotFoundError: the SEG references no analysed instance of the project.
    """
    from medloop.dicom.seg import read_seg

    seg = read_seg(data, label_set(project), name)
    targets: list[tuple[Analysis, ImageRow]] = []
    for sop_uid, seg_frames in sorted(seg.references.items()):
        for image_row in find_images_by_sop_uid(rt, project.id, sop_uid):
            frames = seg_frames if seg_frames or image_row.frames > 1 else frozenset({0})
            for frame in sorted(frames):
                analysis = _latest_analysis(rt, project.id, image_row.id, frame)
                if analysis is not None:
                    targets.append((analysis, image_row))
    if not targets:
        raise NotFoundError(
            f"{name}: the SEG references no analysed instance of project {project.name!r} "
            f"(it references {', '.join(sorted(seg.references)) or 'nothing'})"
        )
    results = []
    for analysis, image_row in targets:
        if (seg.rows, seg.columns) != (image_row.height, image_row.width):
            raise MaskError(
                f"{name}: SEG frames are {seg.columns}x{seg.rows}, "
                f"the image is {image_row.width}x{image_row.height}"
            )
        sop_uid = str(image_row.meta["SOPInstanceUID"])
        mask = seg.label_map(sop_uid, analysis.frame, max(1, image_row.frames))
        ref = rt.blobs.put_bytes(encode_label_map_png(mask))
        results.append(_record_correction(rt, project, analysis, ref, mask, user_id))
    return results


def _record_correction(
    rt: Runtime,
    project: Project,
    analysis: Analysis,
    ref: BlobRef,
    mask: np.ndarray,
    user_id: str | None,
) -> CorrectionResult:
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


def _frame_file(rt: Runtime, img: ImageRow, frame: int) -> Path:
    """Frame ``frame`` of a multi-frame image as its own TIFF (written once), for training."""
    import tifffile

    folder = rt.data_dir / "frames" / img.sha256[:2]
    path = folder / f"{img.sha256}.{frame}.tiff"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    pixels = load_image(rt, img, frame).pixels
    tmp = folder / f".{path.name}.{uuid.uuid4().hex}.tmp"
    photometric = "rgb" if pixels.shape[2] == 3 else "minisblack"
    tifffile.imwrite(
        tmp, pixels if pixels.shape[2] == 3 else pixels[:, :, 0], photometric=photometric
    )
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


class DbCorrections:
    """The server's corrections as a :class:`~medloop.registry.corrections.CorrectionSource`.

    The latest correction per image (per frame, for multi-frame images) counts; a frame
    of a multi-frame image is handed to training as a TIFF of its own.
    """

    def __init__(self, rt: Runtime, project_id: str) -> None:
        self.rt, self.project_id = rt, project_id

    def latest_per_image(self) -> list[CorrectionRecord]:
        with self.rt.session() as s:
            rows = repo.list_corrections(s, self.project_id)
            images = {r.image_id: repo.get_image(s, r.image_id, self.project_id) for r in rows}
            frames = {
                a.id: a.frame
                for a in s.scalars(
                    select(Analysis).where(Analysis.id.in_({r.analysis_id for r in rows}))
                )
            }
        latest: dict[tuple[str, int], CorrectionRecord] = {}
        for r in sorted(rows, key=lambda r: r.seq):
            img = images[r.image_id]
            frame = frames.get(r.analysis_id, 0)
            if img.frames > 1:
                path = _frame_file(self.rt, img, frame)
                image, image_sha = str(path), sha256_file(path)
            else:
                image = str(self.rt.blobs.open_verified(img.blob_key, img.sha256))
                image_sha = img.sha256
            latest[(img.sha256, frame)] = CorrectionRecord(
                id=r.id,
                seq=r.seq,
                key=r.id,
                image=image,
                mask=str(self.rt.blobs.open_verified(r.mask_blob_key, r.mask_sha256)),
                image_sha256=image_sha,
                mask_sha256=r.mask_sha256,
                held_out=r.held_out,
                author=r.author_id or "system",
                corrects_version=r.model_version,
                created_at=r.created_at.isoformat(),
            )
        return sorted(latest.values(), key=lambda r: r.seq)

    def path(self, rel: str) -> Path:
        return Path(rel)
