"""Sliding-window inference from a manifest and weights.

:class:`Predictor` repeats the manifest's preprocessing, runs sliding windows with
MONAI's Gaussian blending (any image size), and returns the label map, the class
probabilities (not for a volume larger than a patch) and an uncertainty score.

A volume whose grid is larger than one patch is streamed (:mod:`medloop.ml.sliding`):
its windows run in order along the first axis, each finished slab of the grid is
resampled to the input's grid, labelled and reduced to the uncertainty's sums, so no
whole-volume probability map is ever held (the README's "Volumes: upload to result and
memory" has the figures). 2D images, and volumes that fit in one patch, keep the
whole-array path.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from monai.data.utils import compute_importance_map
from monai.inferers import sliding_window_inference

from medloop.domain.clicks import Guidance
from medloop.domain.image import Image
from medloop.domain.model import ModelManifest
from medloop.ml.device import resolve_device
from medloop.ml.mirroring import Mirrored
from medloop.ml.network import build_network
from medloop.ml.postprocess import postprocess
from medloop.ml.preprocess import prepare
from medloop.ml.reductions import (
    StreamReducer,
    argmax_labels,
    softmax_,
    uncertainty,
)
from medloop.ml.resample import resample_probabilities, resample_slabs
from medloop.ml.sliding import stream_softmax

__all__ = [
    "Prediction",
    "Predictor",
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
        label_map: ``(*spatial)`` uint8, values ``0..K``, on the input's grid.
        probabilities: ``(K+1, *spatial)`` float32 softmax on the input's grid (for a
            refinement: of the window that was recomputed only); ``None`` for a volume
            larger than one patch, which is streamed and never holds it whole.
        uncertainty: mean normalised entropy of the softmax over the pixels whose
            predicted or runner-up class is foreground; in ``[0, 1]``, 0 = certain.
    """

    label_map: np.ndarray
    probabilities: np.ndarray | None
    uncertainty: float


