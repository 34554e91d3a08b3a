"""Sliding-window inference from a manifest and weights.

:class:`Predictor` repeats the manifest's preprocessing, runs MONAI's
``sliding_window_inference`` with Gaussian blending (any image size), and returns
the label map, class probabilities and an uncertainty score.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from medloop.domain.image import Image
from medloop.domain.model import ModelManifest
from medloop.ml.device import resolve_device
from medloop.ml.network import build_network
from medloop.ml.preprocess import prepare

__all__ = [
    "Prediction",
    "Predictor",
    "normalized_entropy",
    "state_dict_from_bytes",
    "state_dict_to_bytes",
]


def state_dict_to_bytes(state_dict: dict[str, torch.Tensor]) -> bytes:
    """A ``state_dict`` serialised with ``torch.save`` (the ``weights.pt`` of a version)."""
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    return buf.getvalue()


def state_dict_from_bytes(data: bytes) -> dict[str, torch.Tensor]:
    """The ``state_dict`` in ``data`` (tensors only: ``weights_only`` loading, on the CPU)."""
    state: dict[str, torch.Tensor] = torch.load(
        io.BytesIO(data), map_location="cpu", weights_only=True
    )
    return state


@dataclass(frozen=True)
class Prediction:
    """One image's result.

    Attributes:
        label_map: ``(H, W)`` uint8, values ``0..K``.
        probabilities: ``(K+1, H, W)`` float32 softmax.
        uncertainty: mean normalised entropy of the softmax over the pixels whose
            predicted or runner-up class is foreground; in ``[0, 1]``, 0 = certain.
    """

    label_map: np.ndarray
    probabilities: np.ndarray
    uncertainty: float


def normalized_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy of ``(K+1, H, W)`` probabilities divided by ``log(K+1)``: ``(H, W)`` in [0, 1]."""
    p = probs.clamp_min(1e-8)
    return -(p * p.log()).sum(0) / math.log(probs.shape[0])


def _uncertainty(probs: torch.Tensor) -> float:
    ent = normalized_entropy(probs)
    # Pixels in play: those where some foreground class has at least 10 % probability.
    region = probs[1:].max(0).values > 0.1
    if not bool(region.any()):
        return float(ent.mean())
    return float(ent[region].mean())


class Predictor:
    """Runs one model version. Thread-compatible for reads; build one per device."""

    def __init__(
        self,
        manifest: ModelManifest,
        state_dict: dict[str, torch.Tensor],
        device: str | torch.device | None = None,
        sw_batch_size: int = 8,
    ) -> None:
        self.manifest = manifest
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.model = build_network(manifest.network)
        self.model.load_state_dict(state_dict)
        self.model.to(self.device).eval()
        self.sw_batch_size = sw_batch_size

    @classmethod
    def from_bytes(
        cls, manifest: ModelManifest, weights: bytes, device: str | None = None
    ) -> Predictor:
        """A predictor from a serialised ``state_dict`` (what an artifact store keeps)."""
        return cls(manifest, state_dict_from_bytes(weights), device)

    @torch.inference_mode()
    def probabilities(self, x: np.ndarray) -> torch.Tensor:
        """Softmax ``(K+1, H, W)`` (on CPU) of one preprocessed image ``(C, H, W)``."""
        return self.forward_prepared(self.model, x, self.manifest, self.device, self.sw_batch_size)

    @staticmethod
    def forward_prepared(
        model: torch.nn.Module,
        x: np.ndarray,
        manifest: ModelManifest,
        device: torch.device,
        sw_batch_size: int = 8,
    ) -> torch.Tensor:
        """Sliding-window softmax of a preprocessed ``(C, H, W)`` image; model must be in eval mode."""
        t = torch.from_numpy(np.ascontiguousarray(x))[None].to(device)
        h, w = x.shape[1:]
        ph, pw = manifest.patch_size
        if h <= ph and w <= pw:
            # One window: pad to the network's divisor only, not to the full patch.
            d = manifest.network.divisor
            th, tw = max(-(-h // d) * d, 2 * d), max(-(-w // d) * d, 2 * d)  # norm needs > 1 px
            padded = torch.nn.functional.pad(t, (0, tw - w, 0, th - h), mode="constant")
            logits = model(padded)[..., :h, :w]
        else:
            logits = sliding_window_inference(
                t,
                roi_size=manifest.patch_size,
                sw_batch_size=sw_batch_size,
                predictor=model,
                overlap=manifest.sliding_window_overlap,
                mode="gaussian",
            )
        assert isinstance(logits, torch.Tensor)
        return torch.softmax(logits.float(), dim=1)[0].cpu()

    def predict(self, image: Image) -> Prediction:
        """Analyse one image at its own size."""
        return self.predict_many([image])[0]

    @staticmethod
    def _result(probs: torch.Tensor) -> Prediction:
        return Prediction(
            label_map=probs.argmax(0).to(torch.uint8).numpy(),
            probabilities=probs.numpy(),
            uncertainty=_uncertainty(probs),
        )

    @torch.inference_mode()
    def predict_many(self, images: list[Image]) -> list[Prediction]:
        """Analyse several images; those of one size that fit in a patch share one forward pass."""
        prepared = [prepare(im, self.manifest.preprocess) for im in images]
        out: list[Prediction | None] = [None] * len(images)
        ph, pw = self.manifest.patch_size
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, x in enumerate(prepared):
            if x.shape[1] <= ph and x.shape[2] <= pw:
                groups.setdefault(x.shape, []).append(i)
            else:
                out[i] = self._result(self.probabilities(x))
        d = self.manifest.network.divisor
        for shape, idx in groups.items():
            h, w = shape[1], shape[2]
            th, tw = max(-(-h // d) * d, 2 * d), max(-(-w // d) * d, 2 * d)
            for start in range(0, len(idx), self.sw_batch_size):
                chunk = idx[start : start + self.sw_batch_size]
                batch = torch.from_numpy(np.stack([prepared[i] for i in chunk])).to(self.device)
                batch = torch.nn.functional.pad(batch, (0, tw - w, 0, th - h), mode="constant")
                probs = torch.softmax(self.model(batch)[..., :h, :w].float(), dim=1).cpu()
                for j, i in enumerate(chunk):
                    out[i] = self._result(probs[j])
        return [p for p in out if p is not None]
