"""The in-memory store the engine's unit tests use keeps the same contract as the real ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ...artifact_store_contract import CHECKS
from ...fakes import MemoryArtifactStore


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_memory_store_keeps_the_contract(check: Callable[[Any], None]) -> None:
    check(MemoryArtifactStore())
