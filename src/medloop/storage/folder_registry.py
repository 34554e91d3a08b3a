"""The CLI's model registry: an :class:`~medloop.domain.ports.ArtifactStore` in one folder.

Layout::

    REGISTRY/
      versions/v0001/   weights.pt manifest.json lineage.json metrics.json files.json  (read-only)
      reports/v0002.json                      gate report, written once per version
      state.json                              status of each version + production pointer
      events.jsonl                            append-only: created, promoted, rejected, rolled_back
      .work/<run>/checkpoint.pt               resumable training runs
      .staging/                               versions being written (swept at open)
      .lock                                   flock: one writer at a time

A version is written under ``.staging/`` (every file fsynced), then renamed into
``versions/``: a crash leaves either nothing or a complete version. ``state.json``
is replaced atomically, so promote and roll back are all-or-nothing. ``files.json``
holds each file's sha256 (versions written before it existed are hashed on read).
The server keeps versions in its database and blob store instead; this is for a
single machine's command line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medloop.domain.learning import Decision
from medloop.domain.model import Lineage, ModelManifest, VersionStatus
from medloop.domain.ports import WEIGHTS_FILE, VersionRecord
from medloop.durable import atomic_write_bytes, atomic_write_json, fsync_dir, sha256_bytes
from medloop.errors import NoProductionModel, RegistryError, VersionNotFound

__all__ = ["FolderArtifactStore", "FolderCheckpoint"]

MANIFEST = "manifest.json"
LINEAGE = "lineage.json"
METRICS = "metrics.json"
FILES = "files.json"
_META = (MANIFEST, LINEAGE, METRICS, FILES)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _write_new(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


class FolderCheckpoint:
    """A training run's checkpoint file under ``REGISTRY/.work/<key>/``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "checkpoint.pt"

    def load(self) -> bytes | None:
        return self.path.read_bytes() if self.path.is_file() else None

    def save(self, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, data)

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class FolderArtifactStore:
    """Versions of one project's model in one folder (see the module doc)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"
        self.reports_dir = self.root / "reports"
        self.staging_dir = self.root / ".staging"
        self.state_path = self.root / "state.json"
        self.events_path = self.root / "events.jsonl"
        for d in (self.versions_dir, self.reports_dir, self.staging_dir):
            d.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self._sweep_staging()
            if not self.state_path.exists():
                atomic_write_json(
                    self.state_path, {"production": None, "history": [], "status": {}}
                )

    # -- locking and state ----------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / ".lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _sweep_staging(self) -> None:
        for leftover in self.staging_dir.iterdir():
            for f in leftover.iterdir():
                f.chmod(0o644)
            shutil.rmtree(leftover, ignore_errors=True)

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = _read_json(self.state_path)
        return state

    def _event(self, event: str, version: str, **details: Any) -> None:
        line = json.dumps({"at": _now(), "event": event, "version": version, **details})
        with open(self.events_path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    # -- writing ----------------------------------------------------------------------------
    def add_version(
        self,
        files: Mapping[str, bytes],
        manifest: ModelManifest,
        lineage: Lineage,
        metrics: dict[str, Any],
    ) -> VersionRecord:
        """Store a new candidate; returns its record."""
        if WEIGHTS_FILE not in files or any(n in _META or "/" in n for n in files):
            raise RegistryError(f"a version needs {WEIGHTS_FILE} and plain file names")
        stage = self.staging_dir / uuid.uuid4().hex
        stage.mkdir()
        try:
            for name, data in files.items():
                _write_new(stage / name, data)
            meta = {
                MANIFEST: manifest.to_dict(),
                LINEAGE: lineage.to_dict(),
                METRICS: metrics,
                FILES: {n: sha256_bytes(d) for n, d in files.items()},
            }
            for name, obj in meta.items():
                _write_new(
                    stage / name, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
                )
            for f in stage.iterdir():
                f.chmod(0o444)  # a version is never modified after it is written
            fsync_dir(stage)
            with self._locked():
                name = self._next_name()
                os.rename(stage, self.versions_dir / name)
                fsync_dir(self.versions_dir)
                state = self._state()
                state["status"][name] = VersionStatus.CANDIDATE.value
                atomic_write_json(self.state_path, state)
                self._event("created", name, parent=lineage.parent, kind=lineage.kind)
        except BaseException:
            if stage.exists():
                for f in stage.iterdir():
                    f.chmod(0o644)
            shutil.rmtree(stage, ignore_errors=True)
            raise
        return self.get(name)

    def _next_name(self) -> str:
        nums = [int(p.name[1:]) for p in self.versions_dir.iterdir() if p.name.startswith("v")]
        return f"v{(max(nums) + 1) if nums else 1:04d}"

    def record_verdict(
        self, name: str, decision: Decision, report: dict[str, Any]
    ) -> VersionRecord:
        """Write the gate's report (once), then promote or reject ``name``, under one lock."""
        reason = "; ".join(decision.reasons)
        with self._locked():
            state = self._state()
            self._require(state, name)
            path = self.reports_dir / f"{name}.json"
            if path.exists():
                raise RegistryError(f"version {name} already has a verdict")
            atomic_write_json(path, report)
            if decision.accepted:
                self._promote(state, name, reason, None)
            else:
                if state["production"] == name:
                    raise RegistryError(f"{name} is in production; it cannot be rejected")
                state["status"][name] = VersionStatus.REJECTED.value
                atomic_write_json(self.state_path, state)
                self._event(VersionStatus.REJECTED.value, name, reason=reason)
        return self.get(name)

    @staticmethod
    def _require(state: dict[str, Any], name: str) -> None:
        if name not in state["status"]:
            raise VersionNotFound(f"no model version {name!r}")

    def _promote(self, state: dict[str, Any], name: str, reason: str, actor: str | None) -> None:
        previous = state["production"]
        if previous == name:
            return
        if previous is not None:
            state["status"][previous] = VersionStatus.RETIRED.value
        state["status"][name] = VersionStatus.PRODUCTION.value
        state["production"] = name
        state["history"].append(name)
        atomic_write_json(self.state_path, state)
        self._event("promoted", name, previous=previous, reason=reason, actor=actor)

    def promote(self, name: str, reason: str, actor: str | None = None) -> VersionRecord:
        """Point production at ``name``; the previous production version becomes retired."""
        with self._locked():
            state = self._state()
            self._require(state, name)
            self._promote(state, name, reason, actor)
        return self.get(name)

    def rollback(self, reason: str, actor: str | None = None) -> VersionRecord:
        """Return production to the version promoted before the current one."""
        with self._locked():
            state = self._state()
            history: list[str] = state["history"]
            current = state["production"]
            if current is None:
                raise NoProductionModel(
                    "nothing is in production, so there is nothing to roll back"
                )
            previous = next((v for v in reversed(history[:-1]) if v != current), None)
            if previous is None:
                raise RegistryError(
                    f"{current} is the first production version; nothing to roll back to"
                )
            state["status"][current] = VersionStatus.RETIRED.value
            state["status"][previous] = VersionStatus.PRODUCTION.value
            state["production"] = previous
            history.append(previous)
            atomic_write_json(self.state_path, state)
            self._event("rolled_back", previous, previous=current, reason=reason, actor=actor)
        return self.get(previous)

    def checkpoint(self, key: str) -> FolderCheckpoint:
        if not key or "/" in key or key.startswith("."):
            raise RegistryError(f"bad checkpoint key {key!r}")
        return FolderCheckpoint(self.root / ".work" / key)

    # -- reading ----------------------------------------------------------------------------
    def production(self) -> str | None:
        name = self._state()["production"]
        return None if name is None else str(name)

    def get(self, name: str) -> VersionRecord:
        path = self.versions_dir / name
        status = self._state()["status"].get(name)
        if status is None or "/" in name or not (path / MANIFEST).is_file():
            raise VersionNotFound(f"no model version {name!r}")
        files_path = path / FILES
        if files_path.is_file():
            files: dict[str, str] = _read_json(files_path)
        else:  # written before files.json existed
            files = {WEIGHTS_FILE: sha256_bytes((path / WEIGHTS_FILE).read_bytes())}
        report_path = self.reports_dir / f"{name}.json"
        return VersionRecord(
            name=name,
            status=VersionStatus(status),
            manifest=ModelManifest.from_dict(_read_json(path / MANIFEST)),
            lineage=Lineage.from_dict(_read_json(path / LINEAGE)),
            metrics=_read_json(path / METRICS),
            files=files,
            report=_read_json(report_path) if report_path.is_file() else None,
        )

    def read_file(self, name: str, filename: str = WEIGHTS_FILE) -> bytes:
        record = self.get(name)
        expected = record.files.get(filename)
        if expected is None:
            raise VersionNotFound(f"version {name} has no file {filename!r}")
        data = (self.versions_dir / name / filename).read_bytes()
        if sha256_bytes(data) != expected:
            raise RegistryError(f"{name}/{filename} does not match its sha256: the file changed")
        return data

    def versions(self) -> list[VersionRecord]:
        return [self.get(n) for n in sorted(self._state()["status"])]

    def events(self) -> list[dict[str, Any]]:
        if not self.events_path.exists():
            return []
        with open(self.events_path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def require_production(self) -> str:
        """The production version's name.

        Raises:
            NoProductionModel: nothing is promoted yet.
        """
        name = self.production()
        if name is None:
            raise NoProductionModel(
                f"no model version is in production in {self.root}; train one first"
            )
        return name
