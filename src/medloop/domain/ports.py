"""The engine's two ports: where training data comes from and where versions go.

The learning engine (:class:`~medloop.services.learning.Learner`) reads reference pairs
and corrections only through :class:`TrainingData` and writes model versions, gate
reports and checkpoints only through :class:`ArtifactStore`. The CLI supplies folder
adapters (a dataset folder and a registry folder), the server database-and-blob
adapters, and unit tests in-memory ones; no adapter writes files for another.

::

    data: TrainingData = ...          # reference pairs + corrections, loaded lazily
    store: ArtifactStore = ...        # versions, production pointer, reports, checkpoints
    learner = Learner(settings, data, store)
    outcome = learner.finetune()      # trains, gates, and records the verdict in `store`
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from medloop.domain.image import Image
from medloop.domain.learning import Decision
from medloop.domain.model import Lineage, ModelManifest, VersionStatus

__all__ = [
    "ONNX_FILE",
    "WEIGHTS_FILE",
    "ArtifactStore",
    "Checkpoint",
    "CorrectionSample",
    "LoadedPair",
    "PairSample",
    "TrainingData",
    "VersionRecord",
]

WEIGHTS_FILE = "weights.pt"
"""The file of a version that holds its PyTorch ``state_dict``."""
ONNX_FILE = "model.onnx"
"""The file of a version that holds its network exported to ONNX (served on CPUs)."""


@dataclass(frozen=True)
class PairSample:
    """One image/label-map pair, named and pinned by content; its pixels load on demand.

    Attributes:
        key: unique within its source (a reference pair's key or a correction's id).
        image_sha256, mask_sha256: content hashes, recorded in a version's lineage.
        split: ``train``, ``val`` or ``test`` for reference pairs; ``None`` for corrections.
        group: a reporting group (e.g. a stain), when known.
        frame: the frame of a multi-frame image (0 otherwise).
    """

    key: str
    image_sha256: str
    mask_sha256: str
    split: str | None = None
    group: str | None = None
    frame: int = 0


@dataclass(frozen=True)
class CorrectionSample(PairSample):
    """A correction as training data: the latest label map a clinician gave an image.

    ``held_out`` corrections are never trained on; the gate scores on them.
    """

    id: str = ""
    seq: int = 0
    held_out: bool = False
    author: str | None = None
    corrects_version: str | None = None


@dataclass(frozen=True)
class LoadedPair:
    """A sample's pixels: the image and its label map ``(H, W)`` uint8 (values 0..K)."""

    sample: PairSample
    image: Image
    mask: np.ndarray


class TrainingData(Protocol):
    """Reference pairs and corrections of one project (the engine's input port)."""

    def reference(self) -> Sequence[PairSample]:
        """Every reference pair with its split; the engine never trains or selects on ``test``."""
        ...

    def corrections(self) -> Sequence[CorrectionSample]:
        """The latest correction of each image (each frame), oldest first."""
        ...

    def load(self, sample: PairSample) -> LoadedPair:
        """The pixels of ``sample``, checked against its sha256.

        Raises:
            TrainingError: the pair is gone or its bytes changed.
        """
        ...


@dataclass(frozen=True)
class VersionRecord:
    """A model version as stored: immutable content plus its current status.

    ``files`` maps each stored file (``weights.pt``, ``model.onnx``) to its
    sha256; ``report`` is the gate's verdict once one was recorded.
    """

    name: str
    status: VersionStatus
    manifest: ModelManifest
    lineage: Lineage
    metrics: dict[str, Any]
    files: dict[str, str]
    report: dict[str, Any] | None = None

    @property
    def parent(self) -> str | None:
        return self.lineage.parent

    @property
    def kind(self) -> str:
        return self.lineage.kind

    @property
    def created_at(self) -> str:
        return self.lineage.created_at


class Checkpoint(Protocol):
    """One resumable training run's latest checkpoint (bytes), kept by the artifact store."""

    def load(self) -> bytes | None:
        """The last saved checkpoint, or ``None``."""
        ...

    def save(self, data: bytes) -> None:
        """Replace the checkpoint atomically."""
        ...

    def clear(self) -> None:
        """Forget it (the run finished)."""
        ...


class ArtifactStore(Protocol):
    """Model versions of one project, the production pointer, gate reports, checkpoints.

    Versions are immutable once added; only their status changes, through
    :meth:`record_verdict`, :meth:`promote` and :meth:`rollback`, each of which is
    atomic and leaves an event.
    """

    def versions(self) -> list[VersionRecord]:
        """Every version, oldest first."""
        ...

    def get(self, name: str) -> VersionRecord:
        """One version (``VersionNotFound`` if there is none of that name)."""
        ...

    def production(self) -> str | None:
        """The name of the version in production, or ``None``."""
        ...

    def read_file(self, name: str, filename: str = WEIGHTS_FILE) -> bytes:
        """A stored file of version ``name``, checked against its sha256."""
        ...

    def add_version(
        self,
        files: Mapping[str, bytes],
        manifest: ModelManifest,
        lineage: Lineage,
        metrics: dict[str, Any],
    ) -> VersionRecord:
        """Store a new candidate (named ``v0001``, ``v0002``, ...); all or nothing."""
        ...

    def record_verdict(
        self, name: str, decision: Decision, report: dict[str, Any]
    ) -> VersionRecord:
        """Write the gate's report of candidate ``name`` (once) and promote it when
        ``decision.accepted``, else mark it rejected; in one step."""
        ...

    def promote(self, name: str, reason: str, actor: str | None = None) -> VersionRecord:
        """Put ``name`` in production by hand; the previous one is retired."""
        ...

    def rollback(self, reason: str, actor: str | None = None) -> VersionRecord:
        """Return production to the version promoted before the current one."""
        ...

    def events(self) -> list[dict[str, Any]]:
        """The append-only history: created, promoted, rejected, rolled_back."""
        ...

    def checkpoint(self, key: str) -> Checkpoint:
        """The checkpoint slot of the training run ``key``."""
        ...
