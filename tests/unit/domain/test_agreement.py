"""Per-class agreement of a correction with its prediction, 2D and 3D."""

from __future__ import annotations

import numpy as np
import pytest

from medloop.domain.labels import LabelSet
from medloop.domain.measurements import agreement, measure


def _labels() -> LabelSet:
    return LabelSet.from_names(["a", "b"])


def test_dice_and_changed_voxels_per_class() -> None:
    pred = np.zeros((4, 4, 3), np.uint8)
    pred[:2, :2, 0] = 1  # 4 voxels of a
    fixed = pred.copy()
    fixed[0, 0, 0] = 0  # a loses one voxel
    fixed[3, 3, 2] = 1  # and gains one elsewhere
    a, b = agreement(pred, fixed, _labels())
    assert (a.value, a.name, a.changed) == (1, "a", 2)
    assert a.dice == pytest.approx(2 * 3 / 8)
    assert (b.dice, b.changed) == (1.0, 0)  # in neither: full agreement, nothing changed
    assert b.to_dict() == {"value": 2, "name": "b", "dice": 1.0, "changed": 0}


def test_agreement_needs_one_shape_and_volumes_measure_in_mm3() -> None:
    with pytest.raises(ValueError, match="shape"):
        agreement(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8), _labels())
    vol = np.zeros((5, 5, 5), np.uint8)
    vol[0, 0, 0] = vol[4, 4, 4] = 2
    b = measure(vol, _labels(), 0.5)[1]
    assert (b.area_px, b.components, b.volume_mm3, b.area_mm2) == (2, 2, 1.0, None)
