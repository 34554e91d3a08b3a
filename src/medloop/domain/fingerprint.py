"""What a dataset looks like, in the figures the planner decides from.

A :class:`Fingerprint` is computed once per dataset content (see
:mod:`medloop.services.fingerprint`) and stored with the plan of every version trained
on it. Sizes are in pixels/voxels of the images as they come (native), and in mm when
every image states its spacing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ORDER_MIN_IMAGES", "ClassStats", "Fingerprint"]

ORDER_MIN_IMAGES = 5
"""Images that must hold a pair of labels before their order along an axis is judged."""


@dataclass(frozen=True)
class ClassStats:
    """One foreground class over the dataset.

    Attributes:
        value: the label value.
        image_share: share of images that contain the class.
        components: median number of connected components in images that contain it.
        single_share: share of those images with exactly one component.
        extent: (p10, p50, p90) of the components' largest bounding-box side, in native
            pixels/voxels.
        thickness: p10 over images of the median structure width (twice the largest
            inscribed radius along the components' ridges), native pixels/voxels.
        largest_size: p5 over images of the largest component's size (pixels/voxels):
            a prediction smaller than this is unlike anything in the data.
    """

    value: int
    image_share: float
    components: float
    single_share: float
    extent: tuple[float, float, float]
    thickness: float
    largest_size: float


@dataclass(frozen=True)
class Fingerprint:
    """Dataset-level figures.

    Attributes:
        n_images: how many pairs were measured.
        spatial_dims: 2 or 3.
        shape_median: median spatial shape (native).
        shape_min, shape_max: per-axis extremes.
        spacing_median: median mm per pixel/voxel per axis; ``None`` unless every
            image states its spacing.
        channels: 1 or 3 (the most channels any image has).
        has_color: some RGB image has channels that differ.
        intensity: percentiles (0.5, 50, 99.5) of all pixel values.
        foreground_intensity: (p0.5, p99.5, mean, std) over foreground pixels.
        ct_like: values span a Hounsfield-like range (air below -500, a range over 500,
            float or signed).
        empty_share: share of images with no foreground at all.
        gap: median width of the background's structures (thin membranes between
            objects show up here), native pixels/voxels.
        classes: per foreground class.
        profile_asymmetry: per spatial axis, how differently the images look at the two
            ends of that axis: the mean intensity profile along the axis (images
            z-scored, resampled to 16 bins, averaged over images) against its reverse,
            root-mean-square difference / 2, in units of an image's standard deviation.
            Near 0 where either end looks alike (cells, membranes); large where the axis
            has a direction (ultrasound depth: bright skin at the top, shadow below).
            Empty when not measured (fingerprints of earlier versions).
        label_order: per spatial axis, how reliably the foreground labels lie in one
            order along it: for each pair of labels, the share of the images holding
            both in which their centroids are in the pair's usual order along the
            axis; the lowest over pairs. 1.0 where one label always comes first (the
            hippocampus's anterior label before its posterior one). Empty with fewer
            than two labels, or fewer than :data:`ORDER_MIN_IMAGES` images holding a
            pair (and in fingerprints of earlier versions).
    """

    n_images: int
    spatial_dims: int
    shape_median: tuple[float, ...]
    shape_min: tuple[int, ...]
    shape_max: tuple[int, ...]
    spacing_median: tuple[float, ...] | None
    channels: int
    has_color: bool
    intensity: tuple[float, float, float]
    foreground_intensity: tuple[float, float, float, float]
    ct_like: bool
    empty_share: float
    gap: float
    classes: tuple[ClassStats, ...]
    profile_asymmetry: tuple[float, ...] = ()
    label_order: tuple[float, ...] = ()

    @property
    def anisotropy(self) -> float:
        """Largest over smallest median spacing (1 when unknown)."""
        if self.spacing_median is None:
            return 1.0
        return max(self.spacing_median) / min(self.spacing_median)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fingerprint:
        def tup(v: Any) -> Any:
            return None if v is None else tuple(v)

        return cls(
            n_images=int(d["n_images"]),
            spatial_dims=int(d["spatial_dims"]),
            shape_median=tuple(d["shape_median"]),
            shape_min=tuple(d["shape_min"]),
            shape_max=tuple(d["shape_max"]),
            spacing_median=tup(d["spacing_median"]),
            channels=int(d["channels"]),
            has_color=bool(d["has_color"]),
            intensity=tuple(d["intensity"]),
            foreground_intensity=tuple(d["foreground_intensity"]),
            ct_like=bool(d["ct_like"]),
            empty_share=float(d["empty_share"]),
            gap=float(d["gap"]),
            classes=tuple(ClassStats(**{**c, "extent": tuple(c["extent"])}) for c in d["classes"]),
            profile_asymmetry=tuple(float(v) for v in d.get("profile_asymmetry", ())),
            label_order=tuple(float(v) for v in d.get("label_order", ())),
        )
