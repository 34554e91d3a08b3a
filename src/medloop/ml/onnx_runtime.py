"""A version's network in ONNX: exported once from its weights, served with ONNX Runtime.

:func:`export_onnx` traces the MONAI ``UNet`` of a manifest (2D or 3D) with dynamic
batch and spatial axes (opset 17, the TorchScript exporter); the bytes are stored
beside ``weights.pt`` as ``model.onnx``. :class:`OnnxNetwork` runs them on the CPU
and is called like the torch module, ``(B, C, *spatial)`` in, logits out, so
:class:`~medloop.ml.inference.Predictor` keeps its preprocessing, single-window
padding, sliding windows, resampling and post-processing unchanged::

    data = export_onnx(manifest, state_dict)                  # once, when the version is made
    predictor = Predictor.from_onnx(manifest, data)           # every CPU server and worker

ONNX Runtime runs these networks 1.5-2x faster than PyTorch eager on a CPU; PyTorch
stays for training and for GPUs. ``onnx`` and ``onnxruntime`` are imported on use.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import warnings
from typing import Any

import numpy as np
import torch

from medloop.domain.model import ModelManifest
from medloop.domain.ports import ONNX_FILE
from medloop.errors import ConfigError
from medloop.ml.network import build_network

__all__ = ["ONNX_FILE", "ONNX_OPSET", "OnnxNetwork", "export_onnx", "onnx_available"]

log = logging.getLogger(__name__)

ONNX_OPSET = 17
_INPUT, _OUTPUT = "image", "logits"


def onnx_available() -> bool:
    """Whether ONNX Runtime can be imported here."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_onnx(manifest: ModelManifest, state_dict: dict[str, torch.Tensor]) -> bytes:
    """The network of ``manifest`` with ``state_dict`` as an ONNX model (bytes).

    Input ``image`` ``(B, in_channels, *spatial)`` float32 and output ``logits``
    ``(B, out_channels, *spatial)`` have dynamic batch and spatial axes; each spatial
    size must be a multiple of the network's divisors, as for the torch module.

    Raises:
        ConfigError: the exporter failed, or the model it wrote does not check.
    """
    import onnx

    spec = manifest.network
    model = build_network(spec)
    model.load_state_dict(state_dict)
    model.eval()
    shape = tuple(2 * d for d in spec.divisors)
    example = torch.zeros((1, spec.in_channels, *shape), dtype=torch.float32)
    axes = {0: "batch", **{2 + i: f"s{i}" for i in range(spec.spatial_dims)}}
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about MONAI's shape checks
            torch.onnx.export(
                model,
                (example,),
                buf,  # type: ignore[arg-type]  # a file object works; the stub says path
                input_names=[_INPUT],
                output_names=[_OUTPUT],
                dynamic_axes={_INPUT: axes, _OUTPUT: axes},
                opset_version=ONNX_OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        data = buf.getvalue()
        onnx.checker.check_model(onnx.load_from_string(data))
    except Exception as err:  # the exporter raises many kinds; all mean "no ONNX model"
        raise ConfigError(f"ONNX export of the {spec.spatial_dims}D network failed: {err}") from err
    return data


class OnnxNetwork:
    """An ONNX model run by ONNX Runtime on the CPU, called like the torch network.

    Args:
        data: the ``model.onnx`` bytes.
        threads: intra-op threads (default: every CPU); their runs are serialised.
            With 1, concurrent calls run at once, each in its calling thread: a
            server runs one per core (no thread waits for another at a barrier,
            which on a busy machine costs more than the parallelism gains). Threads
            never spin between calls, so other work gets the cores back at once.
    """

    def __init__(self, data: bytes, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = max(1, threads or os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                data, sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as err:
            raise ConfigError(f"ONNX Runtime cannot load the model: {err}") from err
        self._lock = threading.Lock() if opts.intra_op_num_threads > 1 else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K+1, *spatial)`` of ``x`` ``(B, C, *spatial)`` (a CPU tensor)."""
        feed: Any = {_INPUT: np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)}
        if self._lock is None:
            (logits,) = self.session.run([_OUTPUT], feed)
        else:  # one run at a time: the session's thread pool already uses the cores
            with self._lock:
                (logits,) = self.session.run([_OUTPUT], feed)
        return torch.from_numpy(logits)
