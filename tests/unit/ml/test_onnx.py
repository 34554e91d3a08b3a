"""ONNX Runtime serves a version exactly as PyTorch does: label maps equal, probabilities
within 1e-4, in 2D and 3D, through one window, sliding windows and resampling."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from medloop.domain.image import Image
from medloop.domain.labels import LabelSet
from medloop.domain.model import ModelManifest, NetworkSpec, PreprocessSpec
from medloop.errors import ConfigError
from medloop.ml.inference import Predictor
from medloop.ml.network import build_network
from medloop.ml.onnx_runtime import OnnxNetwork, export_onnx
from medloop.ml.trainer import TrainSpec, train

from .conftest import disc_pair, make_items

TOLERANCE = 1e-4


def _assert_same(torch_pred: Predictor, ort_pred: Predictor, images: list[Image]) -> None:
    a = torch_pred.predict_many(images)
    b = ort_pred.predict_many(images)
    for pa, pb in zip(a, b, strict=True):
        assert pa.label_map.shape == pb.label_map.shape
        assert np.array_equal(pa.label_map, pb.label_map)
        if pa.probabilities is None or pb.probabilities is None:  # a streamed volume
            assert pa.probabilities is None and pb.probabilities is None
        else:
            assert np.abs(pa.probabilities - pb.probabilities).max() <= TOLERANCE
        assert abs(pa.uncertainty - pb.uncertainty) <= TOLERANCE


@pytest.fixture(scope="module")
def trained_2d() -> tuple[ModelManifest, dict[str, torch.Tensor]]:
    manifest = ModelManifest(
        NetworkSpec(1, 2, (8, 16, 32), num_res_units=1),
        PreprocessSpec(),
        LabelSet.from_names(["disc"]),
        (32, 32),
        keep_largest=(1,),
    )
    spec = TrainSpec(steps=40, batch_size=4, lr=3e-3, warmup_steps=4, val_every=0, device="cpu")
    return manifest, train(manifest, make_items(0, 6), spec).state_dict


def _images(seed: int, sizes: list[int]) -> list[Image]:
    rng = np.random.default_rng(seed)
    return [Image(pixels=disc_pair(rng, size=s, n=4)[0]) for s in sizes]


def test_2d_one_window_and_sliding_windows_match(trained_2d) -> None:  # type: ignore[no-untyped-def]
    manifest, weights = trained_2d
    ref = Predictor(manifest, weights, "cpu")
    ort = Predictor.from_onnx(manifest, export_onnx(manifest, weights))
    assert ort.runtime == "onnxruntime" and ref.runtime == "torch"
    # 24 and 30 fit one window (padded to the divisors, batched together); 48 and 71x50
    # take Gaussian-blended sliding windows.
    images = _images(1, [24, 30, 30, 48])
    rng = np.random.default_rng(2)
    odd = rng.integers(0, 255, (71, 50, 1)).astype(np.uint8)
    images.append(Image(pixels=odd))
    _assert_same(ref, ort, images)


def test_2d_resampling_to_the_plan_grid_and_back_matches(trained_2d) -> None:  # type: ignore[no-untyped-def]
    manifest, weights = trained_2d
    scaled = replace(manifest, preprocess=PreprocessSpec(scale=(0.5, 0.5)))
    ref = Predictor(scaled, weights, "cpu")
    ort = Predictor.from_onnx(scaled, export_onnx(scaled, weights))
    _assert_same(ref, ort, _images(3, [64, 90]))


def test_3d_volumes_match() -> None:
    manifest = ModelManifest(
        NetworkSpec(1, 3, (8, 16, 32), num_res_units=1, spatial_dims=3),
        PreprocessSpec(),
        LabelSet.from_names(["left", "right"]),
        (16, 16, 16),
    )
    torch.manual_seed(0)
    weights = build_network(manifest.network).state_dict()
    ref = Predictor(manifest, weights, "cpu")
    ort = Predictor.from_onnx(manifest, export_onnx(manifest, weights))
    rng = np.random.default_rng(4)
    vols = [
        Image(pixels=rng.normal(0, 1, shape).astype(np.float32)[..., None], spacing=(1.0, 1.0, 2.0))
        for shape in [(12, 14, 10), (20, 24, 18)]
    ]
    _assert_same(ref, ort, vols)


def test_a_broken_model_is_refused_with_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ONNX Runtime cannot load"):
        OnnxNetwork(b"not an onnx model")