def _autocast(device: torch.device) -> torch.autocast:
    """bf16 autocast on CUDA; a no-op on the CPU, where inference stays float32 (as ONNX
    Runtime serves it) even when training autocasts there."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _pad_to(x: torch.Tensor, divisors: tuple[int, ...]) -> torch.Tensor:
    """``(B, C, *spatial)`` zero-padded at the end of each axis to a multiple of its divisor."""
    pads: list[int] = []
    for size, d in zip(reversed(x.shape[2:]), reversed(divisors), strict=True):
        target = max(-(-size // d) * d, 2 * d)  # instance norm needs more than one voxel
        pads += [0, target - size]
    return torch.nn.functional.pad(x, pads, mode="constant")


Network = Callable[[torch.Tensor], torch.Tensor]
"""``(B, C, *spatial)`` -> logits ``(B, K+1, *spatial)``: the torch module, or ONNX Runtime."""


def _automatic(model: Network, manifest: ModelManifest) -> Network:
    """The network automatic inference runs: ``model``, averaged over the manifest's
    test-time flips when it names any."""
    return Mirrored(model, manifest.test_time_flips) if manifest.test_time_flips else model


class Predictor:
    """Runs one model version (2D or 3D). Thread-compatible for reads; build one per device.

    Inference repeats the manifest's preprocessing (colour, normalisation, resampling to
    the plan's grid), runs the network (one window, or sliding windows with Gaussian
    blending), resamples the class probabilities back to the input's grid and applies
    the manifest's post-processing; automatic inference averages over the manifest's
    test-time flips (:attr:`net`), click refinement runs :attr:`model` alone. The
    network is the torch module (training, GPUs)
    or, on a CPU, the version's ONNX model in ONNX Runtime (:meth:`from_onnx`); the
    rest is the same code.

    Attributes:
        runtime: ``torch`` or ``onnxruntime``.
    """

    def __init__(
        self,
        manifest: ModelManifest,
        state_dict: dict[str, torch.Tensor],
        device: str | torch.device | None = None,
        sw_batch_size: int = 8,
    ) -> None:
        self.manifest = manifest
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        module = build_network(manifest.network)
        module.load_state_dict(state_dict)
        module.to(self.device).eval()
        self.model: Network = module
        self.runtime = "torch"
        self.net = _automatic(self.model, manifest)
        self.sw_batch_size = sw_batch_size
        self._weights: torch.Tensor | None = None

    @classmethod
    def from_bytes(
        cls, manifest: ModelManifest, weights: bytes, device: str | None = None
    ) -> Predictor:
        """A predictor from a serialised ``state_dict`` (what an artifact store keeps)."""
        return cls(manifest, state_dict_from_bytes(weights), device)

    @classmethod
    def from_onnx(
        cls, manifest: ModelManifest, model: bytes, threads: int | None = None
    ) -> Predictor:
        """A CPU predictor running the version's ``model.onnx`` in ONNX Runtime.

        Raises:
            ConfigError: ONNX Runtime cannot load the model.
        """
        from medloop.ml.onnx_runtime import OnnxNetwork

        self = cls.__new__(cls)
        self.manifest = manifest
        self.device = resolve_device("cpu")
        self.model = OnnxNetwork(model, threads)
        self.runtime = "onnxruntime"
        self.net = _automatic(self.model, manifest)
        self.sw_batch_size = 8
        self._weights = None
        return self

    @torch.inference_mode()
    def probabilities(self, x: np.ndarray) -> torch.Tensor:
        """Softmax ``(K+1, *grid)`` (on CPU) of one preprocessed image ``(C, *grid)``."""
        return self.forward_prepared(
            self.net, x, self.manifest, self.device, self.sw_batch_size, self._window_weights()
        )

    @staticmethod
    def forward_prepared(
        model: Network,
        x: np.ndarray,
        manifest: ModelManifest,
        device: torch.device,
        sw_batch_size: int = 8,
        window_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Softmax of a preprocessed ``(C, *grid)`` image; a torch model must be in eval mode.

        An interactive model given only the image's channels gets zero guidance (its
        automatic mode). ``window_weights``: the Gaussian weights of a full window,
        ``(1, 1, *patch)``, computed once by the caller instead of at every call.
        """
        missing = manifest.network.in_channels - x.shape[0]
        if missing > 0:
            x = np.concatenate([x, np.zeros((missing, *x.shape[1:]), np.float32)])
        t = torch.from_numpy(np.ascontiguousarray(x))[None].to(device)
        shape = tuple(x.shape[1:])
        with _autocast(device):
            if all(s <= p for s, p in zip(shape, manifest.patch_size, strict=True)):
                # One window: pad to the network's divisors only, not to the full patch.
                out = model(_pad_to(t, manifest.network.divisors))
                logits = out[(slice(None), slice(None), *(slice(0, s) for s in shape))]
            else:
                logits = sliding_window_inference(  # type: ignore[assignment]
                    t,
                    roi_size=manifest.patch_size,
                    sw_batch_size=sw_batch_size,
                    predictor=model,
                    overlap=manifest.sliding_window_overlap,
                    mode="gaussian",
                    roi_weight_map=window_weights,
                )
        assert isinstance(logits, torch.Tensor)
        # In place: on a CT-sized volume the logits are K+1 maps of the resampled grid.
        return softmax_(logits.float())[0].cpu()

    def finish(self, probs: torch.Tensor, shape: tuple[int, ...]) -> Prediction:
        """Grid probabilities -> the prediction on an input of spatial ``shape``."""
        return self._labelled(resample_probabilities(probs, shape))

    def _postprocess(self, labels: np.ndarray) -> np.ndarray:
        """The manifest's post-processing of a uint8 label map."""
        return postprocess(labels, self.manifest.keep_largest, self.manifest.min_size)

    def _labelled(self, probs: torch.Tensor) -> Prediction:
        """The prediction from ``(K+1, *spatial)`` probabilities on the input's grid."""
        labels = self._postprocess(argmax_labels(probs))
        return Prediction(
            label_map=labels, probabilities=probs.numpy(), uncertainty=uncertainty(probs)
        )

    def _window_weights(self) -> torch.Tensor:
        """The Gaussian weights of one window, ``(1, 1, *patch)``, computed once."""
        if self._weights is None:
            self._weights = compute_importance_map(
                self.manifest.patch_size, mode="gaussian", device=self.device
            )[None, None]
        return self._weights

    def _network(self, windows: torch.Tensor) -> torch.Tensor:
        """The model on ``(B, C, *patch)`` windows, under the device's autocast."""
        with _autocast(self.device):
            return self.net(windows)

    def predict_streamed(self, x: np.ndarray, shape: tuple[int, ...]) -> Prediction:
        """The prediction for a preprocessed volume ``x`` ``(C, *grid)``, streamed.

        Equal to :meth:`finish` of :meth:`probabilities` (labels, uncertainty within float
        rounding) but holding only ``x``, the label map and a few windows' depth of the
        grid at a time; ``probabilities`` is ``None``. ``shape``: the input's spatial shape.
        """
        held = [x]
        del x
        return self._streamed(held, shape)

    def _streamed(self, held: list[np.ndarray], shape: tuple[int, ...]) -> Prediction:
        """:meth:`predict_streamed` of ``held[0]``, which is let go (``held`` emptied) once
        every window has run, before the post-processing needs its own maps."""
        reducer = self._stream_reduce(held.pop(), shape)
        return Prediction(
            label_map=self._postprocess(reducer.labels),
            probabilities=None,
            uncertainty=reducer.uncertainty,
        )

    @torch.inference_mode()
    def _stream_reduce(self, x: np.ndarray, shape: tuple[int, ...]) -> StreamReducer:
        """The label map (before post-processing) and uncertainty sums of ``x`` ``(C, *grid)``
        on the input's spatial ``shape``; nothing of ``x`` is held once this returns."""
        m = self.manifest
        t = torch.from_numpy(np.ascontiguousarray(x))[None].to(self.device)
        grid = tuple(int(s) for s in x.shape[1:])
        extra = max(0, m.network.in_channels - x.shape[0])
        del x
        slabs = stream_softmax(
            self._network,
            t,
            m.patch_size,
            m.sliding_window_overlap,
            self.sw_batch_size,
            self._window_weights(),
            extra_channels=extra,
        )
        del t
        reducer = StreamReducer(shape)
        on_cpu = ((start, probs.float().cpu()) for start, probs in slabs)
        for start, probs in resample_slabs(on_cpu, grid, shape):
            reducer.add(start, probs)
        return reducer

    def refine(
        self, image: Image, guidance: Guidance, previous: np.ndarray | None = None
    ) -> Prediction:
        """The interactive model's answer to clicks (and a box) on ``image``, in one go.

        See :class:`~medloop.ml.interactive.RefineSession`, which keeps the prepared image
        between the clicks of one interaction (what a server does).
        """
        from medloop.ml.interactive import RefineSession

        return RefineSession(self, image, previous).refine(guidance).prediction

    def _predict_large(
        self, prepared: list[np.ndarray], i: int, shape: tuple[int, ...]
    ) -> Prediction:
        """Sliding windows over ``prepared[i]``, which is dropped as soon as it is used.

        A volume is streamed (:meth:`predict_streamed`). For a 2D image each large array
        is let go before the next is made: the prepared image before the probabilities
        are resampled, the grid's probabilities once resampled.
        """
        if len(shape) == 3:
            held = [prepared[i]]
            prepared[i] = np.empty((0,), np.float32)
            return self._streamed(held, shape)
        x = prepared[i]
        prepared[i] = np.empty((0,), np.float32)
        probs = self.probabilities(x)
        del x
        probs = resample_probabilities(probs, shape)
        return self._labelled(probs)

    def predict(self, image: Image) -> Prediction:
        """Analyse one image or volume at its own size and grid."""
        return self.predict_many([image])[0]

    @torch.inference_mode()
    def predict_many(self, images: list[Image]) -> list[Prediction]:
        """Analyse several images; those of one grid size that fit in a patch share a forward pass."""
        prepared = [prepare(im, self.manifest.preprocess) for im in images]
        out: list[Prediction | None] = [None] * len(images)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i in range(len(prepared)):
            grid = prepared[i].shape
            if all(s <= p for s, p in zip(grid[1:], self.manifest.patch_size, strict=True)):
                groups.setdefault(grid, []).append(i)
            else:
                out[i] = self._predict_large(prepared, i, images[i].shape)
        divisors = self.manifest.network.divisors
        for shape, idx in groups.items():
            crop = (slice(None), slice(None), *(slice(0, s) for s in shape[1:]))
            missing = self.manifest.guidance_channels
            for start in range(0, len(idx), self.sw_batch_size):
                chunk = idx[start : start + self.sw_batch_size]
                batch = torch.from_numpy(np.stack([prepared[i] for i in chunk])).to(self.device)
                if missing:
                    zeros = torch.zeros((batch.shape[0], missing, *batch.shape[2:]))
                    batch = torch.cat([batch, zeros.to(self.device)], dim=1)
                with _autocast(self.device):
                    logits = self.net(_pad_to(batch, divisors))[crop]
                probs = torch.softmax(logits.float(), dim=1).cpu()
                for j, i in enumerate(chunk):
                    out[i] = self.finish(probs[j], images[i].shape)
        return [p for p in out if p is not None]
