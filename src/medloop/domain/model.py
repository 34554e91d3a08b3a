"""What a model version is, as plain data: manifest, lineage, metrics, status.

A model version is a directory ``weights.pt`` + ``manifest.json`` + ``lineage.json``
+ ``metrics.json``, written once and never modified. Inference reads only the
manifest (architecture, preprocessing, labels, patch size), never code defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from medloop.domain.labels import LabelSet
from medloop.errors import ConfigError

__all__ = [
    "DataRef",
    "GuidanceSpec",
    "Lineage",
    "ModelManifest",
    "NetworkSpec",
    "PreprocessSpec",
    "VersionStatus",
]

MANIFEST_FORMAT = 2


class VersionStatus(StrEnum):
    """Where a version stands. Only the registry's state file changes this, never the version."""

    CANDIDATE = "candidate"
    PRODUCTION = "production"
    REJECTED = "rejected"
    RETIRED = "retired"


@dataclass(frozen=True)
class NetworkSpec:
    """A MONAI ``UNet`` in 2D or 3D: encoder widths ``channels``, a down-sampling between levels.

    ``len(channels)`` is the depth (number of resolution levels). ``strides`` gives
    each of the ``depth - 1`` down-samplings per axis (e.g. ``(1, 2, 2)`` pools a thick-
    slice volume in-plane only); ``None`` means 2 along every axis. Each input side must
    be a multiple of the product of its strides (:attr:`divisors`).
    """

    in_channels: int = 1
    out_channels: int = 2
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    num_res_units: int = 2
    norm: str = "instance"
    dropout: float = 0.0
    spatial_dims: int = 2
    strides: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.in_channels <= 64:
            raise ConfigError(f"in_channels must be in 1..64, got {self.in_channels}")
        if self.out_channels < 2:
            raise ConfigError(
                f"out_channels must be >= 2 (background + K), got {self.out_channels}"
            )
        if len(self.channels) < 2:
            raise ConfigError(f"a U-Net needs at least 2 levels, got channels={self.channels}")
        if self.spatial_dims not in (2, 3):
            raise ConfigError(f"spatial_dims must be 2 or 3, got {self.spatial_dims}")
        if self.strides is not None and (
            len(self.strides) != len(self.channels) - 1
            or any(len(s) != self.spatial_dims or min(s) < 1 for s in self.strides)
        ):
            raise ConfigError(
                f"strides must be {len(self.channels) - 1} tuples of {self.spatial_dims} "
                f"positive ints, got {self.strides}"
            )

    @property
    def level_strides(self) -> tuple[tuple[int, ...], ...]:
        """The down-sampling of each level, per axis."""
        if self.strides is not None:
            return self.strides
        return tuple((2,) * self.spatial_dims for _ in self.channels[1:])

    @property
    def divisors(self) -> tuple[int, ...]:
        """Each input side must be a multiple of its axis' entry."""
        out = [1] * self.spatial_dims
        for s in self.level_strides:
            out = [o * k for o, k in zip(out, s, strict=True)]
        return tuple(out)

    @property
    def divisor(self) -> int:
        """The largest of :attr:`divisors` (isotropic networks: the one divisor)."""
        return max(self.divisors)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["strides"] = None if self.strides is None else [list(s) for s in self.strides]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NetworkSpec:
        strides = d.get("strides")
        return cls(
            **{
                **d,
                "channels": tuple(d["channels"]),
                "strides": None if strides is None else tuple(tuple(s) for s in strides),
            }
        )


Normalization = Literal["zscore", "clip_zscore"]


