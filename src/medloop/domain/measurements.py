"""Per-class measurements of a label map: area, connected components, largest component."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from medloop.domain.labels import LabelSet

__all__ = ["ClassMeasurement", "measure"]


@dataclass(frozen=True)
class ClassMeasurement:
    """Measurements of one foreground class in one label map.

    Areas are in pixels, and in mm² when the pixel spacing is known (else ``None``).
    Components use 8-connectivity.
    """

    value: int
    name: str
    area_px: int
    area_mm2: float | None
    components: int
    largest_component_px: int
    largest_component_mm2: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    label_map: np.ndarray, labels: LabelSet, pixel_area_mm2: float | None = None
) -> list[ClassMeasurement]:
    """Measure every foreground class of ``label_map`` (``(H, W)`` integer values ``0..K``)."""
    if label_map.ndim != 2:
        raise ValueError(f"label map must be (H, W), got {label_map.shape}")
    structure = np.ones((3, 3), dtype=bool)
    out: list[ClassMeasurement] = []
    for lab in labels.labels:
        region = label_map == lab.value
        area = int(region.sum())
        if area:
            comp, n = ndimage.label(region, structure=structure)
            largest = int(np.bincount(comp.ravel())[1:].max())
        else:
            n, largest = 0, 0
        out.append(
            ClassMeasurement(
                value=lab.value,
                name=lab.name,
                area_px=area,
                area_mm2=None if pixel_area_mm2 is None else area * pixel_area_mm2,
                components=int(n),
                largest_component_px=largest,
                largest_component_mm2=None if pixel_area_mm2 is None else largest * pixel_area_mm2,
            )
        )
    return out
