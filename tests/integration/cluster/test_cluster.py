"""The distributed mode with real processes: the loop across replicas, a worker and a replica
killed with SIGKILL, Redis restarted, a promotion on one replica served by the other.

The tests run in order on one cluster (see ``conftest.py``); each leaves it whole
(a killed process is started again) for the next.
"""

from __future__ import annotations

import random
import re
import threading
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from medloop.client import MedloopClient

from .conftest import PROJECT, Live

pytestmark = pytest.mark.slow


def _versions(c: MedloopClient) -> dict[str, str]:
    return {m.version: m.status for m in c.list_models(PROJECT).items}


def _production(c: MedloopClient) -> str | None:
    return c.get_project(PROJECT).production_version


def test_the_loop_through_the_sdk_alternating_between_replicas(live: Live, tmp_path: Path) -> None:
    a, b = live.client(0), live.client(1)
    before = len(a.list_analyses(PROJECT, limit=500).items)
    analyses = [
        (a, b)[k % 2].analyze(PROJECT, file=live.image(i), filename=f"case ({i}).png")
        for k, i in enumerate(range(8, 12))
    ]
    assert {x.model_version for x in analyses} == {"v0001"}
    for k, (i, an) in enumerate(zip(range(8, 12), analyses, strict=True)):
        (b, a)[k % 2].correct(PROJECT, an.id, live.mask(i), filename="fix.png")
    job = a.create_job(PROJECT, "finetune", {"steps": 10})
    done = b.wait_for_job(PROJECT, job.id, timeout=600, poll=0.3)
    assert done.state == "succeeded" and done.attempts == 1, done
    version = done.result["version"] if done.result else None
    assert version == "v0002"
    # Both replicas read one database: the counts are exact on either.
    for c in (a, b):
        assert len(c.list_analyses(PROJECT, limit=500).items) == before + 4
        assert len(c.list_corrections(PROJECT).items) == 4
        assert set(_versions(c)) == {"v0001", "v0002"}
        assert [j.kind for j in c.list_jobs(PROJECT).items] == ["finetune", "train"]
    # The version was stored with its ONNX export, in the shared blob store.
    archive = b.download_model(PROJECT, "v0002", tmp_path / "v0002.zip")
    with zipfile.ZipFile(archive) as zf:
        assert {"v0002/weights.pt", "v0002/model.onnx"} <= set(zf.namelist())


def test_a_promotion_on_one_replica_is_served_by_the_other_within_5_s(live: Live) -> None:
    a, b = live.client(0), live.client(1)
    image = b.upload_image(PROJECT, live.image(12), filename="case (12).png")
    current = _production(a)
    target = "v0002" if current == "v0001" else "v0001"
    a.promote(PROJECT, target, reason="cluster test")
    t0 = time.monotonic()
    served = None
    while time.monotonic() - t0 < 5.0:
        served = b.analyze(PROJECT, image_id=image.id).model_version
        if served == target:
            break
    assert served == target, f"replica B still served {served} 5 s after the promotion on A"
    b.rollback(PROJECT)
    assert a.analyze(PROJECT, image_id=image.id).model_version == current


def _worker_running(live: Live, job_id: str) -> int:
    """The index of the worker that claimed the job's latest attempt, from the workers' own
    logs (the job's log, which viewers read, names no host or process)."""
    pattern = re.compile(rf"claimed job {re.escape(job_id)} \(\w+, attempt (\d+)\)")
    claims = [
        (int(m.group(1)), i)
        for i, w in enumerate(live.workers)
        for m in pattern.finditer(w.log.read_text(errors="replace"))
    ]
    assert claims, f"no worker log shows job {job_id} claimed"
    return max(claims)[1]


def test_kill_9_of_a_worker_during_a_finetune(live: Live) -> None:
    a, b = live.client(0), live.client(1)
    prod = _production(a)
    versions = set(_versions(a))
    job = b.create_job(PROJECT, "finetune", {"steps": 60})
    end = time.monotonic() + 300
    while time.monotonic() < end:  # until a checkpoint is stored (every 6 steps)
        state = a.get_job(PROJECT, job.id)
        if state.state == "running" and state.progress >= 0.9 * 12 / 60:
            break
        assert state.state in ("queued", "running"), state
        time.sleep(0.1)
    victim = live.workers[_worker_running(live, job.id)]
    victim.kill()  # SIGKILL: no shutdown code runs, the Celery message is never acknowledged
    seen: set[str | None] = {_production(a)}
    while not (state := b.get_job(PROJECT, job.id)).finished:
        seen.add(_production((a, b)[len(seen) % 2]))
        time.sleep(0.2)
    live.cluster.restart(victim)
    assert state.state == "succeeded" and state.attempts == 2, state
    assert "resumed from the checkpoint at step" in state.log_tail
    new = set(_versions(a)) - versions
    assert len(new) == 1 and state.result and state.result["version"] in new  # one version
    # Production never went back: it stayed, or moved to the new version only.
    assert seen <= {prod, state.result["version"]}
    assert _production(b) in {prod, state.result["version"]}


def test_kill_9_of_an_api_replica_under_load_loses_no_retried_request(live: Live) -> None:
    a, b = live.apis
    ids = [live.client(1).upload_image(PROJECT, live.image(i)).id for i in range(12, 16)]
    done: list[tuple[str, str]] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        rng = random.Random(n)
        headers = {"Authorization": f"Bearer {live.token}"}
        for k in range(6):
            image_id = ids[(n + k) % len(ids)]
            for attempt in range(20):  # a device retries on the other replica
                url = (a, b)[(n + k + attempt) % 2].url
                try:
                    r = httpx.post(
                        f"{url}/api/v1/projects/{PROJECT}/analyses",
                        json={"image_id": image_id},
                        headers=headers,
                        timeout=60,
                    )
                except httpx.HTTPError:
                    time.sleep(0.1 + rng.random() * 0.2)
                    continue
                if r.status_code == 201:
                    with lock:
                        done.append((image_id, r.json()["id"]))
                    break
            else:
                with lock:
                    failures.append(image_id)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    a.kill()
    for t in threads:
        t.join(300)
    assert not failures and len(done) == 24
    survivor = MedloopClient(b.url, live.token)
    stored = {x.id for x in survivor.list_analyses(PROJECT, limit=500).items}
    assert {analysis for _, analysis in done} <= stored  # every acknowledged analysis is there
    live.cluster.restart(a)
    assert MedloopClient(a.url, live.token).get_analysis(PROJECT, done[0][1]).id == done[0][1]


def test_redis_restarted_mid_run_loses_no_queued_job(live: Live) -> None:
    a, b = live.client(0), live.client(1)
    first = a.create_job(PROJECT, "evaluate", {"split": "val"})
    live.cluster.restart_redis(down_s=0.5)  # its queues are gone (no persistence)
    # While Redis was down and just after: jobs are rows, queued at once.
    more = [(a, b)[k % 2].create_job(PROJECT, "evaluate", {"split": "val"}) for k in range(3)]
    for job in [first, *more]:
        state = b.wait_for_job(PROJECT, job.id, timeout=300, poll=0.3)
        assert state.state == "succeeded", state
        assert state.attempts == 1
