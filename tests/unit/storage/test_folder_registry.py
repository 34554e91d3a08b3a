"""The CLI's folder registry keeps the store contract, never overwrites, survives a crash mid-write."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from medloop.errors import RegistryError
from medloop.storage.folder_registry import FolderArtifactStore

from ...artifact_store_contract import CHECKS, MANIFEST, add, lineage


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_folder_store_keeps_the_contract(check: Callable[[Any], None], tmp_path: Path) -> None:
    check(FolderArtifactStore(tmp_path / "reg"))


def test_version_files_are_read_only_and_verified(tmp_path: Path) -> None:
    store = FolderArtifactStore(tmp_path / "reg")
    name = add(store, b"one")
    weights = tmp_path / "reg" / "versions" / name / "weights.pt"
    assert oct(weights.stat().st_mode & 0o777) == oct(0o444)
    assert (
        json.loads((weights.parent / "files.json").read_text())["weights.pt"]
        == store.get(name).files["weights.pt"]
    )
    weights.chmod(0o644)
    weights.write_bytes(b"tampered")
    with pytest.raises(RegistryError, match="sha256"):
        store.read_file(name)


def _crash_while_writing(root: str) -> None:
    """Child process: start writing a version and get killed half-way through."""
    import medloop.storage.folder_registry as mod

    def half_write(path: Path, data: bytes) -> None:
        with open(path, "wb") as fh:
            fh.write(data[:2])
            fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    mod._write_new = half_write  # type: ignore[attr-defined]
    FolderArtifactStore(root).add_version(
        {"weights.pt": b"x" * 1000}, MANIFEST, lineage(), {"locked_val": {}}
    )


def test_crash_mid_write_leaves_no_visible_version(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    first = add(FolderArtifactStore(root))
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_crash_while_writing, args=(str(root),))
    proc.start()
    proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    assert any((root / ".staging").iterdir())  # the half-written version is there, unseen
    reopened = FolderArtifactStore(root)  # sweeps staging
    assert [r.name for r in reopened.versions()] == [first]
    assert not any((root / ".staging").iterdir())
    assert json.loads((root / "state.json").read_text())["status"] == {first: "candidate"}
    assert add(reopened) == "v0002"
