"""In-memory adapters of the engine's two ports, for unit tests (no files, no database)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from medloop.domain.image import Image
from medloop.domain.learning import Decision
from medloop.domain.model import Lineage, ModelManifest, VersionStatus
from medloop.domain.ports import (
    WEIGHTS_FILE,
    CorrectionSample,
    LoadedPair,
    PairSample,
    VersionRecord,
)
from medloop.durable import sha256_bytes
from medloop.errors import NoProductionModel, RegistryError, TrainingError, VersionNotFound


def disc_pair(
    rng: np.random.Generator, size: int = 48, n: int = 3, empty: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W, 1)`` uint8 image with ``n`` bright discs and its 0/1 mask (all 0 if ``empty``)."""
    yy, xx = np.mgrid[:size, :size]
    mask = np.zeros((size, size), np.uint8)
    for _ in range(n):
        cy, cx, r = rng.integers(8, size - 8), rng.integers(8, size - 8), rng.integers(3, 7)
        mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
    img = rng.normal(60, 15, (size, size)) + mask * 120.0
    return np.clip(img, 0, 255).astype(np.uint8)[..., None], (
        np.zeros_like(mask) if empty else mask
    )


class MemoryTrainingData:
    """Reference pairs and corrections held as arrays; ``loads`` counts reads."""

    def __init__(self) -> None:
        self._pixels: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._reference: list[PairSample] = []
        self._corrections: list[CorrectionSample] = []
        self.loads = 0

    def _sample(self, key: str, image: np.ndarray, mask: np.ndarray) -> tuple[str, str]:
        self._pixels[key] = (image, mask)
        return sha256_bytes(image.tobytes()), sha256_bytes(mask.tobytes())

    def add_reference(
        self, key: str, image: np.ndarray, mask: np.ndarray, split: str, group: str | None = None
    ) -> PairSample:
        img_sha, mask_sha = self._sample(key, image, mask)
        sample = PairSample(key, img_sha, mask_sha, split, group)
        self._reference.append(sample)
        return sample

    def add_correction(
        self, image: np.ndarray, mask: np.ndarray, held_out: bool = False
    ) -> CorrectionSample:
        seq = len(self._corrections)
        cid = f"c{seq:03d}"
        img_sha, mask_sha = self._sample(cid, image, mask)
        sample = CorrectionSample(
            cid, img_sha, mask_sha, id=cid, seq=seq, held_out=held_out, author="tester"
        )
        self._corrections = [c for c in self._corrections if c.image_sha256 != img_sha]
        self._corrections.append(sample)
        return sample

    def reference(self) -> Sequence[PairSample]:
        return list(self._reference)

    def corrections(self) -> Sequence[CorrectionSample]:
        return list(self._corrections)

    def load(self, sample: PairSample) -> LoadedPair:
        if sample.key not in self._pixels:
            raise TrainingError(f"no pair {sample.key!r}")
        self.loads += 1
        image, mask = self._pixels[sample.key]
        return LoadedPair(sample, Image(pixels=image), mask)


class MemoryCheckpoint:
    def __init__(self, slots: dict[str, bytes], key: str) -> None:
        self.slots, self.key = slots, key

    def load(self) -> bytes | None:
        return self.slots.get(self.key)

    def save(self, data: bytes) -> None:
        self.slots[self.key] = data

    def clear(self) -> None:
        self.slots.pop(self.key, None)


class MemoryArtifactStore:
    """Versions in dicts; behaves like the folder and database stores (see the contract tests)."""

    def __init__(self) -> None:
        self._versions: dict[str, VersionRecord] = {}
        self._files: dict[str, dict[str, bytes]] = {}
        self._production: str | None = None
        self._history: list[str] = []
        self._events: list[dict[str, Any]] = []
        self.checkpoints: dict[str, bytes] = {}

    def versions(self) -> list[VersionRecord]:
        return [self._versions[n] for n in sorted(self._versions)]

    def get(self, name: str) -> VersionRecord:
        if name not in self._versions:
            raise VersionNotFound(f"no model version {name!r}")
        return self._versions[name]

    def production(self) -> str | None:
        return self._production

    def read_file(self, name: str, filename: str = WEIGHTS_FILE) -> bytes:
        files = self._files.get(name, {})
        if filename not in files:
            raise VersionNotFound(f"version {name} has no file {filename!r}")
        return files[filename]

    def add_version(
        self,
        files: Mapping[str, bytes],
        manifest: ModelManifest,
        lineage: Lineage,
        metrics: dict[str, Any],
    ) -> VersionRecord:
        if WEIGHTS_FILE not in files:
            raise RegistryError(f"a version needs {WEIGHTS_FILE}")
        name = f"v{len(self._versions) + 1:04d}"
        self._files[name] = dict(files)
        self._versions[name] = VersionRecord(
            name,
            VersionStatus.CANDIDATE,
            manifest,
            lineage,
            dict(metrics),
            {n: sha256_bytes(d) for n, d in files.items()},
        )
        self._events.append({"event": "created", "version": name})
        return self._versions[name]

    def _status(self, name: str, status: VersionStatus, **changes: Any) -> None:
        self._versions[name] = replace(self._versions[name], status=status, **changes)

    def _promote(self, name: str, reason: str, actor: str | None) -> None:
        if self._production == name:
            return
        if self._production is not None:
            self._status(self._production, VersionStatus.RETIRED)
        self._status(name, VersionStatus.PRODUCTION)
        self._production = name
        self._history.append(name)
        self._events.append(
            {"event": "promoted", "version": name, "reason": reason, "actor": actor}
        )

    def record_verdict(
        self, name: str, decision: Decision, report: dict[str, Any]
    ) -> VersionRecord:
        record = self.get(name)
        if record.report is not None:
            raise RegistryError(f"version {name} already has a verdict")
        self._versions[name] = replace(record, report=dict(report))
        if decision.accepted:
            self._promote(name, "; ".join(decision.reasons), None)
        else:
            self._status(name, VersionStatus.REJECTED)
            self._events.append({"event": "rejected", "version": name})
        return self._versions[name]

    def promote(self, name: str, reason: str, actor: str | None = None) -> VersionRecord:
        self.get(name)
        self._promote(name, reason, actor)
        return self._versions[name]

    def rollback(self, reason: str, actor: str | None = None) -> VersionRecord:
        current = self._production
        if current is None:
            raise NoProductionModel("nothing is in production, so there is nothing to roll back")
        previous = next((v for v in reversed(self._history[:-1]) if v != current), None)
        if previous is None:
            raise RegistryError(
                f"{current} is the first production version; nothing to roll back to"
            )
        self._status(current, VersionStatus.RETIRED)
        self._status(previous, VersionStatus.PRODUCTION)
        self._production = previous
        self._history.append(previous)
        self._events.append({"event": "rolled_back", "version": previous, "actor": actor})
        return self._versions[previous]

    def events(self) -> list[dict[str, Any]]:
        return list(self._events)

    def checkpoint(self, key: str) -> MemoryCheckpoint:
        return MemoryCheckpoint(self.checkpoints, key)
