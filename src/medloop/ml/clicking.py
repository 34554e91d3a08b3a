"""Training an interactive model: every batch gets the guidance a clinician would give.

Each patch of a batch is drawn into one of three situations, as DeepEdit and RITM train:

* **automatic** (no guidance at all), so one network also serves without clicks;
* **from scratch**: first clicks in the objects (sometimes a box), no previous mask;
* **refining**: the network's own automatic prediction is the previous mask, and clicks
  go where it is wrong — one at the largest error region, then sometimes one or two
  more after running the network again with the clicks so far (iterative training).

The forward passes that simulate the clinician run without gradients.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from medloop.domain.clicks import Box, Guidance
from medloop.domain.model import GuidanceSpec
from medloop.ml.guidance import encode, first_clicks, next_click
from medloop.ml.reductions import class_argmax

__all__ = ["GuidedBatch"]

P_AUTOMATIC = 0.2
P_SCRATCH = 0.2
P_MORE = 0.5
P_BOX = 0.3


class GuidedBatch:
    """Adds simulated guidance channels to training batches.

    Args:
        spec: the manifest's guidance.
        num_foreground: K.
        rng: the trainer's random stream (so a resumed run repeats itself).
    """

    def __init__(self, spec: GuidanceSpec, num_foreground: int, rng: np.random.Generator) -> None:
        self.spec, self.k, self.rng = spec, num_foreground, rng

    @torch.no_grad()
    def _predict(self, model: torch.nn.Module, x: torch.Tensor, guidance: np.ndarray) -> np.ndarray:
        was_training = model.training
        model.eval()
        logits = model(torch.cat([x, torch.from_numpy(guidance).to(x.device)], dim=1))
        model.train(was_training)
        return class_argmax(logits, 1).cpu().numpy()

    def _box(self, truth: np.ndarray) -> Box | None:
        labels = [v for v in range(1, self.k + 1) if (truth == v).any()]
        if not labels:
            return None
        label = labels[int(self.rng.integers(len(labels)))]
        comp, n = ndimage.label(truth == label)
        box = ndimage.find_objects(comp)[int(self.rng.integers(n))]
        assert box is not None  # a label that is present has components
        return Box(tuple(float(s.start) for s in box), tuple(float(s.stop - 1) for s in box), label)

    def __call__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, C, *patch)`` with the guidance channels appended, for truths ``y`` ``(B, 1, *patch)``."""
        shape = tuple(x.shape[2:])
        truth = y[:, 0].cpu().numpy()
        n = x.shape[0]
        mode = self.rng.random(n)
        refine = mode >= P_AUTOMATIC + P_SCRATCH
        guidance = [Guidance() for _ in range(n)]
        previous: list[np.ndarray | None] = [None] * n
        for i in np.flatnonzero((mode >= P_AUTOMATIC) & ~refine):
            box = self._box(truth[i]) if self.rng.random() < P_BOX else None
            guidance[i] = Guidance(tuple(first_clicks(truth[i], self.k, self.rng)), box)
        if refine.any():  # the network runs on the refining patches only
            rows = np.flatnonzero(refine)
            xr = x[torch.from_numpy(rows).to(x.device)]
            empty = np.zeros((len(rows), self.spec.channels(self.k), *shape), np.float32)
            auto = self._predict(model, xr, empty)
            rounds = 1 + (int(self.rng.integers(1, 3)) if self.rng.random() < P_MORE else 0)
            current = auto
            for j, i in enumerate(rows):
                previous[i] = auto[j]  # the automatic answer stays the previous mask
            for r in range(rounds):
                for j, i in enumerate(rows):
                    click = next_click(current[j], truth[i], self.k)
                    if click is not None:
                        guidance[i] = Guidance((*guidance[i].clicks, click))
                if r + 1 < rounds:
                    sub = self._encode(
                        [guidance[i] for i in rows], [previous[i] for i in rows], shape
                    )
                    current = self._predict(model, xr, sub)
        return torch.cat(
            [x, torch.from_numpy(self._encode(guidance, previous, shape)).to(x.device)], 1
        )

    def _encode(
        self, guidance: list[Guidance], previous: list[np.ndarray | None], shape: tuple[int, ...]
    ) -> np.ndarray:
        """Guidance channels ``(len(guidance), G, *shape)`` of a batch's patches."""
        return np.stack(
            [
                encode(g, p, shape, self.k, self.spec)
                for g, p in zip(guidance, previous, strict=True)
            ]
        )
