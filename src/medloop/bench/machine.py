"""What every benchmark records: the machine it ran on and the dataset's labels."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from medloop.domain.labels import LabelSet

__all__ = ["dataset_labels", "machine_description"]


def dataset_labels(data: Path) -> LabelSet:
    """The labels of a dataset: an MSD ``dataset.json``'s names, else one ``foreground``."""
    meta = data / "dataset.json"
    if meta.is_file():
        names = json.loads(meta.read_text()).get("labels", {})
        ordered = [names[k] for k in sorted(names, key=int) if int(k) > 0]
        if ordered:
            return LabelSet.from_names(ordered)
    return LabelSet.from_names(["nucleus" if "nuclei" in str(data) else "foreground"])


def machine_description(device: str | None) -> str:
    """The accelerator, or the CPU, its core count and its training precision (bfloat16
    where it has the instructions, else float32: the two differ about 1.5x in steps per
    second), with the torch version."""
    import torch

    from medloop.ml.device import bf16_is_native

    if (device in (None, "auto") and torch.cuda.is_available()) or device == "cuda":
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    precision = "bfloat16" if bf16_is_native(torch.device("cpu")) else "float32"
    return f"{cpu} CPU x{os.cpu_count()} ({precision} training), torch {torch.__version__}"
