"""The distributed mode's pieces on the jobs table: claiming a delivered id, the dispatcher's
sends and re-sends, periodic work queued once per interval, the Celery worker's arguments."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from medloop.domain.jobs import JobRecord
from medloop.jobs import Dispatcher, SqlJobQueue, queue_of
from medloop.jobs.celery_app import worker_argv
from medloop.storage.models import Job, utcnow


@pytest.fixture
def queue(sessions: sessionmaker[Session]) -> SqlJobQueue:
    return SqlJobQueue(sessions)


def test_claim_job_starts_only_a_queued_eligible_job(queue: SqlJobQueue, project_id: str) -> None:
    train = queue.enqueue(project_id, "train")
    finetune = queue.enqueue(project_id, "finetune")
    evaluate = queue.enqueue(project_id, "evaluate")
    got = queue.claim_job(train.id, "w1")
    assert got is not None and got.state == "running" and got.attempts == 1
    assert queue.claim_job(train.id, "w2") is None  # a duplicate delivery: dropped
    assert queue.claim_job(finetune.id, "w2") is None  # the project's learning job runs
    assert queue.get(finetune.id).state == "queued"
    assert queue.claim_job(evaluate.id, "w2") is not None  # not a learning job
    queue.succeed(train.id, {}, attempt=1)
    assert queue.claim_job(train.id, "w3") is None  # finished
    assert queue.claim_job(finetune.id, "w3") is not None
    assert queue.claim_job("no-such-job", "w3") is None


def test_concurrent_deliveries_of_one_id_run_it_once(queue: SqlJobQueue, project_id: str) -> None:
    job = queue.enqueue(project_id, "finetune")
    won: list[JobRecord] = []
    start = threading.Barrier(6)

    def deliver(i: int) -> None:
        start.wait()
        got = queue.claim_job(job.id, f"w{i}")
        if got is not None:
            won.append(got)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and queue.get(job.id).attempts == 1


def test_periodic_work_is_queued_once_per_interval_by_any_number_of_replicas(
    queue: SqlJobQueue, project_id: str
) -> None:
    start = threading.Barrier(6)
    ids: list[str] = []

    def replica() -> None:
        start.wait()
        job = queue.enqueue(
            project_id, "dicomweb_sync", {"trigger": "poll"}, coalesce=True, not_within_s=60
        )
        ids.append(job.id)

    threads = [threading.Thread(target=replica) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1
    claimed = queue.claim("w")
    assert claimed is not None
    queue.succeed(claimed.id, {}, attempt=1)
    # Finished, but within the interval: still no second sync.
    again = queue.enqueue(project_id, "dicomweb_sync", {"trigger": "poll"}, not_within_s=60)
    assert again.id == claimed.id
    later = queue.enqueue(project_id, "dicomweb_sync", {"trigger": "poll"}, not_within_s=0.001)
    assert later.id != claimed.id


def test_dispatcher_sends_queued_jobs_and_resends_what_the_broker_may_have_lost(
    queue: SqlJobQueue, project_id: str
) -> None:
    sent: list[tuple[str, str]] = []
    disp = Dispatcher(
        queue, lambda j: sent.append((j.id, queue_of(j.kind))), stale_s=60, resend_s=10
    )
    a = queue.enqueue(project_id, "finetune")
    b = queue.enqueue(project_id, "dicomweb_sync")
    assert disp.tick(now=0.0) == [a.id, b.id]  # oldest first
    assert sent == [(a.id, "train"), (b.id, "dicom")]
    assert disp.tick(now=5.0) == []  # sent recently: the broker has them
    claimed = queue.claim_job(a.id, "w")
    assert claimed is not None
    assert disp.tick(now=11.0) == [b.id]  # still queued after resend_s: sent again
    assert disp.sent == 3


def test_dispatcher_requeues_a_dead_workers_job_and_sends_it_at_once(
    queue: SqlJobQueue, project_id: str, sessions: sessionmaker[Session]
) -> None:
    sent: list[str] = []
    disp = Dispatcher(queue, lambda j: sent.append(j.id), stale_s=30, resend_s=1000)
    job = queue.enqueue(project_id, "finetune")
    disp.tick(now=0.0)
    assert queue.claim_job(job.id, "w") is not None
    assert disp.tick(now=1.0) == []  # alive
    with sessions.begin() as s:  # the worker was killed: its heartbeat stops
        s.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=31))
        )
    assert disp.tick(now=2.0) == [job.id]
    assert queue.get(job.id).state == "queued" and sent == [job.id, job.id]


def test_dispatcher_keeps_jobs_queued_while_the_broker_is_down(
    queue: SqlJobQueue, project_id: str
) -> None:
    down = {"yes": True}
    sent: list[str] = []

    def send(job: JobRecord) -> None:
        if down["yes"]:
            raise ConnectionError("redis refused the connection")
        sent.append(job.id)

    disp = Dispatcher(queue, send, stale_s=60, resend_s=1000)
    job = queue.enqueue(project_id, "evaluate")
    assert disp.tick(now=0.0) == [] and queue.get(job.id).state == "queued"
    down["yes"] = False
    assert disp.tick(now=1.0) == [job.id] and sent == [job.id]


def test_queues_of_job_kinds_and_worker_arguments() -> None:
    assert [queue_of(k) for k in ("train", "finetune", "evaluate", "dicomweb_sync")] == [
        "train",
        "train",
        "analyze",
        "dicom",
    ]
    assert queue_of("a_future_kind") == "analyze"
    argv = worker_argv(["train"], 1, "gpu0")
    assert "--pool=solo" in argv and "--queues=train" in argv and "--hostname=gpu0@%h" in argv
    assert "--pool=prefork" in worker_argv(["analyze", "dicom"], 4, "cpu")
    with pytest.raises(ValueError, match="queues must be among"):
        worker_argv(["training"], 1, "x")
    with pytest.raises(ValueError, match="concurrency"):
        worker_argv(["train"], 0, "x")
