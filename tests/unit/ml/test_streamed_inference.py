"""A streamed volume analysis gives the whole-volume path's results in a few maps' memory.

The grid's softmax streamed slab by slab equals MONAI's ``sliding_window_inference``;
resampling slab by slab equals :func:`resample_probabilities` within float rounding;
labels and uncertainty equal the whole-volume path's; and the peak memory of a streamed
prediction is bounded by a few float32 maps of the volume (RSS, in a subprocess).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import medloop.ml.resample as resample
import medloop.ml.sliding as sliding
from medloop.domain.image import Image
from medloop.domain.labels import LabelSet
from medloop.domain.model import ModelManifest, NetworkSpec, PreprocessSpec
from medloop.ml.inference import Predictor
from medloop.ml.network import build_network
from medloop.ml.preprocess import prepare
from medloop.ml.resample import resample_probabilities, resample_slabs
from medloop.ml.sliding import stream_softmax


def _manifest(patch: tuple[int, int, int] = (8, 8, 8), **kw: object) -> ModelManifest:
    return ModelManifest(
        NetworkSpec(1, 3, (4, 8), spatial_dims=3),
        PreprocessSpec(target_spacing=(1.0, 1.0, 1.0)),
        LabelSet.from_names(["a", "b"]),
        patch,
        **kw,  # type: ignore[arg-type]
    )


def _predictor(manifest: ModelManifest, sw_batch_size: int) -> Predictor:
    torch.manual_seed(0)
    net = build_network(manifest.network)
    return Predictor(manifest, net.state_dict(), "cpu", sw_batch_size=sw_batch_size)


@pytest.mark.parametrize(
    ("grid", "batch", "overlap"),
    [
        ((20, 17, 19), 1, 0.25),  # windows > 1 along every axis
        ((20, 17, 19), 5, 0.5),  # batches that span several starts of the first axis
        ((5, 22, 9), 3, 0.25),  # the first axis padded to the window, and cropped
        ((30, 6, 12), 2, 0.0),  # another axis padded; no overlap
    ],
)
@torch.inference_mode()
def test_streamed_softmax_equals_monai(
    grid: tuple[int, int, int], batch: int, overlap: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sliding, "_PLANE_VOXELS", 1)  # one plane finished a step
    manifest = _manifest(sliding_window_overlap=overlap)
    p = _predictor(manifest, batch)
    x = np.random.default_rng(0).normal(0, 1, (1, *grid)).astype(np.float32)
    want = Predictor.forward_prepared(p.model, x, manifest, p.device, batch)
    slabs = list(stream_softmax(p.model, torch.from_numpy(x)[None], (8, 8, 8), overlap, batch))
    assert [s for s, _ in slabs] == list(np.cumsum([0] + [q.shape[1] for _, q in slabs])[:-1])
    assert len(slabs) == grid[0]
    got = torch.cat([q for _, q in slabs], dim=1)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-7)


@pytest.mark.parametrize(
    ("grid", "shape"),
    [
        ((9, 11, 7), (20, 17, 15)),  # up
        ((30, 12, 14), (11, 25, 14)),  # down along the first axis, equal along the last
        ((16, 14, 16), (20, 18, 8)),  # a CT-like anisotropy
        ((5, 4, 3), (5, 4, 3)),  # unchanged
    ],
)
def test_resampling_slab_by_slab_equals_the_whole_volume(
    grid: tuple[int, int, int], shape: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resample, "_PLANES_VOXELS", 1)  # one output plane a step
    rng = np.random.default_rng(1)
    probs = torch.softmax(torch.from_numpy(rng.normal(0, 2, (3, *grid)).astype(np.float32)), 0)
    want = resample_probabilities(probs.clone(), shape)
    cuts = sorted({0, grid[0], *rng.integers(1, grid[0], 3).tolist()})
    slabs = [(a, probs[:, a:b]) for a, b in itertools.pairwise(cuts)]
    out = list(resample_slabs(iter(slabs), grid, shape))
    assert [s for s, _ in out] == list(np.cumsum([0] + [q.shape[1] for _, q in out])[:-1])
    torch.testing.assert_close(torch.cat([q for _, q in out], dim=1), want, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("shape", "spacing", "batch"),
    [
        ((20, 18, 8), (0.8, 0.8, 2.0), 1),  # anisotropic, resampled back
        ((20, 18, 8), (0.8, 0.8, 2.0), 4),
        ((17, 21, 19), None, 2),  # no resampling
        ((6, 30, 25), (1.3, 0.9, 1.0), 3),  # the first axis grows to one window
        ((26, 9, 13), (0.7, 1.1, 1.6), 8),
    ],
)
@torch.inference_mode()
def test_streamed_prediction_equals_the_whole_volume_path(
    shape: tuple[int, int, int], spacing: tuple[float, float, float] | None, batch: int
) -> None:
    p = _predictor(_manifest(keep_largest=(1,)), batch)
    rng = np.random.default_rng(4)
    image = Image(
        pixels=rng.normal(0, 50, (*shape, 1)).astype(np.float32),
        spacing=spacing,
        affine=np.diag([*(spacing or (1.0, 1.0, 1.0)), 1.0]),
    )
    x = prepare(image, p.manifest.preprocess)
    assert any(g > w for g, w in zip(x.shape[1:], p.manifest.patch_size, strict=True))
    whole_probs = resample_probabilities(p.probabilities(x), shape)
    whole = p._labelled(whole_probs)
    streamed = p.predict(image)
    assert streamed.probabilities is None
    top2 = np.sort(whole_probs.numpy(), axis=0)[-2:]
    differ = streamed.label_map != whole.label_map
    assert np.all(top2[1][differ] - top2[0][differ] < 1e-5)
    assert abs(streamed.uncertainty - whole.uncertainty) < 1e-6


_MEMORY_SCRIPT = """
import json, resource, sys
import numpy as np, torch
from medloop.domain.image import Image
from medloop.domain.labels import LabelSet
from medloop.domain.model import ModelManifest, NetworkSpec, PreprocessSpec
from medloop.ml.inference import Predictor
from medloop.ml.network import build_network

