"""The server's artifact store: the store contract on SQLite and PostgreSQL, verified
weights, blobs kept by the orphan sweep, and promotions from many threads that never
leave two versions in production."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from medloop.domain.model import VersionStatus
from medloop.errors import BlobCorrupt, RegistryError
from medloop.storage import BlobStore, Database, DbArtifactStore
from medloop.storage import repositories as repo

from ...artifact_store_contract import ACCEPT, CHECKS, REJECT, add


@pytest.fixture
def store_for(database: Database, tmp_path: Path) -> Callable[[str], DbArtifactStore]:
    blobs = BlobStore(tmp_path / "blobs")
    return lambda project_id: DbArtifactStore(database, blobs, project_id)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_db_store_keeps_the_contract(
    check: Callable[[Any], None], store_for: Callable[[str], DbArtifactStore], project_id: str
) -> None:
    check(store_for(project_id))


def test_projects_have_their_own_versions(
    store_for: Callable[[str], DbArtifactStore], sessions: sessionmaker[Session], project_id: str
) -> None:
    from .dbfixtures import settings_of

    with sessions.begin() as s:
        other = repo.create_project(s, "p2", settings_of()).id
    mine, theirs = store_for(project_id), store_for(other)
    assert (add(mine), add(mine), add(theirs)) == ("v0001", "v0002", "v0001")
    theirs.promote("v0001", "first")
    assert mine.production() is None and theirs.production() == "v0001"
    assert [r.name for r in mine.versions()] == ["v0001", "v0002"]


def test_weights_are_verified_and_kept_by_the_sweep(
    store_for: Callable[[str], DbArtifactStore],
    sessions: sessionmaker[Session],
    project_id: str,
    tmp_path: Path,
) -> None:
    store = store_for(project_id)
    name = add(store, b"the weights")
    store.checkpoint("run").save(b"a checkpoint")
    key = store.get(name).files["weights.pt"]
    with sessions() as s:
        referenced = repo.referenced_blob_keys(s)
    assert key in referenced and len(referenced) == 2
    assert store.blobs.sweep_orphans(referenced, grace_s=0) == 0
    assert store.read_file(name) == b"the weights"
    path = store.blobs.path(key)
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(BlobCorrupt, match="sha256"):
        store.read_file(name)


def test_events_say_who_and_why(
    store_for: Callable[[str], DbArtifactStore], project_id: str
) -> None:
    store = store_for(project_id)
    a, b = add(store), add(store)
    store.record_verdict(a, ACCEPT, {"accepted": True})
    store.record_verdict(b, REJECT, {"accepted": False})
    store.promote(b, "by alice", actor="alice")
    events = store.events()
    assert [(e["event"], e["version"]) for e in events] == [
        ("created", a),
        ("created", b),
        ("promoted", a),
        ("rejected", b),
        ("promoted", b),
    ]
    assert events[0]["kind"] == "train" and events[2]["reason"] == "better"
    assert events[4]["actor"] == "alice" and events[4]["previous"] == a


def test_concurrent_promotions_leave_one_production(
    store_for: Callable[[str], DbArtifactStore], project_id: str
) -> None:
    """Two replicas promoting and rolling back at once take turns on the project's lock."""
    store = store_for(project_id)
    names = [add(store, f"w{i}".encode()) for i in range(4)]
    store.promote(names[0], "first")
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def act(n: int) -> None:
        try:
            start.wait()
            for i in range(4):
                if (n + i) % 3 == 0:
                    # nothing to roll back to at this moment is fine
                    with contextlib.suppress(RegistryError):
                        store.rollback("race")
                else:
                    store.promote(names[(n + i) % 4], f"race {n}")
        except BaseException as err:  # collected for the main thread
            errors.append(err)

    threads = [threading.Thread(target=act, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    statuses = [r.status for r in store.versions()]
    assert statuses.count(VersionStatus.PRODUCTION) == 1
    production = store.production()
    history = [e["version"] for e in store.events() if e["event"] in ("promoted", "rolled_back")]
    assert history[-1] == production
