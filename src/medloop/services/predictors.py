"""Which runtime serves a version, and the version's files it needs.

A version made by this release holds ``weights.pt`` and ``model.onnx`` (exported
once, when it was added; see :func:`version_files`). On a CPU it is served by ONNX
Runtime from ``model.onnx``; on a GPU, or with ``serving_runtime="torch"``, by
PyTorch from ``weights.pt``. A version made before ONNX export (no ``model.onnx``)
is exported in memory when it is loaded; versions are immutable, so nothing is
written back. Where ONNX Runtime cannot run a model, ``auto`` falls back to
PyTorch with a warning and ``onnx`` refuses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal

from medloop.domain.model import ModelManifest
from medloop.domain.ports import ONNX_FILE, WEIGHTS_FILE
from medloop.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from medloop.ml.inference import Predictor

__all__ = ["RUNTIMES", "ServingRuntime", "load_predictor", "version_files"]

log = logging.getLogger(__name__)

ServingRuntime = Literal["auto", "onnx", "torch"]
RUNTIMES: tuple[str, ...] = ("auto", "onnx", "torch")


def version_files(manifest: ModelManifest, state_dict: dict[str, torch.Tensor]) -> dict[str, bytes]:
    """The files a new version is stored with: ``weights.pt`` and, when the export
    works, ``model.onnx`` (a failed export is logged; the version is then served by
    PyTorch)."""
    from medloop.ml.inference import state_dict_to_bytes
    from medloop.ml.onnx_runtime import export_onnx

    files = {WEIGHTS_FILE: state_dict_to_bytes(state_dict)}
    try:
        files[ONNX_FILE] = export_onnx(manifest, state_dict)
    except (ConfigError, ImportError) as err:
        log.warning("version stored without %s: %s", ONNX_FILE, err)
    return files


def _uses_onnx(runtime: str, device: str | None) -> bool:
    if runtime not in RUNTIMES:
        raise ConfigError(f"serving runtime must be one of {RUNTIMES}, got {runtime!r}")
    if runtime == "torch":
        return False
    from medloop.ml.device import resolve_device
    from medloop.ml.onnx_runtime import onnx_available

    if resolve_device(device).type != "cpu":
        if runtime == "onnx":
            raise ConfigError("serving runtime 'onnx' runs on the CPU only; set device to cpu")
        return False
    if not onnx_available():
        if runtime == "onnx":
            raise ConfigError("serving runtime 'onnx' needs the onnxruntime package")
        return False
    return True


def load_predictor(
    manifest: ModelManifest,
    files: Mapping[str, str],
    read: Callable[[str], bytes],
    device: str | None = None,
    runtime: str = "auto",
    label: str = "version",
    onnx_threads: int | None = None,
) -> Predictor:
    """A predictor of one stored version.

    Args:
        manifest: the version's manifest.
        files: its stored files (name -> sha256).
        read: reads one of its files, checked against its sha256.
        device: ``cpu``, ``cuda`` or ``None`` (auto).
        runtime: ``auto`` (ONNX Runtime on a CPU), ``onnx`` or ``torch``.
        label: names the version in log lines.
        onnx_threads: ONNX Runtime's intra-op threads (default: every CPU; a server
            runs single-threaded sessions, one batch per core).

    Raises:
        ConfigError: ``runtime="onnx"`` where ONNX Runtime cannot serve the version.
    """
    from medloop.ml.inference import Predictor

    if _uses_onnx(runtime, device):
        try:
            if ONNX_FILE in files:
                model = read(ONNX_FILE)
            else:
                from medloop.ml.inference import state_dict_from_bytes
                from medloop.ml.onnx_runtime import export_onnx

                log.info("%s has no %s: exporting it in memory", label, ONNX_FILE)
                model = export_onnx(manifest, state_dict_from_bytes(read(WEIGHTS_FILE)))
            return Predictor.from_onnx(manifest, model, onnx_threads)
        except ConfigError as err:
            if runtime == "onnx":
                raise
            log.warning("%s: ONNX Runtime unavailable (%s); serving it with PyTorch", label, err)
    return Predictor.from_bytes(manifest, read(WEIGHTS_FILE), device)
