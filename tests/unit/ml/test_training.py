"""The training loop learns, is deterministic, resumes, and honours correction weights."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from medloop.domain.model import ModelManifest
from medloop.ml.data import PatchSampler
from medloop.ml.inference import Predictor, state_dict_to_bytes
from medloop.ml.loss import WeightedDiceCELoss
from medloop.ml.network import build_network
from medloop.ml.trainer import TrainCallbacks, TrainSpec, evaluate_items, train
from medloop.storage.folder_registry import FolderCheckpoint

from .conftest import make_items

SPEC = TrainSpec(steps=40, batch_size=4, lr=3e-3, warmup_steps=5, val_every=0, device="cpu")


def test_tiny_training_beats_untrained(manifest: ModelManifest) -> None:
    items, val = make_items(0, 6), make_items(1, 3)
    torch.manual_seed(0)
    untrained = build_network(manifest.network)
    before = evaluate_items(untrained, val, manifest, torch.device("cpu"))
    res = train(manifest, items, replace(SPEC, steps=60, val_every=30), val_items=val)
    model = build_network(manifest.network)
    model.load_state_dict(res.state_dict)
    after = evaluate_items(model, val, manifest, torch.device("cpu"))
    assert after > before + 0.3, (before, after)
    assert res.best_val_dice is not None and res.best_step in (30, 60)


def test_training_is_deterministic_on_cpu(manifest: ModelManifest) -> None:
    items = make_items(0, 4)
    a = train(manifest, items, replace(SPEC, steps=8))
    b = train(manifest, items, replace(SPEC, steps=8))
    for k in a.state_dict:
        assert torch.equal(a.state_dict[k], b.state_dict[k]), k


@pytest.mark.parametrize("batch_threads", [0, 2])  # 2: batches built ahead are not counted
def test_resume_gives_the_same_weights(
    manifest: ModelManifest, tmp_path: Path, batch_threads: int
) -> None:
    items = make_items(0, 4)
    spec = replace(SPEC, steps=10, checkpoint_every=5, batch_threads=batch_threads)
    straight = train(manifest, items, spec)

    calls = {"n": 0}

    def stop_after_five() -> bool:
        calls["n"] += 1
        return calls["n"] > 5

    checkpoint = FolderCheckpoint(tmp_path / "run")
    partial = train(
        manifest,
        items,
        spec,
        checkpoint=checkpoint,
        callbacks=TrainCallbacks(should_stop=stop_after_five),
    )
    assert partial.steps == 5 and partial.stopped and checkpoint.load() is not None
    resumed = train(manifest, items, spec, checkpoint=checkpoint)
    assert resumed.steps == 10
    for k in straight.state_dict:
        assert torch.allclose(straight.state_dict[k], resumed.state_dict[k], atol=1e-6), k


def test_loss_weights_scale_each_sample() -> None:
    loss = WeightedDiceCELoss()
    logits = torch.randn(2, 2, 8, 8)
    target = torch.zeros(2, 1, 8, 8, dtype=torch.long)
    target[1, 0, 2:6, 2:6] = 1
    per = loss.per_sample(logits, target)
    got = loss(logits, target, torch.tensor([1.0, 8.0]))
    assert torch.allclose(got, (per[0] + 8 * per[1]) / 9)
    assert not torch.allclose(got, loss(logits, target, torch.tensor([1.0, 1.0])))


def test_sampler_draws_in_proportion_to_weight() -> None:
    items = make_items(0, 2, weight=1.0) + make_items(1, 1, weight=8.0)
    s = PatchSampler(items, (32, 32), 50, np.random.default_rng(0), augment=False)
    keys = [k for _ in range(20) for k in s.next_batch().keys]
    share = sum(k.startswith("s1-") for k in keys) / len(keys)
    assert abs(share - 8**0.5 / (8**0.5 + 2)) < 0.05  # sampling ∝ √w, the loss takes the other √w
    assert set(s.next_batch().weights.tolist()) <= {1.0, float(np.float32(8**0.5))}
    uniform = PatchSampler(
        items, (32, 32), 50, np.random.default_rng(0), augment=False, weighted=False
    )
    keys = [k for _ in range(20) for k in uniform.next_batch().keys]
    assert abs(sum(k.startswith("s1-") for k in keys) / len(keys) - 1 / 3) < 0.05


def test_finetune_follows_corrections_more_with_higher_weight(manifest: ModelManifest) -> None:
    """Would fail if w were ignored: reference says 'discs', one correction says 'nothing here'."""
    base = train(manifest, make_items(0, 6), replace(SPEC, steps=60))
    correction = make_items(7, 1, invert_mask=True)

    def fg_share_on_correction(weight: float) -> float:
        items = [*make_items(0, 6), replace(correction[0], weight=weight)]
        res = train(manifest, items, replace(SPEC, steps=40), init_state=base.state_dict)
        pred = Predictor(manifest, res.state_dict, "cpu")
        probs = pred.probabilities(correction[0].image)
        return float((probs.argmax(0) > 0).float().mean())

    light, heavy = fg_share_on_correction(1.0), fg_share_on_correction(16.0)
    assert heavy < 0.75 * light, (light, heavy)


def test_inference_from_manifest_alone_reproduces(manifest: ModelManifest, tmp_path: Path) -> None:
    res = train(manifest, make_items(0, 4), replace(SPEC, steps=10))
    weights = state_dict_to_bytes(res.state_dict)
    again = ModelManifest.from_dict(manifest.to_dict())
    item = make_items(3, 1)[0]
    a = Predictor(manifest, res.state_dict, "cpu").probabilities(item.image)
    b = Predictor.from_bytes(again, weights, "cpu").probabilities(item.image)
    assert torch.equal(a, b)


def test_any_size_inference(manifest: ModelManifest) -> None:
    res = train(manifest, make_items(0, 2), replace(SPEC, steps=2))
    pred = Predictor(manifest, res.state_dict, "cpu")
    for h, w in [(1, 1), (17, 33), (32, 32), (70, 45)]:
        x = np.random.default_rng(0).normal(size=(1, h, w)).astype(np.float32)
        p = pred.probabilities(x)
        assert p.shape == (2, h, w)
        assert torch.allclose(p.sum(0), torch.ones(h, w), atol=1e-5)


def test_batched_prediction_equals_one_by_one(manifest: ModelManifest) -> None:
    from medloop.domain.image import Image
    from medloop.ml.batcher import InferenceBatcher

    res = train(manifest, make_items(0, 2), replace(SPEC, steps=2))
    pred = Predictor(manifest, res.state_dict, "cpu")
    rng = np.random.default_rng(1)
    images = [
        Image(rng.integers(0, 255, (h, w, 1), dtype=np.uint8))
        for h, w in [(30, 30), (30, 30), (20, 40), (70, 50)]
    ]
    single = [pred.predict(im) for im in images]
    batched = pred.predict_many(images)
    for a, b in zip(single, batched, strict=True):
        assert np.array_equal(a.label_map, b.label_map)
        assert np.allclose(a.probabilities, b.probabilities, atol=1e-5)
    batcher = InferenceBatcher()
    try:
        import concurrent.futures as cf

        with cf.ThreadPoolExecutor(4) as pool:
            outs = list(pool.map(lambda im: batcher.predict(pred, im), images))
    finally:
        batcher.close()
    for a, b in zip(single, outs, strict=True):
        assert np.array_equal(a.label_map, b.label_map)
    assert batcher.items == len(images)


def test_augmentation_never_turns_a_directed_axis_upside_down() -> None:
    from medloop.ml.data import build_augmentation

    rows = np.repeat(np.arange(32, dtype=np.float32)[:, None], 32, axis=1)  # grows downwards

    def reversed_share(mirror_axes: tuple[int, ...] | None) -> float:
        aug = build_augmentation(2, square_plane=True, mirror_axes=mirror_axes)
        flipped = 0
        for seed in range(60):
            aug.set_random_state(seed=seed)
            out = aug({"image": rows[None].copy(), "mask": np.zeros((1, 32, 32), np.float32)})
            img = np.asarray(out["image"])[0]
            flipped += int(img[:4].mean() > img[-4:].mean())
        return flipped / 60

    assert reversed_share((1,)) == 0.0  # left-right flips only
    assert reversed_share(None) > 0.2  # every flip and 90-degree rotation: often reversed


def test_bf16_is_used_only_where_the_device_computes_it_natively(monkeypatch) -> None:
    import medloop.ml.device as device

    monkeypatch.setattr(device, "_cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert not device.bf16_is_native(torch.device("cpu"))
    monkeypatch.setattr(device, "_cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert device.bf16_is_native(torch.device("cpu"))
    monkeypatch.setattr(device, "_cpu_flags", lambda: frozenset({"amx_bf16"}))
    assert device.bf16_is_native(torch.device("cpu"))
    assert device.bf16_is_native(torch.device("cuda"))


def test_cpu_flags_come_from_proc_cpuinfo() -> None:
    from medloop.ml.device import _cpu_flags

    flags = _cpu_flags()
    if Path("/proc/cpuinfo").exists():
        text = Path("/proc/cpuinfo").read_text()
        assert flags and all(f in text for f in list(flags)[:5])


def test_training_in_bf16_autocast_learns_deterministically(
    manifest: ModelManifest, monkeypatch
) -> None:
    """The bfloat16 forward pass (forced here even where the CPU only emulates it)."""
    import medloop.ml.trainer as trainer

    monkeypatch.setattr(trainer, "bf16_is_native", lambda device: True)
    for amp, dtype in ((True, torch.bfloat16), (False, torch.float32)):
        run = trainer._Run(manifest, make_items(0, 2), replace(SPEC, amp=amp), None)
        seen: list[torch.dtype] = []
        run.model.register_forward_hook(lambda m, i, o, seen=seen: seen.append(o.dtype))
        run.train_step()
        assert run.use_amp is amp and seen == [dtype]
    items, val = make_items(0, 6), make_items(1, 3)
    torch.manual_seed(0)
    before = evaluate_items(build_network(manifest.network), val, manifest, torch.device("cpu"))
    a = train(manifest, items, replace(SPEC, steps=60, val_every=30), val_items=val)
    b = train(manifest, items, replace(SPEC, steps=60, val_every=30), val_items=val)
    for k in a.state_dict:
        assert a.state_dict[k].dtype != torch.bfloat16, k  # the weights stay float32
        assert torch.equal(a.state_dict[k], b.state_dict[k]), k
    assert a.best_val_dice is not None and a.best_val_dice > before + 0.3, (before, a)
    assert a.precision == "bfloat16"  # recorded, so a version says how it was trained
    plain = train(manifest, items, replace(SPEC, steps=2, val_every=0, amp=False))
    assert plain.precision == "float32"


def test_a_time_limit_ends_the_run_on_time_with_its_schedule_finished(
    manifest: ModelManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[torch.optim.Optimizer] = []
    real = torch.optim.AdamW

    def spying_adamw(*a: Any, **k: Any) -> torch.optim.Optimizer:
        made.append(real(*a, **k))
        return made[-1]

    monkeypatch.setattr(torch.optim, "AdamW", spying_adamw)
    rates: list[float] = []
    totals: list[int] = []

    def on_step(step: int, total: int, loss: float) -> None:
        rates.append(made[0].param_groups[0]["lr"])
        totals.append(total)

    spec = replace(SPEC, steps=100_000, warmup_steps=2, max_seconds=1.5)
    t0 = time.perf_counter()
    res = train(manifest, make_items(0, 4), spec, callbacks=TrainCallbacks(on_step=on_step))
    took = time.perf_counter() - t0
    assert 2 < res.steps < 100_000 and len(rates) == res.steps
    # progress is reported against the steps the time allows, not the 100 000
    assert abs(totals[-1] - res.steps) <= max(3, 0.2 * res.steps), (totals[-1], res.steps)
    assert all(t >= s for s, t in enumerate(totals, 1))
    assert 1.0 < took < 1.5 + 1.0, took  # ran until the limit, give or take two steps
    # the learning rate followed time, not the 100 000 steps: it decayed to near its floor
    assert rates[-1] < 0.1 * max(rates), (rates[-1], max(rates))


def test_a_time_limited_run_resumed_from_its_checkpoint_spends_only_the_time_left(
    manifest: ModelManifest, tmp_path: Path
) -> None:
    """A budgeted fine-tune that stops half-way (a worker shut down) and resumes keeps
    its clock: the two parts together take the budget, not the budget twice."""
    spec = replace(SPEC, steps=100_000, warmup_steps=2, max_seconds=2.0, checkpoint_every=0)
    items = make_items(0, 4)
    checkpoint = FolderCheckpoint(tmp_path / "run")
    started: list[float] = []

    def after_a_second() -> bool:  # asked before each step: a second after the first
        started.append(started[0] if started else time.perf_counter())
        return time.perf_counter() - started[0] > 1.0

    first = train(
        manifest,
        items,
        spec,
        checkpoint=checkpoint,
        callbacks=TrainCallbacks(should_stop=after_a_second),
    )
    assert first.stopped and checkpoint.load() is not None
    resumed_at: list[int] = []
    second = train(
        manifest,
        items,
        spec,
        checkpoint=checkpoint,
        callbacks=TrainCallbacks(on_resume=resumed_at.append),
    )
    assert resumed_at == [first.steps]
    assert not second.stopped and first.steps < second.steps < 100_000
    # about one second was left; a clock restarted at zero would run two more
    assert second.seconds < 0.75 * spec.max_seconds, (first.seconds, second.seconds)
