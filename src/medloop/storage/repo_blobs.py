"""Which blobs the rows point to, and the lock that keeps removal and reuse apart.

Blobs are content-addressed and shared: two images (or two label maps) with the same
bytes are one blob. A blob may be removed only when no row points to it, and a
writer that found its bytes already stored must not point a new row at a blob that
is being removed. Both sides lock the key in their write transaction:

- a writer calls :func:`claim_blobs` before inserting its row: it takes the key's
  lock (shared) and checks that the blob is still there;
- a remover calls :func:`lock_for_removal` (exclusive), then :func:`referenced_among`,
  and removes only what no row points to.

On SQLite a write transaction already excludes every other writer
(``BEGIN IMMEDIATE``), so the locks are PostgreSQL advisory locks only.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from sqlalchemy import Select, select, text, union
from sqlalchemy.orm import Session

from medloop.errors import ConflictError
from medloop.storage.models import (
    Analysis,
    Correction,
    Image,
    Job,
    ModelFile,
    ReferencePair,
    TrainingCheckpoint,
)

__all__ = ["claim_blobs", "lock_for_removal", "referenced_among", "referenced_blob_keys"]

_OPEN_JOB = ("queued", "running")


def _queries(except_job: str | None = None) -> list[Select[tuple[str]]]:
    archive = Job.options["archive"].as_string()
    open_imports = [Job.kind == "reference_import", Job.state.in_(_OPEN_JOB)]
    if except_job is not None:
        open_imports.append(Job.id != except_job)
    return [
        select(Image.blob_key.label("key")),
        select(Image.headers_blob_key.label("key")).where(Image.headers_blob_key.is_not(None)),
        select(Image.viewer_blob_key.label("key")).where(Image.viewer_blob_key.is_not(None)),
        select(ReferencePair.mask_blob_key.label("key")),
        select(Analysis.label_blob_key.label("key")),
        select(Analysis.viewer_blob_key.label("key")).where(Analysis.viewer_blob_key.is_not(None)),
        select(Correction.mask_blob_key.label("key")),
        select(ModelFile.blob_key.label("key")),
        select(TrainingCheckpoint.blob_key.label("key")),
        # the archive a reference import still has to read
        select(archive.label("key")).where(*open_imports),
    ]


def referenced_blob_keys(session: Session) -> set[str]:
    """Every blob key a row points to (for :meth:`BlobStore.sweep_orphans`): images (and
    their viewer copies), masks, label maps (and theirs), model files, training
    checkpoints and the archives of unfinished imports."""
    return {str(key) for key in session.scalars(union(*_queries())) if key}


def referenced_among(
    session: Session, keys: Collection[str], except_job: str | None = None
) -> set[str]:
    """Those of ``keys`` that some row points to (``except_job``: not counting that job)."""
    wanted = sorted(set(keys))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for query in _queries(except_job):
            column = query.selected_columns[0]
            found.update(str(k) for k in session.scalars(query.where(column.in_(chunk))) if k)
    return found


def _advisory(session: Session, keys: Collection[str], shared: bool) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return
    fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    for key in sorted(set(keys)):  # one order everywhere: no deadlock between removers
        session.execute(text(f"SELECT {fn}(:k)"), {"k": int(key[:15], 16)})


def lock_for_removal(session: Session, keys: Collection[str]) -> None:
    """Lock ``keys`` against writers claiming them until the transaction ends."""
    _advisory(session, keys, shared=False)


def claim_blobs(session: Session, exists: Callable[[str], bool], *keys: str) -> None:
    """Before a row points to ``keys``: make sure no removal takes them from under it.

    Raises:
        ConflictError: a blob was removed (an erasure) between storing it and now; the
            request can simply be sent again.
    """
    _advisory(session, keys, shared=True)
    gone = [k for k in keys if not exists(k)]
    if gone:
        raise ConflictError(
            "stored bytes were removed by an erasure while this request ran; send it again"
        )
