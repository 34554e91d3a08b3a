"""Augmentation without MONAI's metadata tracking: the same patches, and the switch restored."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import get_track_meta

from medloop.ml.data import build_augmentation, untracked


def _patches(
    shape: tuple[int, ...], track: bool, **kwargs: object
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Augmented images and masks, alternating, and the images before augmentation."""
    aug = build_augmentation(len(shape), **kwargs)  # type: ignore[arg-type]
    aug.set_random_state(seed=3)
    rng = np.random.default_rng(0)
    out, before = [], []
    for _ in range(12):
        d = {
            "image": torch.from_numpy(rng.normal(size=(2, *shape)).astype(np.float32)),
            "mask": torch.from_numpy((rng.random((1, *shape)) > 0.5).astype(np.float32)),
        }
        before.append(d["image"].clone())
        if track:
            r = aug(d)
        else:
            with untracked():
                r = aug(d)
            assert type(r["image"]) is torch.Tensor  # no MetaTensor
        out += [
            torch.as_tensor(r["image"]).as_subclass(torch.Tensor),
            torch.as_tensor(r["mask"]).as_subclass(torch.Tensor),
        ]
    return out, before


@pytest.mark.parametrize(
    ("shape", "kwargs"),
    [((40, 40), {}), ((16, 16, 12), {}), ((16, 16, 12), {"in_plane_only": True})],
)
def test_untracked_augmentation_gives_the_same_patches(
    shape: tuple[int, ...], kwargs: dict[str, object]
) -> None:
    (tracked, before), (plain, _) = (
        _patches(shape, True, **kwargs),
        _patches(shape, False, **kwargs),
    )
    assert len(tracked) == len(plain) == 24
    for a, b in zip(tracked, plain, strict=True):
        assert torch.equal(a, b)
    # Something did happen: the flips, rotations and intensity changes are on.
    changed = [not torch.equal(a, b) for a, b in zip(tracked[::2], before, strict=True)]
    assert sum(changed) >= 6


def test_the_switch_is_restored_even_after_an_error() -> None:
    assert get_track_meta()
    with pytest.raises(RuntimeError), untracked():
        assert not get_track_meta()
        raise RuntimeError("boom")
    assert get_track_meta()
