"""Model versions, their files and events, and training checkpoints (rows only).

Every function works inside the caller's session and transaction: it flushes, never
commits. Status changes lock the project row first (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers), so two server replicas
promoting at once take turns, and each change writes its event in the same
transaction. The blobs the rows name must be stored before the rows are committed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medloop.domain.model import Lineage, ModelManifest, VersionStatus
from medloop.domain.ports import VersionRecord
from medloop.errors import NoProductionModel, RegistryError, VersionNotFound
from medloop.storage._repo_base import lock_project
from medloop.storage.mapping import version_record
from medloop.storage.models import ModelEvent, ModelFile, ModelVersion, TrainingCheckpoint, utcnow

__all__ = [
    "StoredFile",
    "add_version",
    "clear_checkpoint",
    "get_checkpoint",
    "get_version",
    "list_model_events",
    "list_versions",
    "production_version",
    "production_versions",
    "promote",
    "record_verdict",
    "rollback",
    "save_checkpoint",
    "trained_on",
    "version_file",
]

_PRODUCTION = VersionStatus.PRODUCTION.value


@dataclass(frozen=True)
class StoredFile:
    """A version's file as stored: its blob and content hash."""

    blob_key: str
    sha256: str
    size: int


def _row(session: Session, project_id: str, name: str) -> ModelVersion:
    row = session.scalars(
        select(ModelVersion).where(ModelVersion.project_id == project_id, ModelVersion.name == name)
    ).one_or_none()
    if row is None:
        raise VersionNotFound(f"no model version {name!r}")
    return row


def _files(session: Session, version_ids: Collection[str]) -> dict[str, list[ModelFile]]:
    out: dict[str, list[ModelFile]] = {v: [] for v in version_ids}
    if version_ids:
        query = select(ModelFile).where(ModelFile.version_id.in_(list(version_ids)))
        for f in session.scalars(query.order_by(ModelFile.name)):
            out[f.version_id].append(f)
    return out


def _record(session: Session, row: ModelVersion) -> VersionRecord:
    return version_record(row, _files(session, [row.id])[row.id])


def list_versions(session: Session, project_id: str) -> list[VersionRecord]:
    """Every version of a project, oldest first."""
    rows = list(
        session.scalars(
            select(ModelVersion)
            .where(ModelVersion.project_id == project_id)
            .order_by(ModelVersion.number)
        )
    )
    files = _files(session, [r.id for r in rows])
    return [version_record(r, files[r.id]) for r in rows]


def get_version(session: Session, project_id: str, name: str) -> VersionRecord:
    """One version (``VersionNotFound`` if the project has none of that name)."""
    return _record(session, _row(session, project_id, name))


def version_file(session: Session, project_id: str, name: str, filename: str) -> StoredFile:
    """Where a version's file is stored (``VersionNotFound`` for an unknown version or file)."""
    row = _row(session, project_id, name)
    f = session.scalars(
        select(ModelFile).where(ModelFile.version_id == row.id, ModelFile.name == filename)
    ).one_or_none()
    if f is None:
        raise VersionNotFound(f"model version {name} has no file {filename!r}")
    return StoredFile(f.blob_key, f.sha256, f.size)


def trained_on(session: Session, project_id: str) -> dict[str, list[str]]:
    """``{data key: [version, ...]}``: which versions trained on each pair or correction.

    Keys are what the versions' lineage names (reference pair ids, correction ids).
    """
    query = (
        select(ModelVersion.name, ModelVersion.lineage)
        .where(ModelVersion.project_id == project_id)
        .order_by(ModelVersion.number)
    )
    out: dict[str, list[str]] = {}
    for name, lineage in session.execute(query):
        for ref in (lineage or {}).get("data", ()):
            out.setdefault(str(ref.get("key")), []).append(str(name))
    return out


def production_version(session: Session, project_id: str) -> str | None:
    """The name of the project's production version, or ``None``."""
    query = select(ModelVersion.name).where(
        ModelVersion.project_id == project_id, ModelVersion.status == _PRODUCTION
    )
    name = session.scalars(query).one_or_none()
    return None if name is None else str(name)


def production_versions(session: Session) -> dict[str, str]:
    """``{project_id: production version}`` of every project that has one."""
    query = select(ModelVersion.project_id, ModelVersion.name).where(
        ModelVersion.status == _PRODUCTION
    )
    return {str(p): str(n) for p, n in session.execute(query)}


def _event(
    session: Session,
    project_id: str,
    event: str,
    version: str,
    *,
    previous: str | None = None,
    reason: str = "",
    actor: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        ModelEvent(
            project_id=project_id,
            version=version,
            event=event,
            previous=previous,
            reason=reason,
            actor=actor,
            detail=detail,
        )
    )
    session.flush()


def add_version(
    session: Session,
    project_id: str,
    files: Mapping[str, StoredFile],
    manifest: ModelManifest,
    lineage: Lineage,
    metrics: dict[str, Any],
) -> VersionRecord:
    """Record a new candidate, named after the project's next number (``v0001``, ...)."""
    lock_project(session, project_id)
    current = session.scalar(
        select(func.max(ModelVersion.number)).where(ModelVersion.project_id == project_id)
    )
    number = 1 if current is None else int(current) + 1
    row = ModelVersion(
        project_id=project_id,
        name=f"v{number:04d}",
        number=number,
        status=VersionStatus.CANDIDATE.value,
        kind=lineage.kind,
        parent=lineage.parent,
        manifest=manifest.to_dict(),
        lineage=lineage.to_dict(),
        metrics=dict(metrics),
    )
    session.add(row)
    session.flush()
    for filename, stored in files.items():
        session.add(
            ModelFile(
                version_id=row.id,
                name=filename,
                blob_key=stored.blob_key,
                sha256=stored.sha256,
                size=stored.size,
            )
        )
    _event(
        session,
        project_id,
        "created",
        row.name,
        detail={"parent": lineage.parent, "kind": lineage.kind},
    )
    return _record(session, row)