torch.set_num_threads(1)
m = ModelManifest(NetworkSpec(1, 3, (2, 4), spatial_dims=3),
                  PreprocessSpec(target_spacing=(1.0, 1.0, 1.0)),
                  LabelSet.from_names(["a", "b"]), (16, 16, 16))
p = Predictor(m, build_network(m.network).state_dict(), "cpu", sw_batch_size=2)
def volume(shape):
    rng = np.random.default_rng(0)
    px = rng.integers(-1000, 1000, (*shape, 1)).astype(np.int16)
    return Image(px, spacing=(1.0, 1.0, 1.5), affine=np.diag([1.0, 1.0, 1.5, 1.0]))
p.predict(volume((40, 40, 24)))  # everything loaded and warmed up
big = volume(tuple(int(s) for s in sys.argv[1].split(",")))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
p.predict(big)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
print(json.dumps({"peak_kib": peak, "float32_kib": big.pixels.size * 4 / 1024}))
"""


def test_a_streamed_volume_peaks_at_a_few_maps_of_it() -> None:
    """The peak RSS of a streamed prediction (int16 input resampled to a 1.5x grid) over
    the RSS before it, in float32 maps of the volume. glibc's mmap threshold is fixed,
    so freed buffers leave the RSS (its default grows with the largest free, which keeps
    freed heap pages resident and measures the allocator, not the algorithm). Measured
    on a 2-core x86-64: 3.0 maps streamed (1.5 of them the prepared input on the grid),
    6.6 by the whole-volume path it replaced."""
    src = str(Path(__file__).resolve().parents[3] / "src")
    env = {**os.environ, "PYTHONPATH": src, "MALLOC_MMAP_THRESHOLD_": "131072"}
    run = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, "160,160,96"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    maps = figures["peak_kib"] / figures["float32_kib"]
    assert maps < 3.5, f"streamed peak: {maps:.2f} float32 maps of the volume"


@pytest.mark.parametrize(("size", "overlap"), [((20, 17, 19), 0.25), ((30, 9, 12), 0.5)])
def test_weight_sums_of_finished_planes_equal_a_whole_weight_map(
    size: tuple[int, int, int], overlap: float
) -> None:
    """The weight sums made for the planes being finished are the ones a whole-grid map
    accumulates window by window (what the ring of weights held), bit for bit."""
    from monai.data.utils import compute_importance_map, dense_patch_slices

    roi = (8, 8, 8)
    w = compute_importance_map(roi, mode="gaussian")[None, None]
    windows = dense_patch_slices(size, roi, sliding.scan_interval(size, roi, overlap))
    windows = sorted(windows, key=lambda s: s[0].start)
    whole = torch.zeros((1, *size))
    for win in windows:
        whole[(slice(None), *win)] += w[0]
    for start, stop in ((0, 1), (3, 9), (size[0] - 2, size[0]), (0, size[0])):
        got = sliding._weight_sums(windows, w, start, stop, size[1:])
        assert torch.equal(got, whole[:, start:stop])