@dataclass(frozen=True)
class PreprocessSpec:
    """How pixels become network input; stored in the manifest, replayed at inference.

    Attributes:
        color: ``"gray"`` (RGB folded by luminance) or ``"rgb"`` (gray replicated).
        clip_percentiles: with ``zscore``, intensity percentiles clipped per image and
            channel before z-scoring that image.
        normalization: ``zscore`` (each image on its own: MRI, microscopy, ultrasound) or
            ``clip_zscore`` (CT-like data: clip to ``intensity`` = the dataset's
            foreground (lo, hi) then subtract its mean and divide by its std).
        intensity: ``(lo, hi, mean, std)`` of the dataset's foreground, for ``clip_zscore``.
        scale: resampling factor per axis (new size = old size * scale) for images
            without a known spacing; ``None``: native resolution.
        target_spacing: mm per pixel/voxel to resample images with a known spacing
            to; ``None``: ``scale`` applies to them too.
    """

    color: str = "gray"
    clip_percentiles: tuple[float, float] = (0.5, 99.5)
    normalization: Normalization = "zscore"
    intensity: tuple[float, float, float, float] | None = None
    scale: tuple[float, ...] | None = None
    target_spacing: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.color not in ("gray", "rgb"):
            raise ConfigError(f"color must be 'gray' or 'rgb', got {self.color!r}")
        if self.normalization not in ("zscore", "clip_zscore"):
            raise ConfigError(f"unknown normalization {self.normalization!r}")
        if self.normalization == "clip_zscore" and (
            self.intensity is None or self.intensity[3] <= 0
        ):
            raise ConfigError("clip_zscore needs the dataset's (lo, hi, mean, std > 0)")
        for name, vals in (("scale", self.scale), ("target_spacing", self.target_spacing)):
            if vals is not None and not all(0 < v < 1e4 for v in vals):
                raise ConfigError(f"{name} must be positive, got {vals}")

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    def factors(self, ndim: int, spacing: tuple[float, ...] | None) -> tuple[float, ...]:
        """Resampling factor per axis for an image of ``ndim`` axes and ``spacing`` (mm)."""
        if self.target_spacing is not None and spacing is not None:
            return tuple(s / t for s, t in zip(spacing, self.target_spacing, strict=True))
        if self.scale is not None:
            return tuple(self.scale)
        return (1.0,) * ndim

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("intensity", "scale", "target_spacing", "clip_percentiles"):
            d[k] = None if d[k] is None else list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessSpec:
        def tup(key: str) -> Any:
            value = d.get(key)
            return None if value is None else tuple(float(v) for v in value)

        lo, hi = d["clip_percentiles"]
        return cls(
            color=d["color"],
            clip_percentiles=(float(lo), float(hi)),
            normalization=d.get("normalization", "zscore"),
            intensity=tup("intensity"),
            scale=tup("scale"),
            target_spacing=tup("target_spacing"),
        )


@dataclass(frozen=True)
class GuidanceSpec:
    """Click guidance fed to the network beside the image (an interactive model).

    For each foreground label ``k`` in ``1..K`` the network gets a positive-click and a
    negative-click channel (Gaussian blobs of ``sigma`` grid pixels/voxels), a box
    channel when ``box``, and the previous label map's mask of ``k`` when ``previous``.
    All guidance zero is the automatic model.
    """

    sigma: float = 2.0
    box: bool = True
    previous: bool = True

    def __post_init__(self) -> None:
        if not 0.5 <= self.sigma <= 20:
            raise ConfigError(f"guidance sigma must be in 0.5..20 grid pixels, got {self.sigma}")

    def channels(self, num_foreground: int) -> int:
        """How many guidance channels a network with ``num_foreground`` labels takes."""
        return num_foreground * (2 + int(self.box) + int(self.previous))

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> GuidanceSpec | None:
        return None if d is None else cls(float(d["sigma"]), bool(d["box"]), bool(d["previous"]))


