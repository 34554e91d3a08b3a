"""All repository functions in one namespace: ``from medloop.storage import repositories as repo``.

Functions take a :class:`~sqlalchemy.orm.Session` first, flush but never commit (the
caller owns the transaction), return records of :mod:`medloop.domain.records` (never
rows), and raise :mod:`medloop.errors` exceptions: ``NotFoundError`` for unknown ids
(or ids of another project when ``project_id`` is given), ``ConflictError`` for
unique clashes, ``InputError`` for bad choices.
"""

from __future__ import annotations

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from medloop.storage.models import (
    Analysis,
    Correction,
    Image,
    ModelFile,
    ReferencePair,
    TrainingCheckpoint,
)
from medloop.storage.repo_analyses import (
    corrected_analyses,
    count_corrections,
    count_corrections_since,
    create_analysis,
    create_correction,
    get_analysis,
    get_correction,
    latest_analysis,
    list_analyses,
    list_corrections,
    next_correction_seq,
    review_queue,
    review_queue_size,
)
from medloop.storage.repo_audit import list_events, record_event
from medloop.storage.repo_images import (
    add_reference_pair,
    count_images,
    create_image,
    find_image,
    find_images_by_sop_uid,
    get_image,
    get_images,
    get_reference_pair,
    list_images,
    list_reference_pairs,
    sanitize_filename,
)
from medloop.storage.repo_projects import (
    TOKEN_PREFIX,
    create_project,
    create_user,
    find_project,
    get_project,
    get_project_by_name,
    get_user,
    get_user_by_name,
    hash_token,
    list_projects,
    list_users,
    rotate_token,
    set_user_disabled,
    update_project,
    user_by_token,
)

__all__ = [
    "TOKEN_PREFIX",
    "add_reference_pair",
    "corrected_analyses",
    "count_corrections",
    "count_corrections_since",
    "count_images",
    "create_analysis",
    "create_correction",
    "create_image",
    "create_project",
    "create_user",
    "find_image",
    "find_images_by_sop_uid",
    "find_project",
    "get_analysis",
    "get_correction",
    "get_image",
    "get_images",
    "get_project",
    "get_project_by_name",
    "get_reference_pair",
    "get_user",
    "get_user_by_name",
    "hash_token",
    "latest_analysis",
    "list_analyses",
    "list_corrections",
    "list_events",
    "list_images",
    "list_projects",
    "list_reference_pairs",
    "list_users",
    "next_correction_seq",
    "record_event",
    "referenced_blob_keys",
    "review_queue",
    "review_queue_size",
    "rotate_token",
    "sanitize_filename",
    "set_user_disabled",
    "update_project",
    "user_by_token",
]


def referenced_blob_keys(session: Session) -> set[str]:
    """Every blob key a row points to (for :meth:`BlobStore.sweep_orphans`): images, masks,
    label maps, model files (weights) and training checkpoints."""
    query = union(
        select(Image.blob_key),
        select(ReferencePair.mask_blob_key),
        select(Analysis.label_blob_key),
        select(Correction.mask_blob_key),
        select(ModelFile.blob_key),
        select(TrainingCheckpoint.blob_key),
    )
    return {str(key) for key in session.scalars(query)}
