"""Test-time flips: the averaged network, the manifest field, and inference on every path."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from medloop.domain.image import Image
from medloop.domain.model import ModelManifest
from medloop.errors import ConfigError
from medloop.ml.inference import Predictor
from medloop.ml.mirroring import Mirrored, flip_subsets
from medloop.ml.network import build_network


def test_flip_subsets_are_every_combination_with_the_identity_first() -> None:
    assert flip_subsets(()) == [()]
    assert flip_subsets((0, 1)) == [(), (0,), (1,), (0, 1)]
    assert len(flip_subsets((0, 1, 2))) == 8


def test_mirrored_is_the_mean_of_the_flipped_back_outputs() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 2, 3, padding=1)  # not symmetric: flips change its output
    x = torch.randn(2, 1, 8, 6)
    with torch.no_grad():
        want = (
            conv(x)
            + conv(x.flip(2)).flip(2)
            + conv(x.flip(3)).flip(3)
            + conv(x.flip(2, 3)).flip(2, 3)
        ) / 4
        got = Mirrored(conv, (0, 1))(x)
        assert torch.allclose(got, want, atol=1e-6)
        assert not torch.allclose(got, conv(x), atol=1e-3)
        # An output that does not depend on orientation stays what it was.
        assert torch.allclose(Mirrored(lambda t: t * 2, (0, 1))(x), x * 2)


def test_the_manifest_keeps_its_flips_and_refuses_axes_it_does_not_have(
    manifest: ModelManifest,
) -> None:
    flipped = replace(manifest, test_time_flips=(0, 1))
    assert ModelManifest.from_dict(flipped.to_dict()).test_time_flips == (0, 1)
    assert ModelManifest.from_dict(manifest.to_dict()).test_time_flips == ()
    old = manifest.to_dict()
    del old["test_time_flips"]  # a manifest written before flips existed
    assert ModelManifest.from_dict(old).test_time_flips == ()
    for bad in ((2,), (0, 0), (-1,)):
        with pytest.raises(ConfigError, match="test-time flips"):
            replace(manifest, test_time_flips=bad)


@pytest.mark.parametrize("size", [24, 80])  # one window, and sliding windows
def test_inference_averages_the_flips_on_every_path(manifest: ModelManifest, size: int) -> None:
    torch.manual_seed(0)
    state = build_network(manifest.network).state_dict()
    rng = np.random.default_rng(0)
    image = Image(rng.integers(0, 255, (size, size + 8, 1)).astype(np.uint8))
    plain = Predictor(manifest, state, "cpu").predict(image)
    flipped_manifest = replace(manifest, test_time_flips=(0, 1))
    flipped = Predictor(flipped_manifest, state, "cpu").predict(image)
    assert plain.probabilities is not None and flipped.probabilities is not None
    assert not np.allclose(plain.probabilities, flipped.probabilities, atol=1e-4)
    np.testing.assert_allclose(flipped.probabilities.sum(0), 1.0, atol=1e-5)
    if size <= manifest.patch_size[0]:
        # One window: the image given upside down and reversed gets the mirrored answer
        # (sliding windows sit at other places on a flipped image, so only here).
        mirrored = Image(np.ascontiguousarray(image.pixels[::-1, ::-1]))
        back = Predictor(flipped_manifest, state, "cpu").predict(mirrored)
        assert back.probabilities is not None
        np.testing.assert_allclose(
            back.probabilities[:, ::-1, ::-1], flipped.probabilities, atol=2e-4
        )


def test_click_refinement_does_not_flip(manifest: ModelManifest) -> None:
    predictor = Predictor(
        replace(manifest, test_time_flips=(0,)), build_network(manifest.network).state_dict(), "cpu"
    )
    assert isinstance(predictor.net, Mirrored)
    assert isinstance(predictor.model, torch.nn.Module)  # what refinement runs
