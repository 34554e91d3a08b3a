"""A project's model versions, as admins and viewers see them: list, promote, roll back, download.

Every change goes through the project's :class:`~medloop.storage.DbArtifactStore`,
the same store the learning engine writes to, so a promotion by hand and a gate's
verdict take the same lock and leave the same kind of event.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from medloop.domain.gate import promotion_reason
from medloop.domain.ports import VersionRecord
from medloop.storage import repositories as repo
from medloop.storage.artifacts import DbArtifactStore
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

__all__ = ["ModelVersions", "VersionView"]


@dataclass(frozen=True)
class VersionView:
    """A version and the keys of its lineage whose data was erased since it trained.

    ``erased`` holds lineage keys (reference pair and correction ids, held-out
    corrections included); the lineage itself keeps their ids and sha256.
    """

    record: VersionRecord
    erased: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Erased:
    ids: frozenset[str]
    image_sha256: frozenset[str]

    def of(self, record: VersionRecord) -> frozenset[str]:
        lineage = record.lineage
        keys = {r.key for r in lineage.data if r.key in self.ids}
        keys |= {r.key for r in lineage.data if r.image_sha256 in self.image_sha256}
        keys |= {c for c in lineage.held_out_corrections if c in self.ids}
        return frozenset(keys)


class ModelVersions:
    """Model versions of the server's projects.

    Args:
        db: the database.
        blobs: where the versions' files are.
    """

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db, self.blobs = db, blobs

    def store(self, project_id: str) -> DbArtifactStore:
        """The project's artifact store (the engine's port)."""
        return DbArtifactStore(self.db, self.blobs, project_id)

    def all(self, project_id: str) -> list[VersionRecord]:
        """Every version, oldest first."""
        return self.store(project_id).versions()

    def get(self, project_id: str, name: str) -> VersionRecord:
        """One version (``VersionNotFound`` otherwise)."""
        return self.store(project_id).get(name)

    def history(self, project_id: str) -> dict[str, list[dict[str, Any]]]:
        """Each version's events (created, promoted by whom and why, rejected, rolled back)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for event in self.store(project_id).events():
            out.setdefault(str(event["version"]), []).append(event)
        return out

    def _erased(self, project_id: str) -> _Erased:
        with self.db.read() as s:
            items = repo.erased_items(s, project_id)
        return _Erased(
            frozenset(i for kind, i, _ in items if kind in ("reference", "correction")),
            frozenset(h for kind, _, h in items if kind == "image"),
        )

    def listing(self, project_id: str) -> list[VersionView]:
        """Every version, oldest first, each with the keys of erased data it saw."""
        erased = self._erased(project_id)
        return [VersionView(v, erased.of(v)) for v in self.all(project_id)]

    def view(self, project_id: str, name: str) -> VersionView:
        """One version with the keys of erased data it saw (``VersionNotFound`` otherwise)."""
        record = self.get(project_id, name)
        return VersionView(record, self._erased(project_id).of(record))

    def promote(
        self, project_id: str, name: str, actor: str, reason: str | None = None
    ) -> VersionView:
        """Put ``name`` in production by hand (the previous one is retired).

        Raises:
            ConfigError: the gate rejected ``name`` and no ``reason`` was given.
        """
        store = self.store(project_id)
        why = promotion_reason(store.get(name), actor, reason)
        record = store.promote(name, reason=why, actor=actor)
        return VersionView(record, self._erased(project_id).of(record))

    def rollback(self, project_id: str, actor: str) -> VersionView:
        """Return production to the version promoted before the current one."""
        record = self.store(project_id).rollback(reason=f"by {actor}", actor=actor)
        return VersionView(record, self._erased(project_id).of(record))

    def download(self, project_id: str, name: str) -> bytes:
        """A zip of the version as a registry folder holds it: ``<name>/weights.pt``,
        ``manifest.json``, ``lineage.json``, ``metrics.json`` (and ``report.json``)."""
        store = self.store(project_id)
        record = store.get(name)
        docs = {
            "manifest.json": record.manifest.to_dict(),
            "lineage.json": record.lineage.to_dict(),
            "metrics.json": record.metrics,
        }
        if record.report is not None:
            docs["report.json"] = record.report
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for filename in sorted(record.files):
                zf.writestr(f"{name}/{filename}", store.read_file(name, filename))
            for filename, doc in docs.items():
                text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
                zf.writestr(f"{name}/{filename}", text)
        return buf.getvalue()
