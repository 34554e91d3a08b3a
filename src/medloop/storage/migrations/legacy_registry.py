"""Migration 0004's import of the per-project registry folders of servers before it.

Before 0004 the server kept each project's model versions in a folder::

    <data_dir>/projects/<project id>/registry/
      versions/vNNNN/   weights.pt manifest.json lineage.json metrics.json
      reports/vNNNN.json                   the gate's verdict
      state.json                           statuses, production pointer, history
      events.jsonl                         created, promoted, rejected, rolled_back

Each version becomes a ``model_versions`` row (status from ``state.json``), its
``weights.pt`` a blob in ``<data_dir>/blobs`` (content-addressed, as the blob store
writes them) with a ``model_files`` row, and each event a ``model_events`` row. The
folders are not touched: once the server runs on the new schema nothing reads them
and ``<data_dir>/projects`` can be deleted (it also held ``reference/manifest.csv``,
the training checkpoints of ``registry/.work`` and, beside it, ``<data_dir>/frames``,
none of which the server uses any more).

This module is part of the migration: it reads the old format as it was and writes
the tables as 0004 made them, with SQLAlchemy Core only, so later changes to the
models or the blob store do not change what it does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from medloop.durable import atomic_write_bytes, fsync_dir

__all__ = ["import_registries"]

log = logging.getLogger("alembic.runtime.migration")

_EVENTS = ("created", "promoted", "rejected", "rolled_back")

_versions = sa.table(
    "model_versions",
    *(sa.column(c) for c in ("id", "project_id", "name", "number", "status", "kind", "parent")),
    sa.column("created_at", sa.DateTime(timezone=True)),
    *(sa.column(c, sa.JSON()) for c in ("manifest", "lineage", "metrics", "report")),
)
_files = sa.table(
    "model_files",
    *(sa.column(c) for c in ("id", "version_id", "name", "blob_key", "sha256", "size")),
)
_events = sa.table(
    "model_events",
    *(sa.column(c) for c in ("project_id", "version", "event", "previous", "reason", "actor")),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("detail", sa.JSON()),
)
_projects = sa.table("projects", sa.column("id"))


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _when(text: object, dialect: str) -> datetime:
    try:
        at = datetime.fromisoformat(str(text))
    except ValueError:
        at = datetime.now(UTC)
    at = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
    return at.replace(tzinfo=None) if dialect == "sqlite" else at


def _put_blob(root: Path, data: bytes) -> str:
    """Store ``data`` as the blob store does (``ab/cd/<sha256>``, written atomically)."""
    key = hashlib.sha256(data).hexdigest()
    path = root / key[:2] / key[2:4] / key
    if not (path.is_file() and path.stat().st_size == len(data)):
        path.parent.mkdir(parents=True, exist_ok=True)
        fsync_dir(path.parent.parent)
        atomic_write_bytes(path, data)
    return key


def _import_version(
    conn: Connection, project_id: str, folder: Path, status: str, blobs: Path, reports: Path
) -> None:
    lineage = _read_json(folder / "lineage.json")
    weights = (folder / "weights.pt").read_bytes()
    key = _put_blob(blobs, weights)
    report = reports / f"{folder.name}.json"
    version_id = uuid.uuid4().hex
    conn.execute(
        _versions.insert().values(
            id=version_id,
            project_id=project_id,
            name=folder.name,
            number=int(folder.name[1:]),
            status=status,
            kind=str(lineage.get("kind", "train")),
            parent=lineage.get("parent"),
            manifest=_read_json(folder / "manifest.json"),
            lineage=lineage,
            metrics=_read_json(folder / "metrics.json"),
            report=_read_json(report) if report.is_file() else None,
            created_at=_when(lineage.get("created_at"), conn.dialect.name),
        )
    )
    conn.execute(
        _files.insert().values(
            id=uuid.uuid4().hex,
            version_id=version_id,
            name="weights.pt",
            blob_key=key,
            sha256=key,
            size=len(weights),
        )
    )


def _event_row(project_id: str, line: dict[str, Any], dialect: str) -> dict[str, Any]:
    detail = {k: line[k] for k in ("parent", "kind") if k in line}
    return {
        "project_id": project_id,
        "version": str(line["version"]),
        "event": line["event"],
        "previous": line.get("previous"),
        "reason": str(line.get("reason") or ""),
        "actor": None,
        "detail": detail or None,
        "at": _when(line.get("at"), dialect),
    }


def _import_events(conn: Connection, project_id: str, root: Path, state: dict[str, Any]) -> None:
    path = root / "events.jsonl"
    lines = []
    if path.is_file():
        with open(path, encoding="utf-8") as fh:
            lines = [json.loads(text) for text in fh if text.strip()]
    rows = []
    for line in lines:
        if line.get("event") not in _EVENTS or "version" not in line:
            log.warning("registry %s: event %r not carried over", root, line.get("event"))
            continue
        rows.append(_event_row(project_id, line, conn.dialect.name))
    production = state.get("production")
    history = [r["version"] for r in rows if r["event"] in ("promoted", "rolled_back")]
    if production is not None and (not history or history[-1] != production):
        # events.jsonl is appended after state.json is replaced: a crash in between
        # leaves the pointer without its event. The pointer is the truth.
        rows.append(
            _event_row(
                project_id,
                {"event": "promoted", "version": production, "reason": "from state.json"},
                conn.dialect.name,
            )
        )
    if rows:
        conn.execute(_events.insert(), rows)


def _import_registry(conn: Connection, project_id: str, root: Path, blobs: Path) -> int:
    state = _read_json(root / "state.json")
    statuses: dict[str, str] = dict(state.get("status", {}))
    folders = sorted(
        (p for p in (root / "versions").glob("v*") if (p / "manifest.json").is_file()),
        key=lambda p: int(p.name[1:]),
    )
    for folder in folders:
        _import_version(
            conn,
            project_id,
            folder,
            statuses.get(folder.name, "candidate"),
            blobs,
            root / "reports",
        )
    _import_events(conn, project_id, root, state)
    return len(folders)


def import_registries(conn: Connection, data_dir: Path) -> int:
    """Import every project's registry folder under ``data_dir``; returns how many versions."""
    known = {str(pid) for pid in conn.execute(sa.select(_projects.c.id)).scalars()}
    total = 0
    for root in sorted((data_dir / "projects").glob("*/registry")):
        project_id = root.parent.name
        if project_id not in known:
            log.warning("registry %s belongs to no project in the database: skipped", root)
            continue
        if not (root / "state.json").is_file():
            continue
        total += _import_registry(conn, project_id, root, data_dir / "blobs")
    return total
