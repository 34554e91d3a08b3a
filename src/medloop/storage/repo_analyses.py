"""Analyses, corrections and the review queue.

Every function works inside the caller's session and transaction: it flushes, never
commits. Corrections are numbered per project from 0 (``seq``) in arrival order; the
project row is locked while numbering (PostgreSQL), SQLite serialises writers anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from medloop.domain.records import (
    AnalysisRecord,
    CorrectionEffort,
    CorrectionRecord,
    ImageRecord,
)
from medloop.storage._repo_base import get_or_raise, insert, lock_project, page
from medloop.storage.mapping import analysis_record, correction_record, image_record
from medloop.storage.models import Analysis, Correction, Image, User

__all__ = [
    "corrected_analyses",
    "count_corrections",
    "count_corrections_since",
    "create_analysis",
    "create_correction",
    "get_analysis",
    "get_correction",
    "latest_analysis",
    "list_analyses",
    "list_corrections",
    "next_correction_seq",
    "review_queue",
    "review_queue_size",
]


def create_analysis(
    session: Session,
    *,
    project_id: str,
    image_id: str,
    model_version: str,
    label_blob_key: str,
    label_sha256: str,
    uncertainty: float,
    measurements: list[dict[str, Any]],
    created_by: str | None = None,
    frame: int = 0,
) -> AnalysisRecord:
    """Record model ``model_version``'s result on frame ``frame`` of an image of the project.

    Args:
        measurements: one dict per foreground class.

    Raises:
        NotFoundError: the image is not in this project.
    """
    get_or_raise(session, Image, "image", image_id, project_id)
    row = Analysis(
        project_id=project_id,
        image_id=image_id,
        model_version=model_version,
        label_blob_key=label_blob_key,
        label_sha256=label_sha256,
        uncertainty=float(uncertainty),
        measurements={"classes": list(measurements)},
        created_by=created_by,
        frame=frame,
    )
    return analysis_record(insert(session, row, "analysis conflicts with an existing one"))


def get_analysis(
    session: Session, analysis_id: str, project_id: str | None = None
) -> AnalysisRecord:
    """The analysis ``analysis_id`` (only if in ``project_id``, when given)."""
    return analysis_record(get_or_raise(session, Analysis, "analysis", analysis_id, project_id))


def list_analyses(
    session: Session,
    project_id: str,
    limit: int = 100,
    offset: int = 0,
    image_id: str | None = None,
) -> list[AnalysisRecord]:
    """A project's analyses, newest first; with ``image_id``, only that image's."""
    limit, offset = page(limit, offset)
    query = select(Analysis).where(Analysis.project_id == project_id)
    if image_id is not None:
        query = query.where(Analysis.image_id == image_id)
    query = query.order_by(Analysis.created_at.desc(), Analysis.id).limit(limit).offset(offset)
    return [analysis_record(row) for row in session.scalars(query)]


def latest_analysis(
    session: Session, project_id: str, image_id: str, frame: int
) -> AnalysisRecord | None:
    """The newest analysis of frame ``frame`` of an image, or ``None``."""
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
    row = session.scalars(query).first()
    return None if row is None else analysis_record(row)


def corrected_analyses(session: Session, analysis_ids: Collection[str]) -> set[str]:
    """Which of ``analysis_ids`` have at least one correction (one query)."""
    if not analysis_ids:
        return set()
    query = select(Correction.analysis_id).where(Correction.analysis_id.in_(list(analysis_ids)))
    return {str(a) for a in session.scalars(query.distinct())}


def _uncorrected(project_id: str) -> Select[Analysis, Image]:
    corrected = exists().where(Correction.analysis_id == Analysis.id)
    return (
        select(Analysis, Image)
        .join(Image, Image.id == Analysis.image_id)
        .where(Analysis.project_id == project_id, ~corrected)
    )


def review_queue(
    session: Session, project_id: str, limit: int = 50, offset: int = 0
) -> list[tuple[AnalysisRecord, ImageRecord]]:
    """Analyses with no correction yet, with their images: most uncertain first, then oldest."""
    limit, offset = page(limit, offset)
    query = (
        _uncorrected(project_id)
        .order_by(Analysis.uncertainty.desc(), Analysis.created_at, Analysis.id)
        .limit(limit)
        .offset(offset)
    )
    return [(analysis_record(a), image_record(i)) for a, i in session.execute(query)]


def review_queue_size(session: Session, project_id: str) -> int:
    """How many analyses of the project await a correction."""
    query = select(func.count()).select_from(_uncorrected(project_id).subquery())
    return int(session.scalar(query) or 0)


def next_correction_seq(session: Session, project_id: str) -> int:
    """The ``seq`` the project's next correction gets (0 for the first)."""
    query = select(func.max(Correction.seq)).where(Correction.project_id == project_id)
    current = session.scalar(query)
    return 0 if current is None else int(current) + 1


