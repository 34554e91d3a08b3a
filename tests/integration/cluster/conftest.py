"""A real cluster on loopback: 2 API replicas + 2 Celery workers + Redis + PostgreSQL.

Built once for the module by ``bench/cluster.py`` (the same code ``make cluster``
runs): a new database in the test PostgreSQL (``scripts/with-postgres.sh``), Debian's
``redis-server`` without persistence, one shared data folder (the blob store),
``medloop serve --no-worker`` twice and ``medloop worker`` twice. A tiny project is
trained through replica A before the tests. Every process is stopped at the end,
also when a test fails. Skipped without ``redis-server`` or the test PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bench.cluster import Cluster, Proc

from medloop.client import MedloopClient

from ..conftest import write_disc_dataset

PROJECT = "discs"
SETTINGS = {
    "training": {"steps": 30, "patch_size": [32], "channels": [8, 16, 32]},
    "learning": {"steps": 10, "replay_size": 4},
    "finetune_every": 1000,
}
# Heartbeats every 0.25 s; a worker silent for 4 s is dead; the broker's queues are
# checked against the table every 2 s.
ENV = {"MEDLOOP_JOB_HEARTBEAT_S": "0.25", "MEDLOOP_JOB_STALE_S": "4", "MEDLOOP_JOB_RESEND_S": "2"}


@dataclass
class Live:
    cluster: Cluster
    token: str
    dataset: Path

    @property
    def apis(self) -> list[Proc]:
        return [p for p in self.cluster.procs if p.port is not None]

    @property
    def workers(self) -> list[Proc]:
        return [p for p in self.cluster.procs if p.port is None]

    def client(self, i: int, timeout: float = 120.0) -> MedloopClient:
        return MedloopClient(self.apis[i].url, self.token, timeout=timeout)

    def image(self, i: int) -> bytes:
        return (self.dataset / "images" / f"case ({i}).png").read_bytes()

    def mask(self, i: int) -> bytes:
        return (self.dataset / "masks" / f"case ({i}).png").read_bytes()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    pg = os.environ.get("MEDLOOP_TEST_POSTGRES_URL")
    if not pg:
        pytest.skip("the cluster tests need MEDLOOP_TEST_POSTGRES_URL (scripts/with-postgres.sh)")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (make services)")
    root = tmp_path_factory.mktemp("cluster")
    cluster = Cluster(root, postgres_url=pg, env=ENV)
    try:
        cluster.start(apis=2, workers=["train,analyze,dicom", "train,analyze,dicom"])
        token = cluster.users_add("admin")
        dataset = write_disc_dataset(root / "dataset", n_train=6, n_val=2, n_test=8)
        lv = Live(cluster, token, dataset)
        a, b = lv.client(0), lv.client(1)
        a.create_project(
            PROJECT, [{"value": 1, "name": "disc", "color": "#ff0000"}], "microscopy", **SETTINGS
        )
        for i, split in enumerate(["train"] * 6 + ["val"] * 2):
            (a if i % 2 else b).add_reference(
                PROJECT, lv.image(i), lv.mask(i), split, filename=f"case ({i}).png"
            )
        job = a.wait_for_job(PROJECT, b.create_job(PROJECT, "train").id, timeout=600, poll=0.3)
        assert job.state == "succeeded", job
        yield lv
    except BaseException:
        for proc in [*cluster.procs, cluster.redis]:
            if proc is not None:
                print(f"--- {proc.name}\n{proc.tail(4000)}")
        raise
    finally:
        cluster.stop()
