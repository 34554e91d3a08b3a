"""Reference image + mask pairs: add, look up, list and count by split and group, delete.

Every function works inside the caller's session and transaction: it flushes, never
commits. The blobs the rows name must be stored before the rows are committed.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from medloop.domain.records import ImageRecord, ReferenceRecord
from medloop.errors import ConflictError
from medloop.storage._repo_base import check_choice, get_or_raise, insert, page
from medloop.storage.mapping import image_record, reference_record
from medloop.storage.models import (
    SPLITS,
    Analysis,
    Correction,
    DicomInstance,
    Image,
    ReferencePair,
)

S = TypeVar("S", bound=Select)

__all__ = [
    "add_reference_pair",
    "count_reference_pairs",
    "delete_reference_pair",
    "existing_pair",
    "get_reference_pair",
    "image_in_use",
    "list_reference_pairs",
    "reference_summary",
]


def add_reference_pair(
    session: Session,
    *,
    project_id: str,
    image_id: str,
    mask_blob_key: str,
    mask_sha256: str,
    split: str = "train",
    group: str | None = None,
) -> ReferenceRecord:
    """Record a reference image + mask pair; idempotent for the same image, mask and split.

    Raises:
        InputError: unknown split.
        NotFoundError: the image is not in this project.
        ConflictError: the image already has a different reference mask or split.
    """
    check_choice("split", split, SPLITS)
    get_or_raise(session, Image, "image", image_id, project_id)
    existing = existing_pair(session, project_id, image_id)
    if existing is not None:
        if existing.mask_sha256 == mask_sha256 and existing.split == split:
            return existing
        raise ConflictError(
            f"image {image_id!r} already has a reference mask in split {existing.split!r}"
        )
    row = ReferencePair(
        project_id=project_id,
        image_id=image_id,
        mask_blob_key=mask_blob_key,
        mask_sha256=mask_sha256,
        split=split,
        group_name=group,
    )
    return reference_record(
        insert(session, row, f"image {image_id!r} already has a reference mask")
    )


def existing_pair(session: Session, project_id: str, image_id: str) -> ReferenceRecord | None:
    """The pair of the project's image ``image_id``, or ``None``."""
    row = session.scalars(
        select(ReferencePair).where(
            ReferencePair.project_id == project_id, ReferencePair.image_id == image_id
        )
    ).one_or_none()
    return None if row is None else reference_record(row)


def get_reference_pair(
    session: Session, pair_id: str, project_id: str | None = None
) -> ReferenceRecord:
    """The reference pair ``pair_id`` (only if in ``project_id``, when given)."""
    return reference_record(
        get_or_raise(session, ReferencePair, "reference pair", pair_id, project_id)
    )


def _filtered(query: S, project_id: str, split: str | None, group: str | None) -> S:
    query = query.where(ReferencePair.project_id == project_id)
    if split is not None:
        query = query.where(ReferencePair.split == check_choice("split", split, SPLITS))
    if group is not None:
        # "" asks for the pairs without a group.
        column = ReferencePair.group_name
        query = query.where(column.is_(None) if group == "" else column == group)
    return query


def list_reference_pairs(
    session: Session,
    project_id: str,
    split: str | None = None,
    group: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[tuple[ReferenceRecord, ImageRecord]]:
    """A project's reference pairs with their images, oldest first.

    ``split`` and ``group`` filter (``group=""``: pairs without a group); ``limit`` pages.
    """
    query = select(ReferencePair, Image).join(Image, Image.id == ReferencePair.image_id)
    query = _filtered(query, project_id, split, group)
    query = query.order_by(ReferencePair.created_at, ReferencePair.id)
    if limit is not None:
        limit, offset = page(limit, offset)
        query = query.limit(limit).offset(offset)
    return [(reference_record(p), image_record(i)) for p, i in session.execute(query)]


def count_reference_pairs(
    session: Session, project_id: str, split: str | None = None, group: str | None = None
) -> int:
    """How many pairs :func:`list_reference_pairs` would list without a limit."""
    query = _filtered(select(func.count()).select_from(ReferencePair), project_id, split, group)
    return int(session.scalar(query) or 0)


def reference_summary(session: Session, project_id: str) -> list[tuple[str, str | None, int]]:
    """``(split, group, count)`` of a project's pairs, by split then group."""
    query = (
        select(ReferencePair.split, ReferencePair.group_name, func.count())
        .where(ReferencePair.project_id == project_id)
        .group_by(ReferencePair.split, ReferencePair.group_name)
    )
    rows = [(str(sp), None if g is None else str(g), int(n)) for sp, g, n in session.execute(query)]
    order = {name: i for i, name in enumerate(SPLITS)}
    return sorted(rows, key=lambda r: (order.get(r[0], 9), r[1] or ""))


def image_in_use(session: Session, image_id: str) -> bool:
    """Whether anything but a reference pair points to the image (analyses, corrections,
    the DICOMweb ledger)."""
    for model in (Analysis, Correction, DicomInstance):
        if session.scalar(select(exists().where(model.image_id == image_id))):
            return True
    return False


def delete_reference_pair(
    session: Session, project_id: str, pair_id: str
) -> tuple[ReferenceRecord, ImageRecord | None]:
    """Delete a pair, and its image when nothing else uses it.

    Returns:
        The deleted pair, and the deleted image (``None`` when it is kept).
    """
    row = get_or_raise(session, ReferencePair, "reference pair", pair_id, project_id)
    pair = reference_record(row)
    session.delete(row)
    session.flush()
    if image_in_use(session, pair.image_id):
        return pair, None
    image = get_or_raise(session, Image, "image", pair.image_id, project_id)
    removed = image_record(image)
    session.delete(image)
    session.flush()
    return pair, removed
