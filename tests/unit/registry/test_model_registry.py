"""The registry never overwrites, survives a crash mid-write, and moves one pointer."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from medloop.domain.labels import LabelSet
from medloop.domain.model import Lineage, ModelManifest, NetworkSpec, PreprocessSpec, VersionStatus
from medloop.errors import NoProductionModel, RegistryError, VersionNotFound
from medloop.registry import ModelRegistry


def _manifest() -> ModelManifest:
    return ModelManifest(
        NetworkSpec(1, 2, (4, 8)), PreprocessSpec(), LabelSet.from_names(["fg"]), (32, 32)
    )


def _lineage(parent: str | None = None) -> Lineage:
    return Lineage("train", parent, (), (), {}, 0, {"medloop": "test"}, created_at="now")


def _add(reg: ModelRegistry, tmp_path: Path, payload: bytes = b"weights") -> str:
    w = tmp_path / "w.pt"
    w.write_bytes(payload)
    return reg.add_version(w, _manifest(), _lineage(), {"locked_val": {"mean_dice": 0.5}}).name


def test_versions_are_numbered_and_immutable(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    a, b = _add(reg, tmp_path, b"one"), _add(reg, tmp_path, b"two")
    assert (a, b) == ("v0001", "v0002")
    weights = reg.get(a).weights_path
    assert weights.read_bytes() == b"one"
    assert not os.access(weights, os.W_OK) or os.geteuid() == 0  # root ignores modes
    assert oct(weights.stat().st_mode & 0o777) == oct(0o444)
    assert reg.get(a).status == VersionStatus.CANDIDATE


def test_promote_and_rollback_move_the_pointer(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    with pytest.raises(NoProductionModel):
        reg.production()
    a, b = _add(reg, tmp_path), _add(reg, tmp_path)
    reg.promote(a)
    reg.promote(b)
    assert reg.production() == b
    assert reg.get(a).status == VersionStatus.RETIRED
    assert reg.rollback() == a
    assert reg.production() == a
    assert reg.get(b).status == VersionStatus.RETIRED
    events = [e["event"] for e in reg.events()]
    assert events == ["created", "created", "promoted", "promoted", "rolled_back"]


def test_rollback_without_history_is_an_error(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    with pytest.raises(NoProductionModel):
        reg.rollback()
    reg.promote(_add(reg, tmp_path))
    with pytest.raises(RegistryError, match="first production version"):
        reg.rollback()


def test_unknown_version(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    with pytest.raises(VersionNotFound):
        reg.get("v0042")
    with pytest.raises(VersionNotFound):
        reg.promote("v0042")


def test_report_is_written_once(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    a = _add(reg, tmp_path)
    reg.write_report(a, {"accepted": True})
    with pytest.raises(RegistryError):
        reg.write_report(a, {"accepted": False})
    assert reg.report(a) == {"accepted": True}


def _crash_while_writing(root: str, weights: str) -> None:
    """Child process: start writing a version and get killed half-way through."""
    import shutil as _sh

    def slow_copy(src: str, dst: str, *a: object, **k: object) -> str:
        with open(dst, "wb") as fh:
            fh.write(b"half")
            fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        return dst

    _sh.copyfile = slow_copy  # type: ignore[assignment]
    reg = ModelRegistry(root)
    reg.add_version(Path(weights), _manifest(), _lineage(), {"locked_val": {}})


def test_crash_mid_write_leaves_no_visible_version(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    reg = ModelRegistry(root)
    first = _add(reg, tmp_path)
    w = tmp_path / "big.pt"
    w.write_bytes(b"x" * 1000)
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_crash_while_writing, args=(str(root), str(w)))
    proc.start()
    proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    assert any((root / ".staging").iterdir())  # the half-written version is there, unseen
    reopened = ModelRegistry(root)  # sweeps staging
    assert [r.name for r in reopened.versions()] == [first]
    assert not any((root / ".staging").iterdir())
    assert json.loads((root / "state.json").read_text())["status"] == {first: "candidate"}
    assert _add(reopened, tmp_path) == "v0002"
