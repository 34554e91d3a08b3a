"""``kill -9`` the server during a fine-tune, restart it, and check every record and blob.

While the job trains, writer threads keep uploading and analysing images, so the kill
also lands in the middle of uploads. After the restart: the job is re-queued (or failed
with a reason), never left ``running``; production stays on the last version the gate
promoted; every acknowledged upload is still there; every row's blob exists and its
sha256 verifies; no temporary upload file and no half-written model version remains.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from .checks import (
    check_blobs,
    check_registry,
    count_rows,
    job_state_on_disk,
    png,
    production_on_disk,
)
from .conftest import Live, wait_job
from .serverproc import CLEAN_EXITS

# Enough steps for the job to be caught running with progress (reported every 0.25 s
# here), few enough that the attempt after the restart stays short on 2 CPU cores.
FINETUNE_STEPS = 40


def _writer(live: Live, seed: int, stop: threading.Event, acked: list[tuple[str, str]]) -> None:
    with live.client("annotator", timeout=30) as c:
        while not stop.is_set():
            try:
                up = c.post(
                    live.api("/images"), files={"file": (f"w{seed}.png", png(seed), "image/png")}
                )
                if up.status_code == 201:
                    acked.append(("image", up.json()["id"]))
                a = c.post(live.api("/analyses"), json={"image_id": up.json()["id"]})
                if a.status_code == 201:
                    acked.append(("analysis", a.json()["id"]))
            except Exception:
                return  # the server went away mid-request
            seed += 1000


def _wait_running(c: httpx.Client, live: Live, job_id: str, timeout: float = 120) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = c.get(live.api(f"/jobs/{job_id}")).json()
        if job["state"] == "running" and job["progress"] > 0:
            return job
        assert job["state"] in ("queued", "running"), f"the job ended before the kill: {job}"
        time.sleep(0.05)
    raise TimeoutError(job_id)


def test_kill_9_during_finetune(live: Live) -> None:
    data_dir = live.data_dir
    with live.client("annotator") as c:
        for i in (8, 9, 10, 11):
            up = c.post(
                live.api("/images"), files={"file": (f"{i}.png", live.image(i), "image/png")}
            )
            a = c.post(live.api("/analyses"), json={"image_id": up.json()["id"]})
            assert a.status_code == 201, a.text
            fix = c.post(
                live.api(f"/analyses/{a.json()['id']}/corrections"),
                files={"file": ("m.png", live.mask(i), "image/png")},
            )
            assert fix.status_code == 201, fix.text
    admin = live.client("admin")
    assert admin.get(live.api()).json()["production_version"] == "v0001"
    r = admin.post(
        live.api("/jobs"),
        json={"kind": "finetune", "options": {"steps": FINETUNE_STEPS}},
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    running = _wait_running(admin, live, job_id)
    assert running["attempts"] == 1

    stop = threading.Event()
    acked: list[tuple[str, str]] = []
    writers = [
        threading.Thread(target=_writer, args=(live, 10_000 + k, stop, acked)) for k in range(3)
    ]
    for t in writers:
        t.start()
    time.sleep(0.7)
    live.srv.kill()  # kill -9: no shutdown code runs
    stop.set()
    for t in writers:
        t.join(60)
    admin.close()

    # On disk, right after the crash: the job was running, production is untouched.
    assert job_state_on_disk(data_dir, job_id) == "running"
    assert production_on_disk(data_dir, live.project_id) == "v0001"

    live.srv.start()
    with live.client("admin") as admin:
        after = admin.get(live.api(f"/jobs/{job_id}")).json()
        assert "interrupted" in after["log_tail"], after["log_tail"]
        assert after["state"] != "running" or after["attempts"] >= 2, after
        # Nothing half-written survives the restart's sweep.
        assert sorted((data_dir / "blobs" / "tmp").iterdir()) == []
        final = wait_job(admin, job_id)
        assert final["state"] in ("succeeded", "failed"), final
        if final["state"] == "failed":
            assert final["error"], final
        assert final["attempts"] == 2
        prod = admin.get(live.api()).json()["production_version"]
        promoted = final["state"] == "succeeded" and final["result"]["promoted"]
        assert prod == (final["result"]["version"] if promoted else "v0001"), (prod, final)
        assert production_on_disk(data_dir, live.project_id) == prod
        # Every upload and analysis the server acknowledged before the kill is still there.
        assert acked, "the writers should have stored something before the kill"
        for kind, rid in acked:
            path = live.api(f"/images/{rid}" if kind == "image" else f"/analyses/{rid}")
            assert admin.get(path).status_code == 200, (kind, rid)
        for kind, rid in acked:
            if kind == "image":
                raw = admin.get(live.api(f"/images/{rid}/file"))
                assert raw.status_code == 200 and raw.content[:8] == b"\x89PNG\r\n\x1a\n"
        jobs = admin.get(live.api("/jobs")).json()["items"]
        assert all(j["state"] != "running" for j in jobs), jobs
    assert live.srv.stop() in CLEAN_EXITS

    versions = check_registry(data_dir)
    assert "v0001" in versions and prod in versions
    counts = check_blobs(data_dir)
    rows = count_rows(data_dir)
    assert counts["image"] == rows["images"] and counts["analysis"] == rows["analyses"]
    assert counts["correction"] == rows["corrections"] == 4
    assert sorted((data_dir / "blobs" / "tmp").iterdir()) == []
