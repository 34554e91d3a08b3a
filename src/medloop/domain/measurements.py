"""Per-class measurements of a label map (2D or 3D): size, connected components, largest
one; and the per-class agreement of a correction with its prediction.

Counts are taken a chunk of the flat map at a time (:func:`value_counts`): ``np.bincount``
of a whole CT-sized map would first make an int64 copy of it, twice a float32 copy of
the volume.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from medloop.domain.labels import LabelSet

__all__ = [
    "ClassAgreement",
    "ClassMeasurement",
    "agreement",
    "components",
    "measure",
    "value_counts",
]

_CHUNK = 1 << 20
"""Elements per chunk counted at once (8 MiB of int64)."""


def value_counts(values: np.ndarray, minlength: int = 0) -> np.ndarray:
    """``np.bincount`` of the non-negative integers ``values`` (any shape), int64
    ``(max(values.max() + 1, minlength),)``, counted a chunk of at most :data:`_CHUNK`
    elements at a time."""
    flat = values.reshape(-1)
    out = np.zeros(minlength, dtype=np.int64)
    for start in range(0, flat.size, _CHUNK):
        part = np.bincount(flat[start : start + _CHUNK], minlength=out.size)
        if part.size > out.size:
            part[: out.size] += out
            out = part
        else:
            out += part
    return out


def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components of a boolean ``(H, W)`` or ``(X, Y, Z)`` mask with full
    connectivity (8 in 2D, 26 in 3D): scipy's int32 component map (0 outside, ``1..n``)
    and ``n``."""
    structure = np.ones((3,) * mask.ndim, dtype=bool)
    comp, n = ndimage.label(mask, structure=structure)
    return comp, int(n)


@dataclass(frozen=True)
class ClassMeasurement:
    """Measurements of one foreground class in one label map.

    ``area_px`` and ``largest_component_px`` count pixels (2D) or voxels (3D). When the
    spacing is known, a 2D map also gets mm² (``area_mm2``, ``largest_component_mm2``)
    and a volume mm³ (``volume_mm3``, ``largest_component_mm3``); otherwise those are
    ``None``. Components use full connectivity (8 in 2D, 26 in 3D).
    """

    value: int
    name: str
    area_px: int
    area_mm2: float | None
    components: int
    largest_component_px: int
    largest_component_mm2: float | None
    volume_mm3: float | None = None
    largest_component_mm3: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    label_map: np.ndarray, labels: LabelSet, element_size: float | None = None
) -> list[ClassMeasurement]:
    """Measure every foreground class of ``label_map`` (integer values ``0..K``).

    Args:
        label_map: ``(H, W)`` or ``(X, Y, Z)``.
        labels: the project's labels.
        element_size: mm² of a pixel (2D) or mm³ of a voxel (3D), when known.
    """
    if label_map.ndim not in (2, 3):
        raise ValueError(f"label map must be 2D or 3D, got {label_map.shape}")
    volume = label_map.ndim == 3
    counts = value_counts(label_map, labels.num_classes)
    out: list[ClassMeasurement] = []
    for lab in labels.labels:
        size = int(counts[lab.value]) if lab.value < counts.size else 0
        if size:
            comp, n = components(label_map == lab.value)
            largest = int(value_counts(comp, n + 1)[1:].max())
            del comp
        else:
            n, largest = 0, 0

        def mm(count: int) -> float | None:
            return None if element_size is None else count * element_size

        out.append(
            ClassMeasurement(
                value=lab.value,
                name=lab.name,
                area_px=size,
                area_mm2=None if volume else mm(size),
                components=int(n),
                largest_component_px=largest,
                largest_component_mm2=None if volume else mm(largest),
                volume_mm3=mm(size) if volume else None,
                largest_component_mm3=mm(largest) if volume else None,
            )
        )
    return out


@dataclass(frozen=True)
class ClassAgreement:
    """How a correction of one foreground class agrees with the prediction it corrects.

    ``dice`` is 1.0 where neither has the class; ``changed`` counts the pixels (2D) or
    voxels (3D) that entered or left the class.
    """

    value: int
    name: str
    dice: float
    changed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def agreement(
    prediction: np.ndarray, corrected: np.ndarray, labels: LabelSet
) -> list[ClassAgreement]:
    """Per-class Dice and changed elements between two label maps of one shape
    (``(H, W)`` or ``(X, Y, Z)``, values ``0..K``).

    Raises:
        ValueError: the maps differ in shape.
    """
    if prediction.shape != corrected.shape:
        raise ValueError(f"label maps {prediction.shape} and {corrected.shape} differ in shape")
    out = []
    for lab in labels.labels:
        p, c = prediction == lab.value, corrected == lab.value
        total = int(p.sum()) + int(c.sum())
        dice = 1.0 if total == 0 else 2.0 * int((p & c).sum()) / total
        out.append(ClassAgreement(lab.value, lab.name, dice, int((p ^ c).sum())))
    return out
