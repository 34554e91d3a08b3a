"""The server's :class:`~medloop.domain.ports.ArtifactStore`: model versions in the
database, their files in the blob store.

A version's files are written to the blob store first (content-addressed, fsynced),
then its rows are committed, so a crash leaves at worst an orphan blob (swept at the
next start), never a version whose weights are missing. Weights are immutable blobs,
checked against their sha256 on every read. Status changes (verdict, promote, roll
back) are single transactions holding the project row's lock, so API replicas and
workers on several machines never race; there are no lock files and no folders.

::

    store = DbArtifactStore(db, blobs, project_id)
    record = store.add_version({"weights.pt": data}, manifest, lineage, metrics)
    store.record_verdict(record.name, decision, report)   # promoted or rejected
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medloop.domain.learning import Decision
from medloop.domain.model import Lineage, ModelManifest
from medloop.domain.ports import WEIGHTS_FILE, VersionRecord
from medloop.storage import repo_versions as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

__all__ = ["DbArtifactStore", "DbCheckpoint"]


class DbCheckpoint:
    """One training run's checkpoint: a blob, named by a row keyed by ``run_key``."""

    def __init__(self, db: Database, blobs: BlobStore, project_id: str, run_key: str) -> None:
        self.db, self.blobs, self.project_id, self.run_key = db, blobs, project_id, run_key

    def load(self) -> bytes | None:
        with self.db.read() as s:
            stored = repo.get_checkpoint(s, self.project_id, self.run_key)
        return None if stored is None else self.blobs.read_bytes(stored.blob_key, stored.sha256)

    def save(self, data: bytes) -> None:
        ref = self.blobs.put_bytes(data)
        with self.db.write() as s:
            repo.save_checkpoint(
                s, self.project_id, self.run_key, repo.StoredFile(ref.key, ref.sha256, ref.size)
            )

    def clear(self) -> None:
        with self.db.write() as s:
            repo.clear_checkpoint(s, self.project_id, self.run_key)


class DbArtifactStore:
    """Model versions of one project (see the module doc).

    Args:
        db: the database.
        blobs: where the versions' files live.
        project_id: the project.
    """

    def __init__(self, db: Database, blobs: BlobStore, project_id: str) -> None:
        self.db, self.blobs, self.project_id = db, blobs, project_id

    def versions(self) -> list[VersionRecord]:
        with self.db.read() as s:
            return repo.list_versions(s, self.project_id)

    def get(self, name: str) -> VersionRecord:
        with self.db.read() as s:
            return repo.get_version(s, self.project_id, name)

    def production(self) -> str | None:
        with self.db.read() as s:
            return repo.production_version(s, self.project_id)

    def read_file(self, name: str, filename: str = WEIGHTS_FILE) -> bytes:
        with self.db.read() as s:
            stored = repo.version_file(s, self.project_id, name, filename)
        return self.blobs.read_bytes(stored.blob_key, stored.sha256)

    def add_version(
        self,
        files: Mapping[str, bytes],
        manifest: ModelManifest,
        lineage: Lineage,
        metrics: dict[str, Any],
    ) -> VersionRecord:
        stored = {}
        for filename, data in files.items():
            ref = self.blobs.put_bytes(data)
            stored[filename] = repo.StoredFile(ref.key, ref.sha256, ref.size)
        with self.db.write() as s:
            return repo.add_version(s, self.project_id, stored, manifest, lineage, metrics)

    def record_verdict(
        self, name: str, decision: Decision, report: dict[str, Any]
    ) -> VersionRecord:
        reason = "; ".join(decision.reasons)
        with self.db.write() as s:
            return repo.record_verdict(s, self.project_id, name, decision.accepted, reason, report)

    def promote(self, name: str, reason: str, actor: str | None = None) -> VersionRecord:
        with self.db.write() as s:
            return repo.promote(s, self.project_id, name, reason, actor)

    def rollback(self, reason: str, actor: str | None = None) -> VersionRecord:
        with self.db.write() as s:
            return repo.rollback(s, self.project_id, reason, actor)

    def events(self) -> list[dict[str, Any]]:
        with self.db.read() as s:
            return repo.list_model_events(s, self.project_id)

    def checkpoint(self, key: str) -> DbCheckpoint:
        return DbCheckpoint(self.db, self.blobs, self.project_id, key)