def _set_production(
    session: Session, project_id: str, row: ModelVersion, event: str, reason: str, actor: str | None
) -> str | None:
    current = session.scalars(
        select(ModelVersion).where(
            ModelVersion.project_id == project_id, ModelVersion.status == _PRODUCTION
        )
    ).one_or_none()
    if current is not None:
        current.status = VersionStatus.RETIRED.value
        session.flush()  # the one-production index holds at every statement
    row.status = _PRODUCTION
    session.flush()
    previous = None if current is None else current.name
    _event(session, project_id, event, row.name, previous=previous, reason=reason, actor=actor)
    return previous


def promote(
    session: Session, project_id: str, name: str, reason: str, actor: str | None = None
) -> VersionRecord:
    """Put ``name`` in production; the previous production version becomes retired."""
    lock_project(session, project_id)
    row = _row(session, project_id, name)
    if row.status != _PRODUCTION:
        _set_production(session, project_id, row, "promoted", reason, actor)
    return _record(session, row)


def record_verdict(
    session: Session,
    project_id: str,
    name: str,
    accepted: bool,
    reason: str,
    report: dict[str, Any],
) -> VersionRecord:
    """Write a candidate's gate report (once) and promote or reject it.

    Raises:
        RegistryError: the version already has a report or is not a candidate.
    """
    lock_project(session, project_id)
    row = _row(session, project_id, name)
    if row.report is not None or row.status != VersionStatus.CANDIDATE.value:
        raise RegistryError(f"version {name} already has a report (it is {row.status})")
    row.report = dict(report)
    if accepted:
        _set_production(session, project_id, row, "promoted", reason, None)
    else:
        row.status = VersionStatus.REJECTED.value
        _event(session, project_id, "rejected", name, reason=reason)
    session.flush()
    return _record(session, row)


def _history(session: Session, project_id: str) -> list[str]:
    query = (
        select(ModelEvent.version)
        .where(
            ModelEvent.project_id == project_id,
            ModelEvent.event.in_(("promoted", "rolled_back")),
        )
        .order_by(ModelEvent.id)
    )
    return [str(v) for v in session.scalars(query)]


def rollback(
    session: Session, project_id: str, reason: str, actor: str | None = None
) -> VersionRecord:
    """Return production to the version in production before the current one.

    Raises:
        NoProductionModel: nothing is in production.
        RegistryError: the current version is the first one ever in production.
    """
    lock_project(session, project_id)
    current = production_version(session, project_id)
    if current is None:
        raise NoProductionModel("nothing is in production, so there is nothing to roll back")
    history = _history(session, project_id)
    previous = next((v for v in reversed(history[:-1]) if v != current), None)
    if previous is None:
        raise RegistryError(f"{current} is the first production version; nothing to roll back to")
    row = _row(session, project_id, previous)
    _set_production(session, project_id, row, "rolled_back", reason, actor)
    return _record(session, row)


def list_model_events(session: Session, project_id: str) -> list[dict[str, Any]]:
    """The project's model events, oldest first, as ``events.jsonl`` lines were."""
    query = select(ModelEvent).where(ModelEvent.project_id == project_id).order_by(ModelEvent.id)
    out = []
    for e in session.scalars(query):
        item: dict[str, Any] = {"at": e.at.isoformat(timespec="seconds"), "event": e.event}
        item["version"] = e.version
        if e.event in ("promoted", "rolled_back"):
            item["previous"] = e.previous
        if e.reason:
            item["reason"] = e.reason
        if e.actor:
            item["actor"] = e.actor
        out.append({**item, **(e.detail or {})})
    return out


# -- checkpoints -----------------------------------------------------------------------------


def get_checkpoint(session: Session, project_id: str, run_key: str) -> StoredFile | None:
    """The stored checkpoint of a training run, or ``None``."""
    row = session.scalars(
        select(TrainingCheckpoint).where(
            TrainingCheckpoint.project_id == project_id, TrainingCheckpoint.run_key == run_key
        )
    ).one_or_none()
    return None if row is None else StoredFile(row.blob_key, row.sha256, 0)


def save_checkpoint(session: Session, project_id: str, run_key: str, stored: StoredFile) -> None:
    """Point a training run's checkpoint at a new blob."""
    row = session.scalars(
        select(TrainingCheckpoint).where(
            TrainingCheckpoint.project_id == project_id, TrainingCheckpoint.run_key == run_key
        )
    ).one_or_none()
    now: datetime = utcnow()
    if row is None:
        session.add(
            TrainingCheckpoint(
                project_id=project_id,
                run_key=run_key,
                blob_key=stored.blob_key,
                sha256=stored.sha256,
                updated_at=now,
            )
        )
    else:
        row.blob_key, row.sha256, row.updated_at = stored.blob_key, stored.sha256, now
    session.flush()


def clear_checkpoint(session: Session, project_id: str, run_key: str) -> None:
    """Forget a training run's checkpoint (its blob becomes an orphan, swept later)."""
    row = session.scalars(
        select(TrainingCheckpoint).where(
            TrainingCheckpoint.project_id == project_id, TrainingCheckpoint.run_key == run_key
        )
    ).one_or_none()
    if row is not None:
        session.delete(row)
        session.flush()
