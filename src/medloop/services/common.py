"""Small pieces the use cases share: software versions, timestamps, weights files."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["now_iso", "software_versions", "temporary_weights"]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def software_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for pkg in ("medloop", "torch", "monai", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


@contextmanager
def temporary_weights(state_dict: dict[str, torch.Tensor], directory: Path) -> Iterator[Path]:
    """Write ``state_dict`` to a temporary ``.pt`` file in ``directory``; removed afterwards."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(suffix=".pt", dir=directory)
    os.close(fd)
    path = Path(name)
    try:
        torch.save(state_dict, path)
        yield path
    finally:
        path.unlink(missing_ok=True)
