"""What every :class:`~medloop.domain.ports.ArtifactStore` must do, as reusable checks.

Each adapter's test module calls :func:`check_contract` with a factory of empty stores
(the folder registry, the database store, the in-memory fake), so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from medloop.domain.labels import LabelSet
from medloop.domain.learning import Decision
from medloop.domain.model import Lineage, ModelManifest, NetworkSpec, PreprocessSpec, VersionStatus
from medloop.domain.ports import ArtifactStore
from medloop.errors import NoProductionModel, RegistryError, VersionNotFound

MANIFEST = ModelManifest(
    NetworkSpec(1, 2, (4, 8)), PreprocessSpec(), LabelSet.from_names(["fg"]), (32, 32)
)


def lineage(parent: str | None = None) -> Lineage:
    return Lineage("train", parent, (), (), {}, 0, {"medloop": "test"}, created_at="now")


def add(store: ArtifactStore, payload: bytes = b"weights", **files: bytes) -> str:
    record = store.add_version(
        {"weights.pt": payload, **files}, MANIFEST, lineage(), {"locked_val": {"mean_dice": 0.5}}
    )
    return record.name


ACCEPT = Decision(True, ("better",))
REJECT = Decision(False, ("worse",))


def check_versions_are_numbered_and_kept(store: ArtifactStore) -> None:
    a, b = add(store, b"one"), add(store, b"two", **{"model.onnx": b"onnx"})
    assert (a, b) == ("v0001", "v0002")
    assert store.read_file(a) == b"one"
    assert store.read_file(b, "model.onnx") == b"onnx"
    rec = store.get(a)
    assert rec.status == VersionStatus.CANDIDATE
    assert rec.manifest == MANIFEST and rec.lineage.kind == "train"
    assert rec.metrics == {"locked_val": {"mean_dice": 0.5}}
    assert set(store.get(b).files) == {"weights.pt", "model.onnx"}
    assert [r.name for r in store.versions()] == [a, b]
    with pytest.raises(VersionNotFound):
        store.get("v0042")
    with pytest.raises(VersionNotFound):
        store.read_file(a, "model.onnx")


def check_verdict_promotes_or_rejects_once(store: ArtifactStore) -> None:
    assert store.production() is None
    a, b = add(store), add(store)
    store.record_verdict(a, ACCEPT, {"accepted": True})
    assert store.production() == a and store.get(a).report == {"accepted": True}
    store.record_verdict(b, REJECT, {"accepted": False})
    assert store.production() == a
    assert store.get(b).status == VersionStatus.REJECTED
    with pytest.raises(RegistryError):
        store.record_verdict(b, ACCEPT, {"accepted": True})
    assert store.get(b).report == {"accepted": False}


def check_promote_and_rollback_move_the_pointer(store: ArtifactStore) -> None:
    with pytest.raises(NoProductionModel):
        store.rollback("nothing yet")
    a, b = add(store), add(store)
    store.promote(a, "first")
    with pytest.raises(RegistryError, match="first production version"):
        store.rollback("too early")
    store.promote(b, "by hand", actor="alice")
    assert store.production() == b and store.get(a).status == VersionStatus.RETIRED
    assert store.rollback("bad", actor="alice").name == a
    assert store.production() == a and store.get(b).status == VersionStatus.RETIRED
    kinds = [e["event"] for e in store.events()]
    assert kinds == ["created", "created", "promoted", "promoted", "rolled_back"]
    with pytest.raises(VersionNotFound):
        store.promote("v0042", "nope")


def check_checkpoints_round_trip(store: ArtifactStore) -> None:
    slot = store.checkpoint("run-1")
    assert slot.load() is None
    slot.save(b"state-1")
    slot.save(b"state-2")
    assert store.checkpoint("run-1").load() == b"state-2"
    assert store.checkpoint("run-2").load() is None
    slot.clear()
    assert store.checkpoint("run-1").load() is None


CHECKS: list[Callable[[Any], None]] = [
    check_versions_are_numbered_and_kept,
    check_verdict_promotes_or_rejects_once,
    check_promote_and_rollback_move_the_pointer,
    check_checkpoints_round_trip,
]
