"""The SQL job queue: lifecycle, coalescing, one learning job per project, cancel, recover."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from medloop.errors import ConflictError, InputError, NotFoundError
from medloop.jobs import SqlJobQueue
from medloop.jobs.sql_queue import LOG_TAIL_LINES
from medloop.storage import repositories as repo
from medloop.storage.models import Job, utcnow

from ..storage.dbfixtures import settings_of


@pytest.fixture
def queue(sessions: sessionmaker[Session]) -> SqlJobQueue:
    return SqlJobQueue(sessions)


def _project(sessions: sessionmaker[Session], name: str) -> str:
    with sessions.begin() as s:
        return repo.create_project(s, name, settings_of()).id


def _age_heartbeat(sessions: sessionmaker[Session], job_id: str, seconds: float) -> None:
    with sessions.begin() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )


def test_lifecycle(queue: SqlJobQueue, project_id: str) -> None:
    job = queue.enqueue(project_id, "train", {"steps": 10}, created_by=None)
    assert (job.state, job.attempts, job.progress, job.options) == ("queued", 0, 0.0, {"steps": 10})
    assert queue.depth() == 1 and queue.depth(project_id) == 1
    claimed = queue.claim("w1")
    assert claimed is not None and claimed.id == job.id
    assert claimed.state == "running" and claimed.attempts == 1
    assert claimed.started_at is not None and claimed.heartbeat_at is not None
    assert queue.depth() == 0
    assert queue.claim("w2") is None
    assert queue.heartbeat(job.id, 0.5, "step 5/10\nloss 0.3") is False
    mid = queue.get(job.id)
    assert mid.progress == 0.5 and "step 5/10" in mid.log_tail and "loss 0.3" in mid.log_tail
    assert mid.heartbeat_at is not None and mid.heartbeat_at >= claimed.heartbeat_at
    done = queue.succeed(job.id, {"version": "v0002"}, attempt=1)
    assert done.state == "succeeded" and done.finished and done.progress == 1.0
    assert done.result == {"version": "v0002"} and done.finished_at is not None
    with pytest.raises(ConflictError, match="succeeded"):
        queue.fail(job.id, "too late")
    assert queue.get(job.id, project_id).to_dict()["state"] == "succeeded"


def test_fail_and_fifo_order(queue: SqlJobQueue, project_id: str) -> None:
    ids = [queue.enqueue(project_id, "evaluate").id for _ in range(3)]
    claimed = [queue.claim("w") for _ in range(3)]
    assert [c.id for c in claimed if c] == ids
    failed = queue.fail(ids[0], "ValueError: boom")
    assert failed.state == "failed" and failed.error == "ValueError: boom"
    assert "boom" in failed.log_tail


def test_validation(queue: SqlJobQueue, project_id: str) -> None:
    with pytest.raises(InputError, match="'sleep'"):
        queue.enqueue(project_id, "sleep")
    with pytest.raises(NotFoundError, match="nope"):
        queue.enqueue("nope", "train")
    with pytest.raises(InputError, match="JSON"):
        queue.enqueue(project_id, "train", {"x": object()})
    with pytest.raises(NotFoundError):
        queue.get("0" * 32)
    job = queue.enqueue(project_id, "train")
    with pytest.raises(NotFoundError):
        queue.get(job.id, project_id="other")
    with pytest.raises(ConflictError, match="queued"):
        queue.succeed(job.id, {})


def test_coalescing(queue: SqlJobQueue, project_id: str, sessions: sessionmaker[Session]) -> None:
    first = queue.enqueue(project_id, "finetune", coalesce=True)
    again = queue.enqueue(project_id, "finetune", {"steps": 3}, coalesce=True)
    assert again.id == first.id
    other_kind = queue.enqueue(project_id, "evaluate", coalesce=True)
    other_project = queue.enqueue(_project(sessions, "p2"), "finetune", coalesce=True)
    assert len({first.id, other_kind.id, other_project.id}) == 3
    assert queue.claim("w") is not None  # the first finetune runs now ...
    behind = queue.enqueue(project_id, "finetune", coalesce=True)
    assert behind.id != first.id and behind.state == "queued"  # ... so a trigger queues one
    assert queue.enqueue(project_id, "finetune", coalesce=True).id == behind.id
    extra = queue.enqueue(project_id, "finetune")  # without coalesce: always a new job
    assert extra.id != behind.id
    assert queue.depth(project_id) == 3


def test_one_learning_job_per_project(
    queue: SqlJobQueue, project_id: str, sessions: sessionmaker[Session]
) -> None:
    other = _project(sessions, "p2")
    ft1 = queue.enqueue(project_id, "finetune")
    ft2 = queue.enqueue(project_id, "train")
    ev = queue.enqueue(project_id, "evaluate")
    tr = queue.enqueue(other, "train")
    order = [queue.claim("w") for _ in range(4)]
    assert [j.id if j else None for j in order] == [ft1.id, ev.id, tr.id, None]
    queue.succeed(ft1.id, {})
    nxt = queue.claim("w")
    assert nxt is not None and nxt.id == ft2.id


def test_database_refuses_two_running_learning_jobs(
    queue: SqlJobQueue, project_id: str, sessions: sessionmaker[Session]
) -> None:
    a = queue.enqueue(project_id, "train")
    b = queue.enqueue(project_id, "finetune")
    queue.claim("w")
    with pytest.raises(IntegrityError), sessions.begin() as s:
        s.execute(update(Job).where(Job.id == b.id).values(state="running"))
    assert queue.get(a.id).state == "running"


def test_cancel(queue: SqlJobQueue, project_id: str) -> None:
    queued = queue.enqueue(project_id, "evaluate")
    cancelled = queue.cancel(queued.id)
    assert cancelled.state == "cancelled" and cancelled.finished_at is not None
    assert queue.claim("w") is None

    running = queue.enqueue(project_id, "train")
    assert queue.claim("w") is not None
    asked = queue.cancel(running.id)
    assert asked.state == "running" and asked.cancel_requested
    assert queue.cancel(running.id).cancel_requested  # asking twice is harmless
    assert queue.heartbeat(running.id, 0.3) is True
    done = queue.acknowledge_cancel(running.id, attempt=1)
    assert done.state == "cancelled"
    with pytest.raises(ConflictError, match="cancelled"):
        queue.cancel(running.id)
    with pytest.raises(NotFoundError):
        queue.cancel("0" * 32)


def test_recover_after_a_crash(
    queue: SqlJobQueue, project_id: str, sessions: sessionmaker[Session]
) -> None:
    stale = queue.enqueue(project_id, "train")
    fresh = queue.enqueue(project_id, "evaluate")
    queue.claim("w")
    queue.claim("w")
    queue.heartbeat(stale.id, 0.7, "epoch 7")
    _age_heartbeat(sessions, stale.id, 600)
    assert queue.recover(60) == [stale.id]
    back = queue.get(stale.id)
    assert back.state == "queued" and back.attempts == 1 and back.heartbeat_at is None
    assert "interrupted" in back.log_tail
    assert queue.get(fresh.id).state == "running"
    again = queue.claim("w2")
    assert again is not None and again.id == stale.id and again.attempts == 2
    # the old attempt's late report is refused
    assert queue.heartbeat(stale.id, 0.9, attempt=1) is True
    with pytest.raises(ConflictError):
        queue.succeed(stale.id, {}, attempt=1)
    assert queue.recover(0) == [stale.id, fresh.id]  # 0: every running job


def test_recover_gives_up_after_three_attempts(queue: SqlJobQueue, project_id: str) -> None:
    job = queue.enqueue(project_id, "train")
    for attempt in (1, 2, 3):
        claimed = queue.claim("w")
        assert claimed is not None and claimed.attempts == attempt
        assert queue.recover(0) == [job.id]
    final = queue.get(job.id)
    assert final.state == "failed" and final.error == "interrupted" and final.attempts == 3


def test_recover_cancels_a_job_whose_cancel_was_requested(
    queue: SqlJobQueue, project_id: str
) -> None:
    job = queue.enqueue(project_id, "train")
    queue.claim("w")
    queue.cancel(job.id)
    assert queue.recover(0) == [job.id]
    assert queue.get(job.id).state == "cancelled"


def test_log_tail_keeps_the_last_lines(queue: SqlJobQueue, project_id: str) -> None:
    job = queue.enqueue(project_id, "train")
    queue.claim("w")
    for i in range(LOG_TAIL_LINES + 20):
        queue.heartbeat(job.id, 0.1, f"line {i}")
    lines = queue.get(job.id).log_tail.splitlines()
    assert len(lines) == LOG_TAIL_LINES
    assert lines[-1].endswith(f"line {LOG_TAIL_LINES + 19}")


def test_list(queue: SqlJobQueue, project_id: str, sessions: sessionmaker[Session]) -> None:
    a = queue.enqueue(project_id, "train")
    b = queue.enqueue(project_id, "evaluate")
    queue.enqueue(_project(sessions, "p2"), "train")
    assert [j.id for j in queue.list(project_id)] == [b.id, a.id]
    assert len(queue.list()) == 3
    assert [j.id for j in queue.list(project_id, limit=1, offset=1)] == [a.id]
    assert queue.list(project_id, state="running") == []
    with pytest.raises(InputError):
        queue.list(state="paused")


def test_concurrent_claims_never_share_a_job(queue: SqlJobQueue, project_id: str) -> None:
    ids = {queue.enqueue(project_id, "evaluate").id for _ in range(40)}
    claimed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def claimer(n: int) -> None:
        start.wait()
        while (job := queue.claim(f"w{n}")) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claimed) == sorted(ids)  # each exactly once


def test_concurrent_claims_run_one_learning_job_per_project(
    queue: SqlJobQueue, project_id: str
) -> None:
    for _ in range(6):
        queue.enqueue(project_id, "finetune")
    got: list[str] = []
    start = threading.Barrier(6)

    def claimer(n: int) -> None:
        start.wait()
        job = queue.claim(f"w{n}")
        if job is not None:
            got.append(job.id)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(got) == 1
    assert len(queue.list(project_id, state="running")) == 1
