"""Erasure records, what an erasure targets, and the deletion of an erased image's rows.

Every function works inside the caller's session and transaction: it flushes, never
commits. Blobs are removed by the caller afterwards (see :mod:`medloop.storage.repo_blobs`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from medloop.domain.records import ErasureRecord, ImageRecord
from medloop.storage._repo_base import check_choice, get_or_raise
from medloop.storage.mapping import erasure_record, image_record
from medloop.storage.models import (
    ERASURE_SCOPES,
    Analysis,
    Correction,
    DicomInstance,
    ErasedItem,
    Erasure,
    Image,
    Pseudonym,
    ReferencePair,
    utcnow,
)

__all__ = [
    "ErasedRows",
    "create_erasure",
    "describe_images",
    "dicom_images_lacking",
    "erase_images",
    "erased_items",
    "finish_erasure",
    "get_erasure",
    "images_by_meta",
    "list_erasures",
    "pending_value",
    "pseudonyms_of",
    "remove_pseudonyms",
    "set_erasure_job",
]


@dataclass
class ErasedRows:
    """What :func:`erase_images` deleted: counts by kind and the blobs it freed."""

    counts: dict[str, int] = field(default_factory=dict)
    blob_keys: set[str] = field(default_factory=set)


def create_erasure(
    session: Session,
    *,
    project_id: str,
    scope: str,
    value: str,
    value_sha256: str,
    reason: str,
    actor_name: str,
    actor_id: str | None,
) -> ErasureRecord:
    """Record an erasure to carry out; ``value`` is kept only until it is done."""
    check_choice("scope", scope, ERASURE_SCOPES)
    row = Erasure(
        project_id=project_id,
        scope=scope,
        value_sha256=value_sha256,
        pending_value=value,
        reason=reason,
        actor_name=actor_name,
        actor_id=actor_id,
        state="queued",
        counts={},
    )
    session.add(row)
    session.flush()
    return erasure_record(row)


def set_erasure_job(session: Session, erasure_id: str, job_id: str) -> None:
    """Link the erasure to the job that carries it out."""
    get_or_raise(session, Erasure, "erasure", erasure_id).job_id = job_id
    session.flush()


def get_erasure(session: Session, erasure_id: str, project_id: str | None = None) -> ErasureRecord:
    """The erasure ``erasure_id`` (only if in ``project_id``, when given)."""
    return erasure_record(get_or_raise(session, Erasure, "erasure", erasure_id, project_id))


def pending_value(session: Session, erasure_id: str) -> str | None:
    """The identifier an unfinished erasure removes (``None`` once done)."""
    return get_or_raise(session, Erasure, "erasure", erasure_id).pending_value


def list_erasures(session: Session, project_id: str, limit: int = 100) -> list[ErasureRecord]:
    """A project's erasures, newest first."""
    query = (
        select(Erasure)
        .where(Erasure.project_id == project_id)
        .order_by(Erasure.created_at.desc(), Erasure.id)
        .limit(max(1, min(limit, 1000)))
    )
    return [erasure_record(row) for row in session.scalars(query)]


def finish_erasure(
    session: Session, erasure_id: str, state: str, counts: dict[str, int]
) -> ErasureRecord:
    """Mark the erasure done (or failed) and forget the identifier it erased."""
    row = get_or_raise(session, Erasure, "erasure", erasure_id)
    row.state, row.counts, row.finished_at = state, dict(counts), utcnow()
    if state == "done":
        row.pending_value = None
    session.flush()
    return erasure_record(row)


def pseudonyms_of(session: Session, project_id: str, kind: str, original: str) -> list[str]:
    """The pseudonyms de-identification gave ``original`` (a patient id, a UID) in the project."""
    query = select(Pseudonym.pseudonym).where(
        Pseudonym.project_id == project_id,
        Pseudonym.kind == kind,
        Pseudonym.original == original,
    )
    return [str(p) for p in session.scalars(query)]


