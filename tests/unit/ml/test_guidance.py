"""Click guidance: the encoding, the simulated clinician, and an interactive model that uses clicks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from medloop.domain.clicks import Box, Click, Guidance, check_guidance
from medloop.domain.image import Image
from medloop.domain.labels import LabelSet
from medloop.domain.model import GuidanceSpec, ModelManifest, NetworkSpec, PreprocessSpec
from medloop.errors import ConfigError, InputError
from medloop.ml.data import TrainItem
from medloop.ml.guidance import (
    CENTRE_SIGMA,
    _interior_point,
    encode,
    error_regions,
    first_clicks,
    next_click,
    to_grid,
)
from medloop.ml.inference import Predictor
from medloop.ml.interactive import RefineSession
from medloop.ml.network import build_network
from medloop.ml.preprocess import prepare_pixels
from medloop.ml.trainer import TrainSpec, train

SPEC = GuidanceSpec(sigma=2.0)


def test_channels_per_label_and_where_the_clicks_go() -> None:
    g = Guidance((Click((3.0, 4.0), 1, True), Click((10.0, 2.0), 2, False)), Box((1, 1), (5, 6), 2))
    prev = np.zeros((16, 12), np.uint8)
    prev[8:10, 8:10] = 1
    out = encode(g, prev, (16, 12), 2, SPEC)
    assert out.shape == (SPEC.channels(2), 16, 12) == (8, 16, 12)
    assert out[0, 3, 4] == pytest.approx(1.0) and out[0].argmax() == 3 * 12 + 4  # label 1 positive
    assert out[3, 10, 2] == pytest.approx(1.0) and out[1].max() == 0  # label 2 negative
    assert out[5, 1:6, 1:7].min() == 1.0 and out[5].sum() == 5 * 6  # label 2's box
    assert out[6].sum() == 4 and out[7].sum() == 0  # previous mask of label 1, 2
    assert encode(Guidance(), None, (16, 12), 2, SPEC).max() == 0  # automatic: all zero


def test_volume_guidance_and_moving_to_the_grid() -> None:
    out = encode(
        Guidance((Click((2.0, 3.0, 4.0), 1),)),
        None,
        (8, 8, 8),
        1,
        GuidanceSpec(box=False, previous=False),
    )
    assert out.shape == (2, 8, 8, 8) and np.unravel_index(out[0].argmax(), (8, 8, 8)) == (2, 3, 4)
    moved = to_grid(Guidance((Click((9.5, 19.5), 1),)), (0.5, 0.5))
    assert moved.clicks[0].index == pytest.approx((4.5, 9.5))  # pixel centres line up


def test_the_next_click_goes_to_the_centre_of_the_largest_error() -> None:
    truth = np.zeros((40, 40), np.uint8)
    truth[5:15, 5:15] = 1  # missed: 100 px
    truth[30:33, 30:33] = 1  # missed: 9 px
    pred = np.zeros_like(truth)
    pred[20:26, 5:9] = 1  # false: 24 px
    click = next_click(pred, truth, 1)
    assert click == Click((9.0, 9.0), 1, True) or click.index in {
        (9.0, 9.0),
        (9.0, 10.0),
        (10.0, 9.0),
        (10.0, 10.0),
    }
    assert click is not None and click.positive and 5 <= click.index[0] < 15
    pred[5:15, 5:15] = 1
    second = next_click(pred, truth, 1)
    assert (
        second is not None and not second.positive and 20 <= second.index[0] < 26
    )  # the false part
    assert [r[2] for r in error_regions(pred, truth, 1)] == [False, True]
    assert next_click(truth, truth, 1) is None


def _whole_array_interior(region: np.ndarray) -> tuple[float, ...]:
    """The reference: distances and blur over the whole array, padded by one."""
    inner = tuple(slice(1, -1) for _ in region.shape)
    dist = ndimage.distance_transform_edt(np.pad(region, 1))[inner]
    mass = ndimage.gaussian_filter(
        np.pad(region, 1).astype(np.float64), CENTRE_SIGMA, mode="constant"
    )
    score = np.where(dist == dist.max(), mass[inner], -1.0)
    return tuple(float(v) for v in np.unravel_index(int(score.argmax()), region.shape))


def test_a_click_on_a_thin_sheet_goes_to_its_middle_not_its_edge() -> None:
    """Every point of a sheet one voxel thick is as far from its border; the click goes
    where the most of the sheet is around it, as a clinician clicks the middle: at least
    two blur widths in from every edge (farther in, the blur sees only sheet)."""
    sheet = np.zeros((20, 40, 30), bool)
    sheet[10, 5:35, 4:24] = True  # a 30 x 20 sheet
    z, y, x = _interior_point(sheet)
    inset = 2 * CENTRE_SIGMA
    assert z == 10 and 5 + inset <= y <= 34 - inset and 4 + inset <= x <= 23 - inset
    truth = np.zeros((20, 40, 30), np.uint8)
    truth[8:11, 5:35, 4:24] = 1
    pred = truth.copy()
    pred[10] = 0  # the prediction misses the sheet on the slab's far face
    click = next_click(pred, truth, 1)
    assert click is not None and click.positive and click.index == (z, y, x)


@pytest.mark.parametrize("shape", [(40, 56, 40), (64, 64), (7, 9, 5)])
def test_the_interior_point_is_the_whole_arrays_on_its_bounding_box(
    shape: tuple[int, ...],
) -> None:
    rng = np.random.default_rng(len(shape))
    compared = 0
    for trial in range(120):
        seeds = rng.random(shape) > 0.995
        seeds[tuple(int(rng.integers(0, s)) for s in shape)] = True
        blobs = ndimage.binary_dilation(seeds, iterations=int(rng.integers(0, 4)))
        if trial % 3 == 0:
            blobs[0] = True  # a region on the image's edge, where the edge is its border
        comp, n = ndimage.label(blobs)
        region = comp == int(rng.integers(1, n + 1))
        assert _interior_point(region) == _whole_array_interior(region), trial
        compared += 1
    assert compared == 120
    with pytest.raises(ValueError, match="empty"):
        _interior_point(np.zeros(shape, bool))


def test_first_clicks_land_in_objects() -> None:
    truth = np.zeros((30, 30), np.uint8)
    truth[10:20, 10:20] = 1
    for seed in range(5):
        clicks = first_clicks(truth, 1, np.random.default_rng(seed))
        for c in clicks:
            r, col = (int(v) for v in c.index)
            assert (truth[r, col] == 1) == c.positive


def test_bad_guidance_is_refused() -> None:
    ok = Guidance((Click((1.0, 2.0), 1),))
    check_guidance(ok, (10, 10), 1)
    for bad, message in [
        (Guidance((Click((1.0, 20.0), 1),)), "outside"),
        (Guidance((Click((1.0, float("nan")), 1),)), "not a number"),
        (Guidance((Click((1.0, 2.0), 3),)), "label 3"),
        (Guidance((Click((1.0, 2.0, 3.0), 1),)), "2 coordinates"),
        (Guidance(tuple(Click((1.0, 1.0), 1) for _ in range(65))), "at most 64"),
    ]:
        with pytest.raises(InputError, match=message):
            check_guidance(bad, (10, 10), 1)


def _discs(seed: int, count: int) -> list[TrainItem]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    items = []
    for i in range(count):
        mask = np.zeros((32, 32), np.uint8)
        for _ in range(2):
            cy, cx = rng.integers(6, 26, 2)
            mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= 16] = 1
        img = rng.normal(60, 12, (32, 32)) + mask * 25.0  # faint: clicks help
        items.append(
            TrainItem(f"d{seed}-{i}", prepare_pixels(img[..., None], PreprocessSpec()), mask)
        )
    return items


def test_an_interactive_model_trains_and_refines_with_clicks() -> None:
    labels = LabelSet.from_names(["disc"])
    manifest = ModelManifest(
        NetworkSpec(1 + SPEC.channels(1), 2, (8, 16, 32), num_res_units=1),
        PreprocessSpec(),
        labels,
        (32, 32),
        guidance=SPEC,
    )
    res = train(
        manifest,
        _discs(0, 6),
        TrainSpec(steps=30, batch_size=4, lr=3e-3, warmup_steps=3, val_every=0, device="cpu"),
    )
    pred = Predictor(manifest, res.state_dict, "cpu")
    image = Image(pixels=np.random.default_rng(1).integers(0, 255, (40, 36, 1)).astype(np.uint8))
    auto = pred.predict(image)  # zero guidance: the automatic model
    assert auto.label_map.shape == (40, 36)
    clicks = (Click((20.0, 18.0), 1), Click((3.0, 30.0), 1, positive=False))
    refined = pred.refine(image, Guidance(clicks), auto.label_map)
    assert refined.label_map.shape == (40, 36) and np.allclose(
        refined.probabilities.sum(0), 1, atol=1e-4
    )
    assert refined.label_map[20, 18] == 1 and refined.label_map[3, 30] == 0  # each click holds
    plain = ModelManifest(NetworkSpec(1, 2, (8, 16)), PreprocessSpec(), labels, (32, 32))
    with pytest.raises(ConfigError, match="clicks"):
        Predictor(plain, build_network(plain.network).state_dict(), "cpu").refine(image, Guidance())


def test_refine_runs_only_a_window_around_the_clicks_on_a_large_image() -> None:
    labels = LabelSet.from_names(["disc"])
    manifest = ModelManifest(
        NetworkSpec(1 + SPEC.channels(1), 2, (8, 16)),
        PreprocessSpec(),
        labels,
        (16, 16),
        guidance=SPEC,
    )
    pred = Predictor(manifest, build_network(manifest.network).state_dict(), "cpu")
    image = Image(pixels=np.zeros((64, 64, 1), np.uint8))
    previous = np.zeros((64, 64), np.uint8)
    previous[50:60, 50:60] = 1
    out = pred.refine(image, Guidance((Click((5.0, 5.0), 1),)), previous)
    assert (out.label_map[50:60, 50:60] == 1).all()  # far from the click: unchanged
    assert torch.is_tensor(torch.from_numpy(out.probabilities))


def test_every_click_holds_at_its_own_pixel_on_a_downscaled_grid() -> None:
    """An untrained network's answer ignores clicks. After the hold each clicked input
    pixel takes the clicked side, although the network ran at a quarter of the size (a
    hold on the network's grid alone missed 30 of 300 such clicks)."""
    labels = LabelSet.from_names(["a", "b"])
    manifest = ModelManifest(
        NetworkSpec(1 + SPEC.channels(2), 3, (8, 16)),
        PreprocessSpec(scale=(0.25, 0.25)),
        labels,
        (16, 16),
        guidance=SPEC,
    )
    torch.manual_seed(3)
    pred = Predictor(manifest, build_network(manifest.network).state_dict(), "cpu")
    rng = np.random.default_rng(0)
    image = Image(pixels=rng.integers(0, 255, (61, 57, 1)).astype(np.uint8))
    session = RefineSession(pred, image, np.full((61, 57), 1, np.uint8))
    for _ in range(100):
        row, col = int(rng.integers(0, 61)), int(rng.integers(0, 57))
        click = Click((float(row), float(col)), int(rng.integers(1, 3)), bool(rng.random() < 0.5))
        got = session.refine(Guidance((click,))).prediction.label_map[row, col]
        assert (got == click.label) == click.positive, click
    both = (Click((10.0, 11.0), 1), Click((52.0, 40.0), 2, positive=False))
    out = session.refine(Guidance(both)).prediction.label_map
    assert out[10, 11] == 1 and out[52, 40] != 2
