"""3D training, resampling to the plan's grid and back, post-processing, anti-forgetting terms."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from medloop.domain.image import Image
from medloop.domain.labels import LabelSet
from medloop.domain.model import ModelManifest, NetworkSpec, PreprocessSpec
from medloop.ml.data import TrainItem
from medloop.ml.inference import Predictor
from medloop.ml.network import build_network
from medloop.ml.postprocess import keep_largest_component
from medloop.ml.preprocess import prepare, prepare_mask
from medloop.ml.resample import resample_labels
from medloop.ml.retention import encoder_parameter_names
from medloop.ml.trainer import TrainSpec, evaluate_items, train

SPEC = TrainSpec(steps=40, batch_size=2, lr=3e-3, warmup_steps=4, val_every=0, device="cpu")


def _sphere_items(seed: int, count: int, size: int = 16) -> list[TrainItem]:
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[:size, :size, :size]
    items = []
    for i in range(count):
        c = rng.integers(5, size - 5, 3)
        r = rng.integers(3, 5)
        mask = (((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) <= r * r).astype(np.uint8)
        mask[mask > 0] += (xx[mask > 0] > c[2]).astype(np.uint8)  # two labels: halves
        img = rng.normal(0, 0.3, mask.shape) + (mask > 0) * 2.0
        items.append(TrainItem(f"v{seed}-{i}", img[None].astype(np.float32), mask))
    return items


def _manifest_3d() -> ModelManifest:
    return ModelManifest(
        NetworkSpec(1, 3, (8, 16, 32), num_res_units=1, spatial_dims=3),
        PreprocessSpec(),
        LabelSet.from_names(["left", "right"]),
        (16, 16, 16),
    )


def test_a_3d_network_learns_two_labels_on_volumes() -> None:
    manifest = _manifest_3d()
    items, val = _sphere_items(0, 6), _sphere_items(1, 3)
    torch.manual_seed(0)
    before = evaluate_items(build_network(manifest.network), val, manifest, torch.device("cpu"))
    res = train(manifest, items, replace(SPEC, steps=60))
    model = build_network(manifest.network)
    model.load_state_dict(res.state_dict)
    after = evaluate_items(model, val, manifest, torch.device("cpu"))
    assert after > before + 0.3, (before, after)


def test_inference_resamples_to_the_grid_and_back() -> None:
    manifest = ModelManifest(
        NetworkSpec(1, 2, (8, 16)),
        PreprocessSpec(scale=(0.5, 0.5)),
        LabelSet.from_names(["disc"]),
        (32, 32),
    )
    image = Image(pixels=np.random.default_rng(0).integers(0, 255, (70, 45, 1)).astype(np.uint8))
    assert prepare(image, manifest.preprocess).shape == (1, 35, 22)
    pred = Predictor(manifest, build_network(manifest.network).state_dict(), "cpu").predict(image)
    assert pred.label_map.shape == (70, 45) and pred.probabilities.shape == (2, 70, 45)
    assert np.allclose(pred.probabilities.sum(0), 1.0, atol=1e-4)


def test_volumes_resample_to_a_target_spacing() -> None:
    spec = PreprocessSpec(target_spacing=(1.0, 1.0, 2.0))
    vol = Image(pixels=np.zeros((20, 20, 10, 1), np.float32), spacing=(0.5, 0.5, 2.0))
    assert prepare(vol, spec).shape == (1, 10, 10, 10)
    mask = np.zeros((20, 20, 10), np.uint8)
    mask[4:8, 4:8, 2:6] = 1
    small = prepare_mask(mask, spec, vol.spacing, 2)
    assert small.shape == (10, 10, 10) and small.sum() == 2 * 2 * 4


def test_label_resampling_keeps_thin_structures() -> None:
    lab = np.zeros((64, 64), np.uint8)
    lab[:, 30:32] = 1  # a 2-px line
    half = resample_labels(lab, (32, 32), 2)
    assert half[:, 15].all() or half[:, 16].all()


def test_keep_largest_component_per_label() -> None:
    lab = np.zeros((10, 10), np.uint8)
    lab[0:2, 0:2] = 1
    lab[5:9, 5:9] = 1
    lab[0, 9] = 2
    out = keep_largest_component(lab, [1])
    assert out[0, 0] == 0 and out[6, 6] == 1 and out[0, 9] == 2


def test_the_encoder_is_the_down_path_and_the_bottom() -> None:
    model = build_network(NetworkSpec(1, 2, (8, 16, 32), num_res_units=1))
    enc = encoder_parameter_names(model)
    names = [n for n, _ in model.named_parameters()]
    assert any(n.startswith("model.0.") for n in enc) and not any(
        n.startswith("model.2.") for n in enc
    )
    assert 0 < len(enc) < len(names)


def _drift(
    state: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor], items: list[TrainItem]
) -> float:
    manifest = _manifest_3d()
    a, b = build_network(manifest.network), build_network(manifest.network)
    a.load_state_dict(state)
    b.load_state_dict(teacher)
    a.eval()
    b.eval()
    with torch.no_grad():
        x = torch.from_numpy(np.stack([it.image for it in items]))
        return float((torch.softmax(a(x), 1) - torch.softmax(b(x), 1)).abs().mean())


def test_distillation_and_l2sp_keep_a_finetune_closer_to_its_parent() -> None:
    manifest = _manifest_3d()
    replay = [replace(it, distill=True) for it in _sphere_items(0, 4)]
    parent = train(manifest, replay, replace(SPEC, steps=40)).state_dict
    wrong = [replace(it, mask=np.zeros_like(it.mask), weight=8.0) for it in _sphere_items(5, 4)]
    plain = train(manifest, wrong + replay, replace(SPEC, steps=30), init_state=parent).state_dict
    kept = train(
        manifest, wrong + replay, replace(SPEC, steps=30, distill=2.0, l2sp=0.05), init_state=parent
    ).state_dict
    assert _drift(kept, parent, replay) < _drift(plain, parent, replay)


def test_ema_returns_averaged_weights() -> None:
    manifest = _manifest_3d()
    items = _sphere_items(0, 2)
    last = train(manifest, items, replace(SPEC, steps=5)).state_dict
    averaged = train(manifest, items, replace(SPEC, steps=5, ema=0.9)).state_dict
    assert any(not torch.equal(last[k], averaged[k]) for k in last if last[k].is_floating_point())


def test_small_components_are_removed_per_label() -> None:
    from medloop.ml.postprocess import remove_small_components

    lab = np.zeros((10, 10), np.uint8)
    lab[0:2, 0:2] = 1  # 4 px
    lab[5:9, 5:9] = 1  # 16 px
    lab[0, 9] = 2
    out = remove_small_components(lab, [(1, 5)])
    assert out[0, 0] == 0 and out[6, 6] == 1 and out[0, 9] == 2
    assert not remove_small_components(lab, [(1, 100), (2, 2)]).any()