def remove_pseudonyms(
    session: Session, project_id: str, kinds: Collection[str], pseudonyms: Collection[str]
) -> int:
    """Delete the map's entries of ``kinds`` whose pseudonym is one of ``pseudonyms``."""
    if not pseudonyms:
        return 0
    result = session.execute(
        delete(Pseudonym).where(
            Pseudonym.project_id == project_id,
            Pseudonym.kind.in_(list(kinds)),
            Pseudonym.pseudonym.in_(list(pseudonyms)),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def images_by_meta(
    session: Session, project_id: str, key: str, values: Collection[str]
) -> list[ImageRecord]:
    """The project's images whose metadata ``key`` (e.g. ``PatientID``) is one of ``values``."""
    if not values:
        return []
    column = Image.meta[key].as_string()
    query = select(Image).where(Image.project_id == project_id, column.in_(list(values)))
    return [image_record(row) for row in session.scalars(query.order_by(Image.created_at))]


def dicom_images_lacking(session: Session, project_id: str, key: str) -> list[ImageRecord]:
    """The project's DICOM images whose metadata has no ``key`` (stored by older versions)."""
    query = select(Image).where(
        Image.project_id == project_id,
        Image.meta["TransferSyntaxUID"].as_string().is_not(None),
        Image.meta[key].as_string().is_(None),
    )
    return [image_record(row) for row in session.scalars(query)]


def describe_images(
    session: Session, project_id: str, image_ids: Collection[str]
) -> dict[str, list[str]]:
    """The ids of the rows erasing ``image_ids`` would delete, by kind (see :func:`erase_images`)."""
    ids = list(image_ids)
    analyses = [
        str(a)
        for a in session.scalars(
            select(Analysis.id).where(Analysis.project_id == project_id, Analysis.image_id.in_(ids))
        )
    ]
    corrections = session.scalars(
        select(Correction.id).where(
            Correction.project_id == project_id,
            or_(Correction.image_id.in_(ids), Correction.analysis_id.in_(analyses)),
        )
    )
    pairs = session.scalars(
        select(ReferencePair.id).where(
            ReferencePair.project_id == project_id, ReferencePair.image_id.in_(ids)
        )
    )
    return {
        "image": ids,
        "reference": [str(x) for x in pairs],
        "analysis": analyses,
        "correction": [str(x) for x in corrections],
    }


def _record(
    session: Session, erasure_id: str, project_id: str, kind: str, items: Iterable[tuple[str, str]]
) -> int:
    rows = [
        ErasedItem(erasure_id=erasure_id, project_id=project_id, kind=kind, item_id=i, sha256=h)
        for i, h in items
    ]
    session.add_all(rows)
    return len(rows)


def erase_images(
    session: Session, erasure_id: str, project_id: str, image_ids: Collection[str]
) -> ErasedRows:
    """Delete the images and every row derived from them; keep only ids and sha256.

    Deleted: the images (with a DICOM volume's source headers and the viewer's copies),
    their reference pairs, analyses (with theirs) and corrections. The DICOMweb
    ledger keeps its entries (so the instances are never fetched again) without the
    image. Each deleted row is recorded as an :class:`ErasedItem`.
    """
    out = ErasedRows()
    ids = list(image_ids)
    if not ids:
        return out
    images = list(
        session.scalars(select(Image).where(Image.project_id == project_id, Image.id.in_(ids)))
    )
    ids = [i.id for i in images]
    pairs = list(session.scalars(select(ReferencePair).where(ReferencePair.image_id.in_(ids))))
    analyses = list(session.scalars(select(Analysis).where(Analysis.image_id.in_(ids))))
    analysis_ids = [a.id for a in analyses]
    corrections = list(
        session.scalars(
            select(Correction).where(
                or_(Correction.image_id.in_(ids), Correction.analysis_id.in_(analysis_ids))
            )
        )
    )
    kinds: list[tuple[str, list[Any], str, str]] = [
        ("correction", corrections, "mask_sha256", "mask_blob_key"),
        ("analysis", analyses, "label_sha256", "label_blob_key"),
        ("reference", pairs, "mask_sha256", "mask_blob_key"),
        ("image", images, "sha256", "blob_key"),
    ]
    for kind, rows, sha, key in kinds:
        out.counts[kind] = _record(
            session, erasure_id, project_id, kind, ((r.id, getattr(r, sha)) for r in rows)
        )
        out.blob_keys.update(getattr(r, key) for r in rows)
    out.blob_keys.update(i.headers_blob_key for i in images if i.headers_blob_key)
    out.blob_keys.update(i.viewer_blob_key for i in images if i.viewer_blob_key)
    out.blob_keys.update(a.viewer_blob_key for a in analyses if a.viewer_blob_key)
    session.execute(
        update(DicomInstance)
        .where(DicomInstance.image_id.in_(ids))
        .values(image_id=None, state="skipped", last_error="erased", detail={})
    )
    for model, rows in ((Correction, corrections), (Analysis, analyses)):
        if rows:
            session.execute(delete(model).where(model.id.in_([r.id for r in rows])))
    session.execute(delete(ReferencePair).where(ReferencePair.image_id.in_(ids)))
    session.execute(delete(Image).where(Image.id.in_(ids)))
    session.flush()
    return out


def erased_items(
    session: Session, project_id: str, erasure_id: str | None = None
) -> list[tuple[str, str, str]]:
    """``(kind, item_id, sha256)`` of what the project's erasures (or one) removed."""
    query = select(ErasedItem.kind, ErasedItem.item_id, ErasedItem.sha256).where(
        ErasedItem.project_id == project_id
    )
    if erasure_id is not None:
        query = query.where(ErasedItem.erasure_id == erasure_id)
    return [(str(k), str(i), str(h)) for k, i, h in session.execute(query)]
