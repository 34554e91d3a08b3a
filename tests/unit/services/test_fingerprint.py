"""The fingerprint measures what the planner needs, once per dataset content."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medloop.services.fingerprint import _ridge_widths, fingerprint, measure_fingerprint
from medloop.services.pairs import PairCache

from ...fakes import MemoryArtifactStore, MemoryTrainingData


def _square_data(n: int = 6, side: int = 40, size: int = 128) -> MemoryTrainingData:
    data = MemoryTrainingData()
    rng = np.random.default_rng(0)
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        y, x = rng.integers(0, size - side, 2)
        mask[y : y + side, x : x + side] = 1
        img = (rng.normal(50, 5, (size, size)) + mask * 100).astype(np.uint8)[..., None]
        data.add_reference(f"r{i}", img, mask, "train")
    return data


def test_object_sizes_widths_and_intensities() -> None:
    data = _square_data()
    fp = measure_fingerprint(data.reference(), PairCache(data), 1)
    assert fp.spatial_dims == 2 and fp.shape_median == (128.0, 128.0) and fp.spacing_median is None
    cls = fp.classes[0]
    assert cls.extent[1] == pytest.approx(40) and cls.single_share == 1.0 and cls.image_share == 1.0
    assert 30 <= cls.thickness <= 42  # a 40-px square's inscribed width
    assert cls.largest_size == pytest.approx(1600)
    assert fp.foreground_intensity[2] == pytest.approx(150, abs=3) and not fp.ct_like
    assert fp.empty_share == 0.0 and fp.gap > 40


def test_it_is_measured_once_per_content() -> None:
    data, store = _square_data(), MemoryArtifactStore()
    first = fingerprint(data.reference(), PairCache(data), 1, store)
    loads = data.loads
    again = fingerprint(data.reference(), PairCache(data), 1, store)
    assert again == first and data.loads == loads  # read from the store, no pixel read
    data.add_reference("new", np.zeros((8, 8, 1), np.uint8), np.zeros((8, 8), np.uint8), "train")
    assert fingerprint(data.reference(), PairCache(data), 1, store).n_images == 7


def test_ct_like_volumes_are_recognised() -> None:
    data = MemoryTrainingData()
    rng = np.random.default_rng(1)
    for i in range(3):
        vol = rng.normal(-800, 100, (16, 16, 8)).astype(np.float32)
        mask = np.zeros((16, 16, 8), np.uint8)
        mask[4:10, 4:10, 2:6] = 1
        vol[mask > 0] = rng.normal(40, 10, int(mask.sum()))
        data.add_reference(f"ct{i}", vol[..., None], mask, "train")
    fp = measure_fingerprint(data.reference(), PairCache(data), 1)
    assert fp.spatial_dims == 3 and fp.ct_like
    lo, hi, mean, _ = fp.foreground_intensity
    assert lo < mean < hi and 20 < mean < 60


def test_an_axis_with_a_direction_is_told_from_symmetric_ones() -> None:
    # Ultrasound-like: bright at the top (skin), fading with depth; columns alike.
    data = MemoryTrainingData()
    rng = np.random.default_rng(2)
    depth = np.linspace(200, 20, 96)[:, None]
    for i in range(4):
        img = np.clip(depth + rng.normal(0, 10, (96, 80)), 0, 255).astype(np.uint8)
        mask = np.zeros((96, 80), np.uint8)
        mask[40:60, 30:50] = 1
        data.add_reference(f"us{i}", img[..., None], mask, "train")
    rows, cols = measure_fingerprint(data.reference(), PairCache(data), 1).profile_asymmetry
    assert rows > 0.6 and cols < 0.1
    # Noise with squares anywhere: nothing tells one end of either axis from the other.
    squares = _square_data(n=12)
    assert (
        max(measure_fingerprint(squares.reference(), PairCache(squares), 1).profile_asymmetry) < 0.2
    )


def test_the_labels_order_along_each_axis_is_measured() -> None:
    # Label 1 always left of label 2; up or down of it at random.
    data = MemoryTrainingData()
    rng = np.random.default_rng(3)
    for i in range(8):
        mask = np.zeros((64, 64), np.uint8)
        y1, y2 = rng.integers(5, 50, 2)
        mask[y1 : y1 + 8, 5:15] = 1
        mask[y2 : y2 + 8, 40:50] = 2
        img = (50 + 100 * (mask > 0)).astype(np.uint8)[..., None]
        data.add_reference(f"o{i}", img, mask, "train")
    rows, cols = measure_fingerprint(data.reference(), PairCache(data), 2).label_order
    assert cols == 1.0 and rows < 0.9
    # Too few images holding both labels: not judged. One label: nothing to order.
    assert measure_fingerprint(data.reference()[:4], PairCache(data), 2).label_order == ()
    squares = _square_data()
    assert measure_fingerprint(squares.reference(), PairCache(squares), 1).label_order == ()


def _whole_image_ridge_widths(region: np.ndarray) -> np.ndarray:
    """The reference: the same transforms over the whole image."""
    if not region.any():
        return np.zeros(0)
    dist = ndimage.distance_transform_edt(region)
    return 2.0 * dist[region & (dist >= ndimage.maximum_filter(dist, size=3))]


@pytest.mark.parametrize("shape", [(120, 90), (30, 40, 24)])
def test_ridge_widths_on_the_bounding_box_are_the_whole_images(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape))
    for trial in range(40):
        seeds = rng.random(shape) > (0.9995 if trial % 2 else 0.99)
        region = ndimage.binary_dilation(seeds, iterations=int(rng.integers(0, 6)))
        if trial % 4 == 0:
            region[-1] = True  # on the image's edge
        if trial % 5 == 0:
            region[:] = trial % 10 == 0  # the whole image, or nothing
        got = _ridge_widths(region)
        assert np.array_equal(got, _whole_image_ridge_widths(region)), trial
