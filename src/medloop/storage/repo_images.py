"""Images (content-addressed per project) and reference image + mask pairs.

Every function works inside the caller's session and transaction: it flushes, never
commits. The blob must be stored (``BlobStore.put_*``) before the row is committed.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medloop.errors import ConflictError
from medloop.storage._repo_base import check_choice, get_or_raise, insert, page
from medloop.storage.models import SPLITS, Image, ReferencePair

__all__ = [
    "add_reference_pair",
    "count_images",
    "create_image",
    "find_image",
    "get_image",
    "get_reference_pair",
    "list_images",
    "list_reference_pairs",
    "sanitize_filename",
]

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


def sanitize_filename(name: str, default: str = "upload") -> str:
    """A display-safe file name: last path component, no control characters, ≤ 255 chars.

    The name is only ever shown, never used as a path (blobs are named by hash);
    rejecting bad names with a message is the interface's job.
    """
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".")
    return (name or default)[:255]


def find_image(session: Session, project_id: str, sha256: str) -> Image | None:
    """The project's image with these bytes, or ``None``."""
    return session.scalars(
        select(Image).where(Image.project_id == project_id, Image.sha256 == sha256)
    ).one_or_none()


def create_image(
    session: Session,
    *,
    project_id: str,
    sha256: str,
    blob_key: str,
    filename: str,
    content_type: str,
    width: int,
    height: int,
    channels: int,
    spacing_row_mm: float | None = None,
    spacing_col_mm: float | None = None,
    meta: dict[str, Any] | None = None,
    created_by: str | None = None,
) -> Image:
    """Record an image; idempotent: the same bytes in the same project give the existing row.

    Returns:
        The new image, or the project's existing image with this ``sha256`` (compare
        ``image.created_by``/``created_at`` or call :func:`find_image` first to tell).
    """
    existing = find_image(session, project_id, sha256)
    if existing is not None:
        return existing
    row = Image(
        project_id=project_id,
        sha256=sha256,
        blob_key=blob_key,
        filename=sanitize_filename(filename),
        content_type=content_type,
        width=width,
        height=height,
        channels=channels,
        spacing_row_mm=spacing_row_mm,
        spacing_col_mm=spacing_col_mm,
        meta=dict(meta or {}),
        created_by=created_by,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Another transaction stored the same bytes first (PostgreSQL): use its row.
        existing = find_image(session, project_id, sha256)
        if existing is None:
            raise
        return existing
    return row


def get_image(session: Session, image_id: str, project_id: str | None = None) -> Image:
    """The image ``image_id`` (only if in ``project_id``, when given)."""
    return get_or_raise(session, Image, "image", image_id, project_id)


def list_images(
    session: Session, project_id: str, limit: int = 100, offset: int = 0
) -> list[Image]:
    """A project's images, newest first."""
    limit, offset = page(limit, offset)
    query = (
        select(Image)
        .where(Image.project_id == project_id)
        .order_by(Image.created_at.desc(), Image.id)
        .limit(limit)
        .offset(offset)
    )
    return list(session.scalars(query))


def count_images(session: Session, project_id: str) -> int:
    """How many images a project has."""
    query = select(func.count()).select_from(Image).where(Image.project_id == project_id)
    return int(session.scalar(query) or 0)


def add_reference_pair(
    session: Session,
    *,
    project_id: str,
    image_id: str,
    mask_blob_key: str,
    mask_sha256: str,
    split: str = "train",
) -> ReferencePair:
    """Record a reference image + mask pair; idempotent for the same image, mask and split.

    Raises:
        InputError: unknown split.
        NotFoundError: the image is not in this project.
        ConflictError: the image already has a different reference mask or split.
    """
    check_choice("split", split, SPLITS)
    get_image(session, image_id, project_id)
    existing = session.scalars(
        select(ReferencePair).where(
            ReferencePair.project_id == project_id, ReferencePair.image_id == image_id
        )
    ).one_or_none()
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
    )
    return insert(session, row, f"image {image_id!r} already has a reference mask")


def get_reference_pair(
    session: Session, pair_id: str, project_id: str | None = None
) -> ReferencePair:
    """The reference pair ``pair_id`` (only if in ``project_id``, when given)."""
    return get_or_raise(session, ReferencePair, "reference pair", pair_id, project_id)


def list_reference_pairs(
    session: Session, project_id: str, split: str | None = None
) -> list[ReferencePair]:
    """A project's reference pairs, oldest first; with ``split``, only that split."""
    query = select(ReferencePair).where(ReferencePair.project_id == project_id)
    if split is not None:
        query = query.where(ReferencePair.split == check_choice("split", split, SPLITS))
    return list(session.scalars(query.order_by(ReferencePair.created_at, ReferencePair.id)))
