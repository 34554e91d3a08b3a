"""The memory-lean volume inference path gives the results of the plain formulas it replaced.

Normalisation, softmax, resampling back, argmax and uncertainty now work in place or a
slab at a time (a CT-sized volume's maps are hundreds of MiB each); each is compared with
the whole-array formula it replaced, and a whole 3D prediction in many slabs with one in
a single slab.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import medloop.ml.inference as inference
from medloop.domain.image import Image
from medloop.domain.labels import LabelSet
from medloop.domain.model import ModelManifest, NetworkSpec, PreprocessSpec
from medloop.ml.network import build_network
from medloop.ml.preprocess import prepare_pixels
from medloop.ml.resample import resample_probabilities


def _old_normalize(x: np.ndarray, lo_p: float, hi_p: float) -> np.ndarray:
    out = np.empty_like(x)
    for c in range(x.shape[0]):
        ch = x[c]
        lo, hi = np.percentile(ch, [lo_p, hi_p])
        ch = np.clip(ch, lo, hi)
        std = float(ch.std())
        out[c] = (ch - float(ch.mean())) / std if std > 1e-6 else 0.0
    return out


def _old_resample(probs: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    out = F.interpolate(probs[None].float(), size=shape, mode="trilinear", align_corners=False)[0]
    return out / out.sum(0, keepdim=True).clamp_min(1e-8)


def _old_uncertainty(probs: torch.Tensor) -> float:
    ent = inference.normalized_entropy(probs)
    region = probs[1:].max(0).values > 0.1
    if not bool(region.any()):
        return float(ent.mean())
    return float(ent[region].mean())


@pytest.fixture
def small_slabs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slabs of 100 voxels, so a small volume is reduced in many slabs."""
    monkeypatch.setattr(inference, "_SLAB_VOXELS", 100)


def _probs(rng: np.random.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.softmax(torch.from_numpy(rng.normal(0, 2, shape).astype(np.float32)), dim=0)


def test_normalisation_in_place_equals_the_plain_formula() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.normal(100, 40, (30, 20, 12, 1)).astype(np.float32)
    pixels[0, 0, 0] = 1e5  # an outlier the percentiles clip
    flat = np.full((6, 6, 4, 1), 7.0, np.float32)  # a constant channel becomes zeros
    for px in (pixels, flat):
        spec = PreprocessSpec()
        got = prepare_pixels(px, spec)
        want = _old_normalize(np.moveaxis(px, -1, 0).copy(), *spec.clip_percentiles)
        np.testing.assert_array_equal(got, want)


def test_resampling_back_in_place_equals_the_plain_formula() -> None:
    probs = _probs(np.random.default_rng(1), (3, 9, 11, 7))
    for shape in ((20, 17, 15), (40, 300, 100)):  # one slab, and two
        got = resample_probabilities(probs.clone(), shape)
        torch.testing.assert_close(got, _old_resample(probs, shape), rtol=0, atol=0)


def test_slab_reductions_equal_whole_array_ones(small_slabs: None) -> None:
    probs = _probs(np.random.default_rng(2), (3, 13, 8, 6))
    np.testing.assert_array_equal(
        inference._argmax_labels(probs), probs.argmax(0).to(torch.uint8).numpy()
    )
    assert inference._uncertainty(probs) == _old_uncertainty(probs)
    quiet = torch.zeros_like(probs)
    quiet[0] = 1.0  # nothing in play: the mean over every voxel
    assert inference._uncertainty(quiet) == _old_uncertainty(quiet)
    logits = torch.from_numpy(np.random.default_rng(3).normal(0, 3, (1, 3, 13, 8, 6)))
    want = torch.softmax(logits.float(), dim=1)
    torch.testing.assert_close(inference._softmax_(logits.float()), want, rtol=0, atol=1e-7)


def test_slabs_cover_the_first_axis_once() -> None:
    assert inference._slabs((5, 2, 2)) == [slice(0, 5)]
    slabs = inference._slabs((10, inference._SLAB_VOXELS // 4))
    covered = [i for sl in slabs for i in range(10)[sl]]
    assert covered == list(range(10)) and len(slabs) == math.ceil(10 / 4)


def test_a_sliding_window_volume_is_the_same_in_many_slabs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(0)
    manifest = ModelManifest(
        NetworkSpec(1, 3, (4, 8), spatial_dims=3),
        PreprocessSpec(target_spacing=(1.0, 1.0, 1.0)),
        LabelSet.from_names(["a", "b"]),
        (8, 8, 8),
    )
    predictor = inference.Predictor(manifest, build_network(manifest.network).state_dict(), "cpu")
    rng = np.random.default_rng(4)
    image = Image(
        pixels=rng.normal(0, 50, (20, 18, 8, 1)).astype(np.float32),
        spacing=(0.8, 0.8, 2.0),
        affine=np.diag([0.8, 0.8, 2.0, 1.0]),
    )
    monkeypatch.setattr(inference, "_SLAB_VOXELS", 1 << 30)
    whole = predictor.predict(image)
    monkeypatch.setattr(inference, "_SLAB_VOXELS", 50)
    slabs = predictor.predict(image)
    np.testing.assert_array_equal(slabs.label_map, whole.label_map)
    assert slabs.uncertainty == pytest.approx(whole.uncertainty, abs=1e-12)
    assert whole.probabilities is None  # streamed: never held whole
    assert whole.label_map.shape == (20, 18, 8)
