"""Cluster benchmark: what one more API replica or worker buys, measured on real processes.

Starts the loopback cluster of ``bench/cluster.py`` (PostgreSQL, Redis, shared blob
folder) and measures, in one run:

1. analyses/s and p50/p99 latency with 1, then 2 API replicas (clients spread over
   the replicas, 256×256 images already uploaded);
2. fine-tunes completed per hour with 1, then 2 training workers (two projects, one
   fine-tune each at a time: one learning job per project);
3. the time from a clinician's correction (the one that triggers a fine-tune) to the
   new version being served by every replica.

On a small machine every process shares the same cores: the figures show the
overheads and the mechanics, not the scaling a second machine would give (see
deploy/README.md for the model).

    .venv/bin/python bench/cluster_load.py --json bench/results/cluster-cpu.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import Cluster
from medloop.client import MedloopClient
from server_load import disc_pair, run_level

ROOT = Path(__file__).resolve().parents[1]
LABELS = [{"value": 1, "name": "disc", "color": "#ff0000"}]


def _disc(rng: np.random.Generator, size: int) -> tuple[bytes, bytes]:
    """A synthetic image and its mask (bright discs), as PNG bytes."""
    out = []
    for arr in disc_pair(rng, size):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out[0], out[1]


def _level(urls: list[str], token: str, ids: list[str], clients: int, n: int) -> dict[str, Any]:
    level = asdict(run_level(urls, token, "p0", ids, clients, n, max_s=600))
    return {"replicas": len(urls), **{k: v for k, v in level.items() if k != "ratio_to_raw"}}


def _finetunes(clients: list[MedloopClient], projects: list[str], steps: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    jobs = [clients[0].create_job(p, "finetune", {"steps": steps}) for p in projects]
    done = [
        clients[1].wait_for_job(p, j.id, timeout=3600, poll=0.5)
        for p, j in zip(projects, jobs, strict=True)
    ]
    wall = time.perf_counter() - t0
    assert all(j.state == "succeeded" for j in done), done
    return {
        "jobs": len(done),
        "seconds": round(wall, 1),
        "per_hour": round(3600 * len(done) / wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=60, help="training steps of each project")
    ap.add_argument("--finetune-steps", type=int, default=60)
    ap.add_argument("--levels", default="8,32")
    ap.add_argument("--requests", type=int, default=96)
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "cluster-cpu.json")
    args = ap.parse_args(argv)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    root = Path(tempfile.mkdtemp(prefix="medloop-cluster-bench-"))
    env = {
        "MEDLOOP_JOB_HEARTBEAT_S": "1",
        "MEDLOOP_JOB_STALE_S": "20",
        "MEDLOOP_JOB_RESEND_S": "10",
    }
    cluster = Cluster(root, env=env, threads=os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    report: dict[str, Any] = {}
    try:
        cluster.start_postgres()
        cluster.start_redis()
        api0 = cluster.add_api()
        cluster.add_worker("train,analyze,dicom")
        token = cluster.users_add("bench")
        c0 = MedloopClient(api0.url, token, timeout=600)
        training = {"steps": args.steps, "patch_size": [128], "channels": [16, 32, 64, 128]}
        for p in ("p0", "p1"):
            # A wide margin: every candidate is promoted, so the version always changes.
            c0.create_project(
                p,
                LABELS,
                "microscopy",
                training=training,
                learning={"replay_size": 8},
                acceptance={"margin": 1.0},
                finetune_every=1000,
            )
            for i, split in enumerate(["train"] * 12 + ["val"] * 4):
                img, mask = _disc(rng, 256)
                c0.add_reference(p, img, mask, split, filename=f"r{i}.png")
        jobs = [c0.create_job(p, "train") for p in ("p0", "p1")]
        for p, j in zip(("p0", "p1"), jobs, strict=True):
            assert c0.wait_for_job(p, j.id, timeout=3600, poll=1).state == "succeeded"
        tests = [_disc(rng, 256) for _ in range(16)]
        ids = [
            c0.upload_image("p0", img, filename=f"t{i}.png").id for i, (img, _) in enumerate(tests)
        ]
        for i in ids[:2]:
            c0.analyze("p0", image_id=i)
        levels = [int(x) for x in args.levels.split(",")]
        analyses = [_level([api0.url], token, ids, n, args.requests) for n in levels]
        api1 = cluster.add_api()
        c1 = MedloopClient(api1.url, token, timeout=600)
        c1.analyze("p0", image_id=ids[0])  # loads the model on the new replica
        analyses += [_level([api0.url, api1.url], token, ids, n, args.requests) for n in levels]
        for p in ("p0", "p1"):  # three corrections each, for the fine-tunes
            for img, mask in tests[:3]:
                a = c0.analyze(p, file=img, filename="c.png")
                c1.correct(p, a.id, mask, filename="m.png")
        finetunes = [{"workers": 1, **_finetunes([c0, c1], ["p0", "p1"], args.finetune_steps)}]
        cluster.add_worker("train,analyze,dicom")
        finetunes.append({"workers": 2, **_finetunes([c0, c1], ["p0", "p1"], args.finetune_steps)})
        # Correction -> fine-tune -> gate -> served by both replicas.
        before = c0.get_project("p0").production_version
        img, mask = tests[5]
        a = c1.analyze("p0", file=img, filename="last.png")
        t0 = time.perf_counter()
        fix = c0.correct("p0", a.id, mask, filename="m.png")
        job = c0.create_job("p0", "finetune", {"steps": args.finetune_steps})
        served: dict[str, float] = {}
        while len(served) < 2 and time.perf_counter() - t0 < 3600:
            for name, c in (("api0", c0), ("api1", c1)):
                if name not in served and c.analyze("p0", image_id=ids[0]).model_version != before:
                    served[name] = round(time.perf_counter() - t0, 2)
            time.sleep(0.1)
        state = c0.get_job("p0", job.id)
        report = {
            "benchmark": "cluster_load",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "load_average_at_start": load_at_start,
            "model": {"train_steps": args.steps, "patch_size": 128, "channels": [16, 32, 64, 128]},
            "analyses": analyses,
            "finetunes": finetunes,
            "correction_to_served": {
                "correction": fix.id,
                "finetune_steps": args.finetune_steps,
                "job_seconds": state.result.get("seconds") if state.result else None,
                "seconds_until_served_by": served,
            },
        }
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