@dataclass(frozen=True)
class ModelManifest:
    """Everything inference needs besides the weights (format 2; format 1 is read too).

    Attributes:
        patch_size: the training patch and inference window, per spatial axis, in
            pixels/voxels of the resampled grid.
        keep_largest: label values whose prediction is reduced to its largest
            connected component (chosen by the plan on the selection set).
        min_size: ``(label value, pixels/voxels)`` pairs: a predicted component of that
            label smaller than this (on the input's grid) is removed, so an image
            with nothing to find comes out empty (chosen on the selection set).
        test_time_flips: spatial axes along which automatic inference also runs the
            flipped image and averages the logits (``2**k`` passes; empty: none; chosen
            on the selection set). Click refinement never flips.
        plan: how the configuration was chosen (fingerprint figures and one reason
            per rule), for people; inference never reads it.
    """

    network: NetworkSpec
    preprocess: PreprocessSpec
    labels: LabelSet
    patch_size: tuple[int, ...]
    sliding_window_overlap: float = 0.25
    keep_largest: tuple[int, ...] = ()
    min_size: tuple[tuple[int, int], ...] = ()
    test_time_flips: tuple[int, ...] = ()
    guidance: GuidanceSpec | None = None
    plan: dict[str, Any] = field(default_factory=dict, compare=False)
    format: int = MANIFEST_FORMAT

    def __post_init__(self) -> None:
        if len(self.patch_size) != self.network.spatial_dims:
            raise ConfigError(
                f"patch size {self.patch_size} does not have {self.network.spatial_dims} axes"
            )
        for p, d in zip(self.patch_size, self.network.divisors, strict=True):
            if p % d:
                raise ConfigError(
                    f"patch size {self.patch_size} must be a multiple of {self.network.divisors} "
                    f"for a {len(self.network.channels)}-level U-Net"
                )
        if any(not 0 <= a < self.network.spatial_dims for a in self.test_time_flips) or len(
            set(self.test_time_flips)
        ) != len(self.test_time_flips):
            raise ConfigError(
                f"test-time flips {list(self.test_time_flips)} must be distinct spatial axes "
                f"of a {self.network.spatial_dims}D network"
            )
        if self.network.out_channels != self.labels.num_classes:
            raise ConfigError("network outputs must equal the number of labels + background")
        if self.network.in_channels != self.image_channels + self.guidance_channels:
            raise ConfigError(
                f"network inputs ({self.network.in_channels}) must be the image's "
                f"{self.image_channels} channels + {self.guidance_channels} guidance channels"
            )

    @property
    def image_channels(self) -> int:
        return self.preprocess.channels

    @property
    def guidance_channels(self) -> int:
        return 0 if self.guidance is None else self.guidance.channels(self.labels.num_foreground)

    @property
    def spatial_dims(self) -> int:
        return self.network.spatial_dims

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "network": self.network.to_dict(),
            "preprocess": self.preprocess.to_dict(),
            "labels": self.labels.to_dicts(),
            "patch_size": list(self.patch_size),
            "sliding_window_overlap": self.sliding_window_overlap,
            "keep_largest": list(self.keep_largest),
            "min_size": [list(p) for p in self.min_size],
            "test_time_flips": list(self.test_time_flips),
            "guidance": None if self.guidance is None else asdict(self.guidance),
            "plan": self.plan,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelManifest:
        if d.get("format") not in (1, MANIFEST_FORMAT):
            raise ConfigError(f"unsupported manifest format {d.get('format')!r}")
        return cls(
            network=NetworkSpec.from_dict(d["network"]),
            preprocess=PreprocessSpec.from_dict(d["preprocess"]),
            labels=LabelSet.from_dicts(d["labels"]),
            patch_size=tuple(int(p) for p in d["patch_size"]),
            sliding_window_overlap=float(d["sliding_window_overlap"]),
            keep_largest=tuple(int(v) for v in d.get("keep_largest", ())),
            min_size=tuple((int(v), int(n)) for v, n in d.get("min_size", ())),
            test_time_flips=tuple(int(a) for a in d.get("test_time_flips", ())),
            guidance=GuidanceSpec.from_dict(d.get("guidance")),
            plan=dict(d.get("plan", {})),
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
