"""What a model version is, as plain data: manifest, lineage, metrics, status.

A model version is a directory ``weights.pt`` + ``manifest.json`` + ``lineage.json``
+ ``metrics.json``, written once and never modified. Inference reads only the
manifest (architecture, preprocessing, labels, patch size), never code defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from medloop.domain.labels import LabelSet
from medloop.errors import ConfigError

__all__ = [
    "DataRef",
    "Lineage",
    "ModelManifest",
    "NetworkSpec",
    "PreprocessSpec",
    "VersionStatus",
]

MANIFEST_FORMAT = 1


class VersionStatus(StrEnum):
    """Where a version stands. Only the registry's state file changes this, never the version."""

    CANDIDATE = "candidate"
    PRODUCTION = "production"
    REJECTED = "rejected"
    RETIRED = "retired"


@dataclass(frozen=True)
class NetworkSpec:
    """A MONAI ``UNet``: encoder widths ``channels``, one stride-2 step between levels.

    ``len(channels)`` is the depth (number of resolution levels); the input size
    of the network must be a multiple of ``2 ** (depth - 1)``.
    """

    in_channels: int = 1
    out_channels: int = 2
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    num_res_units: int = 2
    norm: str = "instance"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.in_channels not in (1, 3):
            raise ConfigError(f"in_channels must be 1 or 3, got {self.in_channels}")
        if self.out_channels < 2:
            raise ConfigError(
                f"out_channels must be >= 2 (background + K), got {self.out_channels}"
            )
        if len(self.channels) < 2:
            raise ConfigError(f"a U-Net needs at least 2 levels, got channels={self.channels}")

    @property
    def divisor(self) -> int:
        """Spatial sizes given to the network must be multiples of this."""
        return int(2 ** (len(self.channels) - 1))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NetworkSpec:
        return cls(**{**d, "channels": tuple(d["channels"])})


@dataclass(frozen=True)
class PreprocessSpec:
    """How pixels become network input; stored in the manifest, replayed at inference.

    Attributes:
        color: ``"gray"`` (RGB folded by luminance) or ``"rgb"`` (gray replicated).
        clip_percentiles: intensity percentiles clipped per image and channel before z-scoring.
    """

    color: str = "gray"
    clip_percentiles: tuple[float, float] = (0.5, 99.5)

    def __post_init__(self) -> None:
        if self.color not in ("gray", "rgb"):
            raise ConfigError(f"color must be 'gray' or 'rgb', got {self.color!r}")

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessSpec:
        lo, hi = d["clip_percentiles"]
        return cls(color=d["color"], clip_percentiles=(float(lo), float(hi)))


@dataclass(frozen=True)
class ModelManifest:
    """Everything inference needs besides the weights."""

    network: NetworkSpec
    preprocess: PreprocessSpec
    labels: LabelSet
    patch_size: tuple[int, int]
    sliding_window_overlap: float = 0.25
    format: int = MANIFEST_FORMAT

    def __post_init__(self) -> None:
        d = self.network.divisor
        if any(p % d for p in self.patch_size):
            raise ConfigError(
                f"patch size {self.patch_size} must be a multiple of {d} for a {len(self.network.channels)}-level U-Net"
            )
        if self.network.out_channels != self.labels.num_classes:
            raise ConfigError("network outputs must equal the number of labels + background")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "network": asdict(self.network),
            "preprocess": asdict(self.preprocess),
            "labels": self.labels.to_dicts(),
            "patch_size": list(self.patch_size),
            "sliding_window_overlap": self.sliding_window_overlap,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelManifest:
        if d.get("format") != MANIFEST_FORMAT:
            raise ConfigError(f"unsupported manifest format {d.get('format')!r}")
        return cls(
            network=NetworkSpec.from_dict(d["network"]),
            preprocess=PreprocessSpec.from_dict(d["preprocess"]),
            labels=LabelSet.from_dicts(d["labels"]),
            patch_size=(int(d["patch_size"][0]), int(d["patch_size"][1])),
            sliding_window_overlap=float(d["sliding_window_overlap"]),
        )


@dataclass(frozen=True)
class DataRef:
    """One image/mask pair a version was trained on, pinned by content hash.

    ``role`` is ``"reference"``, ``"replay"`` or ``"correction"``; ``weight`` the
    per-sample loss and sampling weight it had.
    """

    key: str
    image_sha256: str
    mask_sha256: str
    role: str
    weight: float = 1.0


@dataclass(frozen=True)
class Lineage:
    """Where a version came from: parent, exact data, settings, seed, code versions."""

    kind: str  # "train" | "finetune"
    parent: str | None
    data: tuple[DataRef, ...]
    held_out_corrections: tuple[str, ...]
    hyperparameters: dict[str, Any]
    seed: int
    software: dict[str, str]
    reference_root: str | None = None
    created_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["data"] = [asdict(r) for r in self.data]
        d["held_out_corrections"] = list(self.held_out_corrections)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Lineage:
        return cls(
            kind=d["kind"],
            parent=d.get("parent"),
            data=tuple(DataRef(**r) for r in d["data"]),
            held_out_corrections=tuple(d.get("held_out_corrections", ())),
            hyperparameters=dict(d.get("hyperparameters", {})),
            seed=int(d["seed"]),
            software=dict(d.get("software", {})),
            reference_root=d.get("reference_root"),
            created_at=d.get("created_at", ""),
            extra=dict(d.get("extra", {})),
        )

    def corrections(self) -> list[DataRef]:
        return [r for r in self.data if r.role == "correction"]
