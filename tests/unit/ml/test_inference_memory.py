"""The memory-lean volume inference path gives the results of the plain formulas it replaced.

Normalisation, softmax, resampling back, argmax and uncertainty now work in place or a
slab at a time (a CT-sized volume's maps are hundreds of MiB each); each is compared with
the whole-array formula it replaced, and a whole 3D prediction in many slabs with one in
a single slab.
"""

from __future__ import annotations

import gzip
import math
import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

import medloop.domain.measurements as measurements
import medloop.ml.inference as inference
import medloop.ml.postprocess as postprocess
import medloop.ml.reductions as reductions
from medloop.domain.image import Image
from medloop.domain.labels import LabelSet
from medloop.domain.model import ModelManifest, NetworkSpec, PreprocessSpec
from medloop.io import decode_image
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
    ent = reductions.normalized_entropy(probs)
    region = probs[1:].max(0).values > 0.1
    if not bool(region.any()):
        return float(ent.mean())
    return float(ent[region].mean())


@pytest.fixture
def small_slabs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slabs of 100 voxels, so a small volume is reduced in many slabs."""
    monkeypatch.setattr(reductions, "SLAB_VOXELS", 100)


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
        reductions.argmax_labels(probs), probs.argmax(0).to(torch.uint8).numpy()
    )
    assert reductions.uncertainty(probs) == _old_uncertainty(probs)
    quiet = torch.zeros_like(probs)
    quiet[0] = 1.0  # nothing in play: the mean over every voxel
    assert reductions.uncertainty(quiet) == _old_uncertainty(quiet)
    logits = torch.from_numpy(np.random.default_rng(3).normal(0, 3, (1, 3, 13, 8, 6)))
    want = torch.softmax(logits.float(), dim=1)
    torch.testing.assert_close(reductions.softmax_(logits.float()), want, rtol=0, atol=1e-7)


def test_slabs_cover_the_first_axis_once() -> None:
    assert reductions.slabs((5, 2, 2)) == [slice(0, 5)]
    slabs = reductions.slabs((10, reductions.SLAB_VOXELS // 4))
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
    monkeypatch.setattr(reductions, "SLAB_VOXELS", 1 << 30)
    whole = predictor.predict(image)
    monkeypatch.setattr(reductions, "SLAB_VOXELS", 50)
    slabs = predictor.predict(image)
    np.testing.assert_array_equal(slabs.label_map, whole.label_map)
    assert slabs.uncertainty == pytest.approx(whole.uncertainty, abs=1e-12)
    assert whole.probabilities is None  # streamed: never held whole
    assert whole.label_map.shape == (20, 18, 8)


def _old_keep_largest(labels: np.ndarray, values: tuple[int, ...]) -> np.ndarray:
    out = labels.copy()
    structure = np.ones((3,) * labels.ndim, dtype=bool)
    for value in values:
        region = labels == value
        comp, n = ndimage.label(region, structure=structure)
        if n > 1:
            sizes = np.bincount(comp.ravel())
            sizes[0] = 0
            out[region & (comp != int(sizes.argmax()))] = 0
    return out


def _old_remove_small(labels: np.ndarray, min_sizes: tuple[tuple[int, int], ...]) -> np.ndarray:
    out = labels.copy()
    structure = np.ones((3,) * labels.ndim, dtype=bool)
    for value, size in min_sizes:
        region = labels == value
        comp, n = ndimage.label(region, structure=structure)
        if n:
            sizes = np.bincount(comp.ravel())
            small = np.flatnonzero(sizes < size)
            out[region & np.isin(comp, small[small > 0])] = 0
    return out


@pytest.mark.parametrize("chunk", [7, 1000, 1 << 22])
def test_postprocessing_in_chunks_equals_the_plain_formula(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(postprocess, "_CHUNK", chunk)
    monkeypatch.setattr(measurements, "_CHUNK", chunk)
    rng = np.random.default_rng(5)
    for shape in ((40, 30), (24, 20, 16)):
        labels = (rng.random(shape) * 3.4).astype(np.uint8)  # 0..3, many small components
        keep = postprocess.keep_largest_component(labels, (1, 3))
        np.testing.assert_array_equal(keep, _old_keep_largest(labels, (1, 3)))
        small = postprocess.remove_small_components(labels, ((1, 3), (2, 40)))
        np.testing.assert_array_equal(small, _old_remove_small(labels, ((1, 3), (2, 40))))


def _traced_peak(work: Callable[[], object]) -> int:
    """Bytes numpy (and Python) allocated at most while ``work`` ran, over before it."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_postprocessing_needs_no_int64_copy_of_the_volume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Component sizes counted a chunk at a time: the peak is the label copy, a mask and
    scipy's int32 component map (6 bytes a voxel), not an int64 copy of that map more
    (the old ``np.bincount`` of the whole map: 14 bytes a voxel)."""
    monkeypatch.setattr(postprocess, "_CHUNK", 1 << 16)
    monkeypatch.setattr(measurements, "_CHUNK", 1 << 16)
    rng = np.random.default_rng(6)
    labels = (rng.random((128, 128, 96)) * 2.2).astype(np.uint8)
    peak = _traced_peak(lambda: postprocess.keep_largest_component(labels, (1, 2)))
    assert peak < 8 * labels.size, f"{peak / labels.size:.1f} bytes a voxel"


def _int16_volume(shape: tuple[int, int, int]) -> tuple[bytes, np.ndarray]:
    import nibabel as nib

    arr = np.random.default_rng(7).integers(-1024, 2000, shape).astype(np.int16)
    img = nib.Nifti1Image(arr, np.diag([0.7, 0.7, 2.5, 1.0]))
    return gzip.compress(img.to_bytes(), compresslevel=1), arr


def test_an_int16_volume_is_decoded_as_int16_in_half_the_memory() -> None:
    """A CT's int16 voxels stay int16 (exact; the network's input is made from them in
    float32 when it is prepared): the decoder's peak is its file read plus one reoriented
    copy, about one float32 copy of the volume (two before: a float32 copy more)."""
    data, arr = _int16_volume((96, 96, 64))
    got: list[Image] = []
    peak = _traced_peak(lambda: got.append(decode_image(data, name="ct.nii.gz")))
    assert got[0].pixels.dtype == np.int16
    np.testing.assert_array_equal(got[0].pixels[..., 0], arr)
    assert peak < 1.25 * arr.size * 4, f"{peak / (arr.size * 4):.2f} float32 copies"


def test_an_int16_volume_gives_the_float32_volume_s_prediction() -> None:
    """The prediction from int16 voxels equals the one from the same voxels in float32
    (what the decoder returned before), bit for bit."""
    torch.manual_seed(1)
    manifest = ModelManifest(
        NetworkSpec(1, 3, (4, 8), spatial_dims=3),
        PreprocessSpec(target_spacing=(1.0, 1.0, 1.0)),
        LabelSet.from_names(["a", "b"]),
        (8, 8, 8),
        keep_largest=(1,),
    )
    predictor = inference.Predictor(manifest, build_network(manifest.network).state_dict(), "cpu")
    _, arr = _int16_volume((20, 18, 8))
    geometry = {"spacing": (0.8, 0.8, 2.0), "affine": np.diag([0.8, 0.8, 2.0, 1.0])}
    as_int16 = predictor.predict(Image(pixels=arr[..., None], **geometry))  # type: ignore[arg-type]
    as_float = predictor.predict(
        Image(pixels=arr[..., None].astype(np.float32), **geometry)  # type: ignore[arg-type]
    )
    np.testing.assert_array_equal(as_int16.label_map, as_float.label_map)
    assert as_int16.uncertainty == as_float.uncertainty


def _old_measure(label_map: np.ndarray, labels: LabelSet) -> list[tuple[int, int, int]]:
    structure = np.ones((3,) * label_map.ndim, dtype=bool)
    counts = np.bincount(label_map.ravel(), minlength=labels.num_classes)
    out = []
    for lab in labels.labels:
        size = int(counts[lab.value]) if lab.value < counts.size else 0
        n = largest = 0
        if size:
            comp, n = ndimage.label(label_map == lab.value, structure=structure)
            largest = int(np.bincount(comp.ravel())[1:].max())
        out.append((size, int(n), largest))
    return out


def test_measurements_in_chunks_equal_the_plain_formula_in_less_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Per-class sizes and components counted a chunk at a time: the same figures, and
    no int64 copy of the label map or of its component map (the old peak: 12 bytes a
    voxel more than the component map)."""
    monkeypatch.setattr(measurements, "_CHUNK", 1 << 16)
    labels = LabelSet.from_names(["a", "b", "c"])
    rng = np.random.default_rng(8)
    label_map = (rng.random((128, 128, 96)) * 2.6).astype(np.uint8)  # no class 3
    got: list[list[measurements.ClassMeasurement]] = []
    peak = _traced_peak(lambda: got.append(measurements.measure(label_map, labels, 2.0)))
    figures = [(m.area_px, m.components, m.largest_component_px) for m in got[0]]
    assert figures == _old_measure(label_map, labels)
    assert got[0][0].volume_mm3 == 2.0 * figures[0][0]
    assert peak < 6 * label_map.size, f"{peak / label_map.size:.1f} bytes a voxel"
    assert list(measurements.value_counts(np.array([3, 0, 3]), 2)) == [1, 0, 0, 2]
