"""Removing blobs no row points to any more (after a pair's deletion or an erasure).

Blobs are shared by content, so a blob goes only when no row of any project points to
it; the check and the removal run in one write transaction that locks the keys
against writers claiming them (see :mod:`medloop.storage.repo_blobs`).
"""

from __future__ import annotations

from collections.abc import Collection

from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

__all__ = ["BlobRemoval"]


class BlobRemoval:
    """Remove blobs once nothing points to them.

    Args:
        db: the database.
        blobs: the blob store.
    """

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db, self.blobs = db, blobs

    def remove_unreferenced(
        self, keys: Collection[str], except_job: str | None = None
    ) -> tuple[int, int]:
        """Remove those of ``keys`` no row points to; returns ``(removed, still used)``.

        ``except_job``: a running job whose own archive may go (it is done with it).

        A crash half-way leaves only unreferenced blobs, which the next start sweeps.
        """
        wanted = {k for k in keys if k}
        if not wanted:
            return 0, 0
        with self.db.write() as s:
            repo.lock_for_removal(s, wanted)
            used = repo.referenced_among(s, wanted, except_job)
            removed = sum(self.blobs.delete(k) for k in sorted(wanted - used))
        return removed, len(used)
