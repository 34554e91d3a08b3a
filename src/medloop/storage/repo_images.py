"""Images, content-addressed per project (reference pairs: :mod:`medloop.storage.repo_reference`).

Every function works inside the caller's session and transaction: it flushes, never
commits. The blob must be stored (``BlobStore.put_*``) before the row is committed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medloop.domain.records import ImageRecord
from medloop.storage._repo_base import get_or_raise, page
from medloop.storage.mapping import image_record
from medloop.storage.models import Image

__all__ = [
    "count_images",
    "create_image",
    "find_image",
    "find_images_by_sop_uid",
    "get_image",
    "get_images",
    "list_images",
    "sanitize_filename",
]

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Unicode categories replaced in file names: controls, format characters (the bidi
overrides U+202A..U+202E and isolates U+2066..U+2069 that make ``evil\u202egnp.exe``
display as ``evilexe.png``, zero-width characters), surrogates, line separators."""


def sanitize_filename(name: str, default: str = "upload") -> str:
    """A display-safe file name: last path component, no control, format (bidi override,
    zero-width) or separator characters, ≤ 255 chars.

    The name is only ever shown, never used as a path (blobs are named by hash);
    rejecting bad names with a message is the interface's job.
    """
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name)
    name = "".join("_" if unicodedata.category(c) in _INVISIBLE else c for c in name)
    name = name.strip().lstrip(".")
    return (name or default)[:255]


def _find(session: Session, project_id: str, sha256: str) -> Image | None:
    return session.scalars(
        select(Image).where(Image.project_id == project_id, Image.sha256 == sha256)
    ).one_or_none()


def find_image(session: Session, project_id: str, sha256: str) -> ImageRecord | None:
    """The project's image with these bytes, or ``None``."""
    row = _find(session, project_id, sha256)
    return None if row is None else image_record(row)


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
    spacing_mm: tuple[float, float] | None = None,
    meta: dict[str, Any] | None = None,
    created_by: str | None = None,
    frames: int = 1,
    headers: tuple[str, str] | None = None,
) -> tuple[ImageRecord, bool]:
    """Record an image; idempotent: the same bytes in the same project give the existing row.

    ``headers``: ``(blob key, sha256)`` of a DICOM volume's source headers.

    Returns:
        The image and whether it is new (``False``: the project already had these bytes).
    """
    existing = _find(session, project_id, sha256)
    if existing is not None:
        if headers is not None and existing.headers_blob_key is None:
            existing.headers_blob_key, existing.headers_sha256 = headers
            session.flush()
        return image_record(existing), False
    row = Image(
        project_id=project_id,
        sha256=sha256,
        blob_key=blob_key,
        filename=sanitize_filename(filename),
        content_type=content_type,
        width=width,
        height=height,
        channels=channels,
        spacing_row_mm=None if spacing_mm is None else spacing_mm[0],
        spacing_col_mm=None if spacing_mm is None else spacing_mm[1],
        meta=dict(meta or {}),
        created_by=created_by,
        frames=max(1, frames),
        headers_blob_key=None if headers is None else headers[0],
        headers_sha256=None if headers is None else headers[1],
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Another transaction stored the same bytes first (PostgreSQL): use its row.
        existing = _find(session, project_id, sha256)
        if existing is None:
            raise
        return image_record(existing), False
    return image_record(row), True


def get_image(session: Session, image_id: str, project_id: str | None = None) -> ImageRecord:
    """The image ``image_id`` (only if in ``project_id``, when given)."""
    return image_record(get_or_raise(session, Image, "image", image_id, project_id))


def get_images(
    session: Session, project_id: str, image_ids: Collection[str]
) -> dict[str, ImageRecord]:
    """The project's images among ``image_ids``, by id (unknown ids are left out)."""
    if not image_ids:
        return {}
    query = select(Image).where(Image.project_id == project_id, Image.id.in_(list(image_ids)))
    return {row.id: image_record(row) for row in session.scalars(query)}


def find_images_by_sop_uid(session: Session, project_id: str, sop_uid: str) -> list[ImageRecord]:
    """The project's images whose DICOM SOP Instance UID is ``sop_uid`` (oldest first)."""
    query = (
        select(Image)
        .where(Image.project_id == project_id, Image.meta["SOPInstanceUID"].as_string() == sop_uid)
        .order_by(Image.created_at, Image.id)
    )
    return [image_record(row) for row in session.scalars(query)]


def list_images(
    session: Session, project_id: str, limit: int = 100, offset: int = 0
) -> list[ImageRecord]:
    """A project's images, newest first."""
    limit, offset = page(limit, offset)
    query = (
        select(Image)
        .where(Image.project_id == project_id)
        .order_by(Image.created_at.desc(), Image.id)
        .limit(limit)
        .offset(offset)
    )
    return [image_record(row) for row in session.scalars(query)]


def count_images(session: Session, project_id: str) -> int:
    """How many images a project has."""
    query = select(func.count()).select_from(Image).where(Image.project_id == project_id)
    return int(session.scalar(query) or 0)
