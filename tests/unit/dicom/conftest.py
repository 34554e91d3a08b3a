"""pydicom's test files: bundled ones, and ``pydicom-data``'s larger ones when installed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.data import get_testdata_file


def sample(name: str) -> Path:
    """The path of a pydicom test file available offline, or skip the test."""
    try:
        path = get_testdata_file(name, download=False)
    except Exception:  # pragma: no cover - depends on what is installed
        path = None
    if path is None:
        pytest.skip(f"pydicom test file {name} is not available offline (install pydicom-data)")
    return Path(str(path))