def create_correction(
    session: Session,
    *,
    project_id: str,
    analysis_id: str,
    mask_blob_key: str,
    mask_sha256: str,
    dice_vs_prediction: float,
    author_id: str | None,
    held_out: bool | Callable[[int], bool] = False,
    effort: CorrectionEffort | None = None,
) -> CorrectionRecord:
    """Record a correction of an analysis as a new immutable row.

    The image and the corrected model version are taken from the analysis.

    Args:
        held_out: whether the correction is kept out of training, or a function of its
            ``seq`` deciding it (e.g. ``lambda s: is_held_out(s, share)``).
        effort: what the correction cost, as the client reported it.

    Raises:
        NotFoundError: the project does not exist or the analysis is not in it.
    """
    lock_project(session, project_id)
    analysis = get_or_raise(session, Analysis, "analysis", analysis_id, project_id)
    seq = next_correction_seq(session, project_id)
    row = Correction(
        project_id=project_id,
        analysis_id=analysis.id,
        image_id=analysis.image_id,
        mask_blob_key=mask_blob_key,
        mask_sha256=mask_sha256,
        seq=seq,
        held_out=bool(held_out(seq) if callable(held_out) else held_out),
        author_id=author_id,
        model_version=analysis.model_version,
        dice_vs_prediction=float(dice_vs_prediction),
        effort=None if effort is None or effort.empty else effort.to_dict(),
    )
    insert(session, row, f"correction number {seq} of project {project_id!r} exists")
    author = None if author_id is None else session.get(User, author_id)
    return correction_record(row, None if author is None else author.name, analysis.frame)


def _corrections() -> Select[Correction, str, int]:
    return (
        select(Correction, User.name, Analysis.frame)
        .join(Analysis, Analysis.id == Correction.analysis_id)
        .outerjoin(User, User.id == Correction.author_id)
    )


def get_correction(
    session: Session, correction_id: str, project_id: str | None = None
) -> CorrectionRecord:
    """The correction ``correction_id`` (only if in ``project_id``, when given)."""
    get_or_raise(session, Correction, "correction", correction_id, project_id)
    row, author, frame = session.execute(_corrections().where(Correction.id == correction_id)).one()
    return correction_record(row, author, frame)


def list_corrections(
    session: Session,
    project_id: str,
    *,
    held_out: bool | None = None,
    analysis_id: str | None = None,
    since_seq: int = 0,
    limit: int | None = None,
) -> list[CorrectionRecord]:
    """A project's corrections in ``seq`` order, optionally filtered.

    Args:
        held_out: only held-out (``True``) or only trainable (``False``) corrections.
        analysis_id: only corrections of this analysis.
        since_seq: only corrections with ``seq >= since_seq``.
        limit: at most this many (``None``: all).
    """
    query = _corrections().where(Correction.project_id == project_id, Correction.seq >= since_seq)
    if held_out is not None:
        query = query.where(Correction.held_out == held_out)
    if analysis_id is not None:
        query = query.where(Correction.analysis_id == analysis_id)
    query = query.order_by(Correction.seq)
    if limit is not None:
        query = query.limit(page(limit, 0)[0])
    return [correction_record(c, a, f) for c, a, f in session.execute(query)]


def count_corrections(session: Session, project_id: str, held_out: bool | None = None) -> int:
    """How many corrections a project has (optionally only held-out or trainable ones)."""
    query = select(func.count()).select_from(Correction).where(Correction.project_id == project_id)
    if held_out is not None:
        query = query.where(Correction.held_out == held_out)
    return int(session.scalar(query) or 0)


def count_corrections_since(session: Session, project_id: str, seq: int) -> int:
    """How many corrections have ``seq >= seq``.

    Keep the :func:`next_correction_seq` value from when the last fine-tune started:
    this counts what arrived since.
    """
    query = (
        select(func.count())
        .select_from(Correction)
        .where(Correction.project_id == project_id, Correction.seq >= seq)
    )
    return int(session.scalar(query) or 0)
