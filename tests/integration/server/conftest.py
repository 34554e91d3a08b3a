"""An in-process server with users of every role, a project and a tiny trained model."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from medloop.api import create_app
from medloop.runtime import Runtime
from medloop.settings import Settings
from medloop.storage import repositories as repo

from ..conftest import write_disc_dataset

TINY_LEARNING = {
    "train_steps": 30,
    "patch_size": 32,
    "channels": [8, 16, 32],
    "steps": 10,
    "finetune_every": 3,
    "replay_size": 4,
}


@dataclass
class Server:
    client: TestClient
    runtime: Runtime
    tokens: dict[str, str]
    project: str
    other_project: str
    data: Path

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}

    def wait_job(self, job_id: str, who: str = "admin", timeout: float = 120) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            j = self.client.get(
                f"/api/v1/projects/{self.project}/jobs/{job_id}", headers=self.h(who)
            ).json()
            if j["state"] in ("succeeded", "failed", "cancelled"):
                return j
            time.sleep(0.2)
        raise TimeoutError(job_id)


def _make(tmp: Path, max_upload: int = 2 * 1024 * 1024) -> Iterator[Server]:
    data = write_disc_dataset(tmp / "data", n_train=6, n_val=2, n_test=4)
    settings = Settings(
        data_dir=tmp / "srv", max_upload_bytes=max_upload, max_image_pixels=4_000_000
    )
    rt = Runtime(settings)
    tokens: dict[str, str] = {}
    with rt.session() as s:
        p1 = repo.create_project(
            s,
            name="discs",
            labels=[{"value": 1, "name": "disc", "color": "#ff0000"}],
            image_kind="microscopy",
            learning=TINY_LEARNING,
        )
        p2 = repo.create_project(
            s,
            name="other",
            labels=[{"value": 1, "name": "cell", "color": "#00ff00"}],
            image_kind="microscopy",
            learning=TINY_LEARNING,
        )
        for name, role, pid in [
            ("admin", "admin", None),
            ("annotator", "annotator", p1.id),
            ("viewer", "viewer", p1.id),
            ("outsider", "admin", p2.id),
        ]:
            _, tokens[name] = repo.create_user(s, name, role, pid)
    app = create_app(settings, rt)
    with TestClient(app) as client:
        srv = Server(client, rt, tokens, "discs", "other", data)
        for i, split in enumerate(["train"] * 6 + ["val"] * 2):
            with (
                open(data / "images" / f"case ({i}).png", "rb") as fi,
                open(data / "masks" / f"case ({i}).png", "rb") as fm,
            ):
                r = client.post(
                    "/api/v1/projects/discs/reference",
                    files={"image": (f"case ({i}).png", fi), "mask": ("m.png", fm)},
                    data={"split": split},
                    headers=srv.h("admin"),
                )
            assert r.status_code == 201, r.text
        job = client.post(
            "/api/v1/projects/discs/jobs", json={"kind": "train"}, headers=srv.h("admin")
        ).json()
        assert srv.wait_job(job["id"])["state"] == "succeeded"
        yield srv


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _make(tmp_path_factory.mktemp("server"))


def image_bytes(srv: Server, i: int) -> bytes:
    return (srv.data / "images" / f"case ({i}).png").read_bytes()


def mask_bytes(srv: Server, i: int) -> bytes:
    return (srv.data / "masks" / f"case ({i}).png").read_bytes()
