"""A filesystem model registry. Versions are never modified; a pointer says which serves.

Layout::

    REGISTRY/
      versions/v0001/   weights.pt manifest.json lineage.json metrics.json  (immutable)
      reports/v0002.json                      gate report, written once per version
      state.json                              status of each version + production pointer
      events.jsonl                            append-only log: created, promoted, rejected, rolled back
      .staging/                               versions being written (swept at open)
      .lock                                   flock: one writer at a time

A version is written under ``.staging/`` (every file fsynced), then renamed into
``versions/``: a crash leaves either nothing or a complete version. ``state.json``
is replaced atomically, so promote and roll back are all-or-nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medloop.domain.model import Lineage, ModelManifest, VersionStatus
from medloop.errors import NoProductionModel, RegistryError, VersionNotFound

__all__ = ["ModelRegistry", "VersionRecord"]

WEIGHTS = "weights.pt"
MANIFEST = "manifest.json"
LINEAGE = "lineage.json"
METRICS = "metrics.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


def _replace_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    _write_json(tmp, obj)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@dataclass(frozen=True)
class VersionRecord:
    """A version as listed: its name, status, parent, metrics and where it lives."""

    name: str
    status: VersionStatus
    parent: str | None
    kind: str
    created_at: str
    metrics: dict[str, Any]
    path: Path

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS


class ModelRegistry:
    """Versions of one project's model, in one directory."""

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
                _replace_json(self.state_path, {"production": None, "history": [], "status": {}})

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
        with open(self.state_path, encoding="utf-8") as fh:
            state: dict[str, Any] = json.load(fh)
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
        weights_file: Path,
        manifest: ModelManifest,
        lineage: Lineage,
        metrics: dict[str, Any],
    ) -> VersionRecord:
        """Store a new candidate version; returns its record. ``weights_file`` is copied."""
        stage = self.staging_dir / uuid.uuid4().hex
        stage.mkdir()
        try:
            shutil.copyfile(weights_file, stage / WEIGHTS)
            with open(stage / WEIGHTS, "rb+") as fh:
                os.fsync(fh.fileno())
            _write_json(stage / MANIFEST, manifest.to_dict())
            _write_json(stage / LINEAGE, lineage.to_dict())
            _write_json(stage / METRICS, metrics)
            for f in stage.iterdir():
                f.chmod(0o444)  # a version is never modified after it is written
            _fsync_dir(stage)
            with self._locked():
                name = self._next_name()
                os.rename(stage, self.versions_dir / name)
                _fsync_dir(self.versions_dir)
                state = self._state()
                state["status"][name] = VersionStatus.CANDIDATE.value
                _replace_json(self.state_path, state)
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

    def write_report(self, name: str, report: dict[str, Any]) -> None:
        """Store the gate report of a version (once)."""
        self.get(name)
        path = self.reports_dir / f"{name}.json"
        if path.exists():
            raise RegistryError(f"version {name} already has a report")
        _replace_json(path, report)

    def set_status(self, name: str, status: VersionStatus, reason: str = "") -> None:
        """Mark a version rejected or retired (promotion goes through :meth:`promote`)."""
        if status == VersionStatus.PRODUCTION:
            raise RegistryError("use promote() to put a version in production")
        with self._locked():
            state = self._state()
            if name not in state["status"]:
                raise VersionNotFound(f"no model version {name!r}")
            if state["production"] == name:
                raise RegistryError(f"{name} is in production; promote or roll back first")
            state["status"][name] = status.value
            _replace_json(self.state_path, state)
            self._event(status.value, name, reason=reason)

    def promote(self, name: str, reason: str = "") -> None:
        """Point production at ``name``; the previous production version becomes retired."""
        with self._locked():
            state = self._state()
            if name not in state["status"]:
                raise VersionNotFound(f"no model version {name!r}")
            previous = state["production"]
            if previous == name:
                return
            if previous is not None:
                state["status"][previous] = VersionStatus.RETIRED.value
            state["status"][name] = VersionStatus.PRODUCTION.value
            state["production"] = name
            state["history"].append(name)
            _replace_json(self.state_path, state)
            self._event("promoted", name, previous=previous, reason=reason)

    def rollback(self, reason: str = "") -> str:
        """Return production to the version promoted before the current one; returns its name."""
        with self._locked():
            state = self._state()
            history: list[str] = state["history"]
            current = state["production"]
            if current is None:
                raise NoProductionModel(
                    "nothing is in production, so there is nothing to roll back"
                )
            # The previous distinct production version, skipping the current one.
            previous = next((v for v in reversed(history[:-1]) if v != current), None)
            if previous is None:
                raise RegistryError(
                    f"{current} is the first production version; nothing to roll back to"
                )
            state["status"][current] = VersionStatus.RETIRED.value
            state["status"][previous] = VersionStatus.PRODUCTION.value
            state["production"] = previous
            history.append(previous)
            _replace_json(self.state_path, state)
            self._event("rolled_back", previous, previous=current, reason=reason)
            return previous

    # -- reading ----------------------------------------------------------------------------
    def production(self) -> str:
        name = self._state()["production"]
        if name is None:
            raise NoProductionModel(
                f"no model version is in production in {self.root}; train one first"
            )
        return str(name)

    def resolve(self, name: str | None) -> VersionRecord:
        """``name`` or, when ``None``, the production version."""
        return self.get(name if name is not None else self.production())

    def get(self, name: str) -> VersionRecord:
        path = self.versions_dir / name
        status = self._state()["status"].get(name)
        if status is None or not (path / MANIFEST).is_file():
            raise VersionNotFound(f"no model version {name!r}")
        lineage = self.lineage(name)
        with open(path / METRICS, encoding="utf-8") as fh:
            metrics = json.load(fh)
        return VersionRecord(
            name=name,
            status=VersionStatus(status),
            parent=lineage.parent,
            kind=lineage.kind,
            created_at=lineage.created_at,
            metrics=metrics,
            path=path,
        )

    def versions(self) -> list[VersionRecord]:
        names = sorted(self._state()["status"])
        return [self.get(n) for n in names]

    def manifest(self, name: str) -> ModelManifest:
        with open(self.versions_dir / name / MANIFEST, encoding="utf-8") as fh:
            return ModelManifest.from_dict(json.load(fh))

    def lineage(self, name: str) -> Lineage:
        try:
            with open(self.versions_dir / name / LINEAGE, encoding="utf-8") as fh:
                return Lineage.from_dict(json.load(fh))
        except FileNotFoundError as err:
            raise VersionNotFound(f"no model version {name!r}") from err

    def report(self, name: str) -> dict[str, Any] | None:
        path = self.reports_dir / f"{name}.json"
        if not path.exists():
            return None
        with open(path, encoding="utf-8") as fh:
            report: dict[str, Any] = json.load(fh)
        return report

    def events(self) -> list[dict[str, Any]]:
        if not self.events_path.exists():
            return []
        with open(self.events_path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
