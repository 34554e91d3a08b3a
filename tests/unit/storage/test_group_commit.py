"""Group commit: concurrent appends share transactions, each caller sees its own outcome."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from medloop.errors import InputError
from medloop.storage import Database
from medloop.storage import repositories as repo
from medloop.storage.group_commit import GroupCommit
from medloop.storage.models import AuditEvent


def _event(action: str, outcome: str = "ok"):  # type: ignore[no-untyped-def]
    return lambda s: repo.record_event(
        s, action=action, resource_type="test", actor_name="t", outcome=outcome
    )


def _count(database: Database) -> int:
    with database.read() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def test_concurrent_appends_are_all_committed_in_fewer_transactions(database: Database) -> None:
    group = GroupCommit(database.sessions)
    start = threading.Barrier(16)
    ids: list[str] = []

    def caller(i: int) -> None:
        start.wait()
        for k in range(10):
            ids.append(group.run(_event(f"a{i}.{k}")).id)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 160 and _count(database) == 160
    assert group.writes == 160
    assert group.transactions < 160  # callers that waited shared a commit


def test_a_failing_write_is_rolled_back_alone(database: Database) -> None:
    group = GroupCommit(database.sessions)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def caller(i: int) -> None:
        start.wait()
        try:
            group.run(_event(f"b{i}", outcome="bogus" if i % 2 else "ok"))
        except InputError as err:
            errors.append(err)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 4 and all("outcome" in str(e) for e in errors)
    with database.read() as s:
        actions = set(s.scalars(select(AuditEvent.action)))
    assert actions == {"b0", "b2", "b4", "b6"}


def test_a_failed_commit_fails_every_write_of_the_batch(database: Database) -> None:
    fail = {"commit": True}

    def sessions():  # type: ignore[no-untyped-def]
        session = database.sessions()
        real = session.commit

        def commit() -> None:
            if fail["commit"]:
                raise RuntimeError("disk full")
            real()

        session.commit = commit  # type: ignore[method-assign]
        return session

    group = GroupCommit(sessions)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="disk full"):
        group.run(_event("lost"))
    assert _count(database) == 0
    fail["commit"] = False
    assert group.run(_event("after")).action == "after"  # the group still works
    assert _count(database) == 1


def test_database_grouped_returns_the_work_result(database: Database) -> None:
    record = database.grouped(_event("via-db"))
    assert record.action == "via-db" and _count(database) == 1
