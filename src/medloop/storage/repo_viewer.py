"""The viewer's prepared copies of a volume and of its label maps (see
:mod:`medloop.services.viewer_copies`): each set once, on its image or analysis row.

Every function works inside the caller's session and transaction: it flushes, never
commits. The blob must be stored and claimed (:func:`~medloop.storage.repo_blobs.claim_blobs`)
before the row points to it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from medloop.storage.models import Analysis, Image

__all__ = ["set_analysis_viewer", "set_image_viewer"]


def set_image_viewer(
    session: Session, image_id: str, blob_key: str, sha256: str, header: dict[str, Any]
) -> bool:
    """Point the image at its viewer copy (``header``: its
    :meth:`~medloop.domain.viewer.VoxelHeader.to_json`), unless it has one already.

    Returns:
        Whether the image now points to ``blob_key``: ``False`` when it is gone (an
        erasure) or already had a copy (another thread prepared it first).
    """
    result = session.execute(
        update(Image)
        .where(Image.id == image_id, Image.viewer_blob_key.is_(None))
        .values(viewer_blob_key=blob_key, viewer_sha256=sha256, viewer_header=header)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return bool(getattr(result, "rowcount", 0))


def set_analysis_viewer(session: Session, analysis_id: str, blob_key: str, sha256: str) -> bool:
    """Point the analysis at its label map's viewer copy, unless it has one already.

    Returns:
        Whether the analysis now points to ``blob_key`` (``False``: gone, or already set).
    """
    result = session.execute(
        update(Analysis)
        .where(Analysis.id == analysis_id, Analysis.viewer_blob_key.is_(None))
        .values(viewer_blob_key=blob_key, viewer_sha256=sha256)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return bool(getattr(result, "rowcount", 0))
