"""Training items and the weighted, foreground-aware patch sampler with augmentation.

A :class:`TrainItem` is one preprocessed image ``(C, H, W)`` float32 with its label
map ``(H, W)`` and a weight. :class:`PatchSampler` draws batches: items with
probability proportional to their weight, patch centres on foreground with
probability ``fg_prob``, then MONAI augmentation (flips, 90° rotations, affine
rotation + scaling, intensity scale/shift/contrast).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandAffined,
    RandFlipd,
    RandGaussianNoised,
    RandRotate90d,
    RandScaleIntensityd,
    RandShiftIntensityd,
)

__all__ = ["Batch", "PatchSampler", "TrainItem", "build_augmentation"]


@dataclass
class TrainItem:
    """One training pair. ``image``: ``(C, H, W)`` float32 (preprocessed); ``mask``: ``(H, W)`` uint8."""

    key: str
    image: np.ndarray
    mask: np.ndarray
    weight: float = 1.0
    _fg: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.mask.shape != self.image.shape[1:]:
            raise ValueError(
                f"{self.key}: image {self.image.shape} and mask {self.mask.shape} differ"
            )
        if self.weight <= 0:
            raise ValueError(f"{self.key}: weight must be > 0, got {self.weight}")

    @property
    def foreground(self) -> np.ndarray:
        """Flat indices of foreground pixels (cached)."""
        if self._fg is None:
            self._fg = np.flatnonzero(self.mask.ravel() > 0)
        return self._fg


@dataclass
class Batch:
    """``images`` ``(B, C, h, w)`` float32, ``masks`` ``(B, 1, h, w)`` int64, ``weights`` ``(B,)``.

    ``weights`` are the loss factors: ``√w`` when sampling already favours heavy
    items (so the total effect of a weight is ``w``), ``w`` when sampling is uniform.
    """

    images: torch.Tensor
    masks: torch.Tensor
    weights: torch.Tensor
    keys: list[str]


def build_augmentation(rotate: bool = True) -> Compose:
    """MONAI dictionary transforms over ``{"image": (C,h,w), "mask": (1,h,w)}``."""
    keys = ["image", "mask"]
    return Compose(
        [
            RandFlipd(keys, prob=0.5, spatial_axis=0),
            RandFlipd(keys, prob=0.5, spatial_axis=1),
            RandRotate90d(keys, prob=0.5, max_k=3),
            RandAffined(
                keys,
                prob=0.3 if rotate else 0.0,
                rotate_range=(np.pi / 6,),
                scale_range=((-0.2, 0.25),),
                mode=("bilinear", "nearest"),
                padding_mode="reflection",
            ),
            RandScaleIntensityd("image", prob=0.3, factors=0.2),
            RandShiftIntensityd("image", prob=0.3, offsets=0.2),
            RandAdjustContrastd("image", prob=0.2, gamma=(0.7, 1.5)),
            RandGaussianNoised("image", prob=0.1, std=0.05),
        ]
    )


class PatchSampler:
    """Draws :class:`Batch` es of ``patch_size`` patches from weighted items.

    Args:
        items: the training pairs.
        patch_size: ``(h, w)`` of each patch in pixels.
        batch_size: patches per batch.
        rng: the only source of randomness (augmentation is reseeded from it), so a
            saved ``rng.bit_generator.state`` resumes the exact stream.
        fg_prob: probability that a patch is centred on a foreground pixel.
        weighted: draw items with probability proportional to ``item.weight``.
        augment: apply :func:`build_augmentation`.
    """

    def __init__(
        self,
        items: list[TrainItem],
        patch_size: tuple[int, int],
        batch_size: int,
        rng: np.random.Generator,
        *,
        fg_prob: float = 0.5,
        weighted: bool = True,
        augment: bool = True,
    ) -> None:
        if not items:
            raise ValueError("no training items")
        self.items = items
        self.patch_size = patch_size
        self.batch_size = batch_size
        self.rng = rng
        self.fg_prob = fg_prob
        # A weight w acts half in sampling (probability ∝ √w) and half in the loss
        # (factor √w, see Batch.weights), so a sample's total pull is ∝ w.
        w = np.sqrt(np.array([it.weight for it in items], dtype=np.float64))
        self.probs = w / w.sum() if weighted else np.full(len(items), 1.0 / len(items))
        self.loss_exponent = 0.5 if weighted else 1.0
        self.augmentation = build_augmentation() if augment else None

    def _crop(self, item: TrainItem) -> tuple[np.ndarray, np.ndarray]:
        ph, pw = self.patch_size
        img, msk = item.image, item.mask
        h, w = msk.shape
        if h < ph or w < pw:  # pad small images (reflect keeps statistics plausible)
            py, px = max(0, ph - h), max(0, pw - w)
            pad = ((py // 2, py - py // 2), (px // 2, px - px // 2))
            img = np.pad(img, ((0, 0), *pad), mode="reflect" if min(h, w) > 1 else "edge")
            msk = np.pad(msk, pad, mode="constant")
            h, w = msk.shape
            fg = np.flatnonzero(msk.ravel() > 0)
        else:
            fg = item.foreground
        if fg.size and self.rng.random() < self.fg_prob:
            cy, cx = divmod(int(fg[self.rng.integers(fg.size)]), w)
            y0 = int(np.clip(cy - ph // 2 + self.rng.integers(-ph // 4, ph // 4 + 1), 0, h - ph))
            x0 = int(np.clip(cx - pw // 2 + self.rng.integers(-pw // 4, pw // 4 + 1), 0, w - pw))
        else:
            y0 = int(self.rng.integers(0, h - ph + 1))
            x0 = int(self.rng.integers(0, w - pw + 1))
        return img[:, y0 : y0 + ph, x0 : x0 + pw], msk[y0 : y0 + ph, x0 : x0 + pw]

    def next_batch(self) -> Batch:
        idx = self.rng.choice(len(self.items), size=self.batch_size, p=self.probs)
        images, masks = [], []
        if self.augmentation is not None:
            self.augmentation.set_random_state(seed=int(self.rng.integers(2**31 - 1)))
        for i in idx:
            img, msk = self._crop(self.items[int(i)])
            if self.augmentation is not None:
                d = self.augmentation(
                    {
                        "image": torch.from_numpy(np.ascontiguousarray(img)),
                        "mask": torch.from_numpy(msk[None].astype(np.float32)),
                    }
                )
                img_t = torch.as_tensor(d["image"]).float()
                msk_t = torch.as_tensor(d["mask"]).round().long()
            else:
                img_t = torch.from_numpy(np.ascontiguousarray(img))
                msk_t = torch.from_numpy(msk[None].astype(np.int64))
            images.append(img_t)
            masks.append(msk_t)
        weights = torch.tensor(
            [self.items[int(i)].weight ** self.loss_exponent for i in idx], dtype=torch.float32
        )
        return Batch(
            images=torch.stack(images),
            masks=torch.stack(masks),
            weights=weights,
            keys=[self.items[int(i)].key for i in idx],
        )
