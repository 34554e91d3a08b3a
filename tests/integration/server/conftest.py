"""An in-process server with users of every role, a project and a tiny trained model.

The ``server`` fixture runs on SQLite and, when ``MEDLOOP_TEST_POSTGRES_URL`` is set
(``make test`` sets it), again on PostgreSQL, in a database of its own.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from medloop.api import create_app
from medloop.domain.settings import ProjectSettings
from medloop.runtime import Runtime
from medloop.settings import Settings

from ..conftest import write_disc_dataset, write_volume_dataset

TINY = {
    "training": {"steps": 30, "patch_size": [32], "channels": [8, 16, 32]},
    "learning": {"steps": 10, "replay_size": 4},
    "finetune_every": 3,
}


def tiny_settings(label: str = "disc", color: str = "#ff0000") -> ProjectSettings:
    """A project with one label and a tiny, fast network."""
    return ProjectSettings.parse(
        {
            "labels": [{"value": 1, "name": label, "color": color}],
            "image_kind": "microscopy",
            **TINY,
        }
    )


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


POSTGRES_ENV = "MEDLOOP_TEST_POSTGRES_URL"


@contextmanager
def database(kind: str) -> Iterator[str | None]:
    """``None`` (the default SQLite file) or the URL of a new, empty PostgreSQL database."""
    if kind == "sqlite":
        yield None
        return
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"set {POSTGRES_ENV} to run the server tests on PostgreSQL")
    name = f"medloop_srv_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _make(
    tmp: Path, max_upload: int = 2 * 1024 * 1024, database_url: str | None = None
) -> Iterator[Server]:
    data = write_disc_dataset(tmp / "data", n_train=6, n_val=2, n_test=4)
    settings = Settings(
        data_dir=tmp / "srv",
        database_url=database_url,
        max_upload_bytes=max_upload,
        max_image_pixels=4_000_000,
        # every in-process request comes from "testclient": no per-client throttling here
        # (tests/security checks it against a real server, one address per client)
        auth_failures="100000/minute",
    )
    rt = Runtime(settings)
    tokens: dict[str, str] = {}
    rt.services.projects.create("discs", tiny_settings())
    rt.services.projects.create("other", tiny_settings("cell", "#00ff00"))
    for name, role, project in [
        ("admin", "admin", None),
        ("annotator", "annotator", "discs"),
        ("viewer", "viewer", "discs"),
        ("outsider", "admin", "other"),
    ]:
        _, tokens[name] = rt.services.users.add(name, role, project)
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


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with database(request.param) as url:
        yield from _make(tmp_path_factory.mktemp("server"), database_url=url)


def image_bytes(srv: Server, i: int) -> bytes:
    return (srv.data / "images" / f"case ({i}).png").read_bytes()


def mask_bytes(srv: Server, i: int) -> bytes:
    return (srv.data / "masks" / f"case ({i}).png").read_bytes()


VOLS = "/api/v1/projects/vols"


@dataclass
class Vols:
    client: TestClient
    runtime: Runtime
    headers: dict[str, str]
    data: Path
    flat: Path

    def nii(self, sub: str, i: int) -> bytes:
        return (self.data / sub / f"case{i}.nii.gz").read_bytes()

    def wait_job(self, job_id: str, timeout: float = 180) -> dict:
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            j = self.client.get(f"{VOLS}/jobs/{job_id}", headers=self.headers).json()
            if j["state"] in ("succeeded", "failed", "cancelled"):
                return j
            time.sleep(0.2)
        raise TimeoutError(job_id)

    def counts(self) -> tuple[int, int, int]:
        """Blobs in the store, and analyses and corrections of the 3D project."""
        c, h = self.client, self.headers
        return (
            len(list(self.runtime.blobs.keys())),
            len(c.get(f"{VOLS}/analyses?limit=500", headers=h).json()["items"]),
            len(c.get(f"{VOLS}/corrections", headers=h).json()["items"]),
        )


def _settings() -> ProjectSettings:
    return ProjectSettings.parse(
        {
            "labels": [
                {"value": 1, "name": "left", "color": "#ff0000"},
                {"value": 2, "name": "right", "color": "#00ff00"},
            ],
            "image_kind": "mri",
            "spatial_dims": 3,
            "max_frames": 64,
            "training": {"steps": 8, "channels": [8, 16, 32], "batch_size": 2},
            "learning": {"steps": 3, "replay_size": 2},
            "finetune_every": 1,
        }
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def vols(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Vols]:
    tmp = tmp_path_factory.mktemp("vols")
    with database(request.param) as url:
        data = write_volume_dataset(tmp / "data", n_train=3, n_val=1, n_test=2)
        flat = write_disc_dataset(tmp / "flat", n_train=1, n_val=0, n_test=0)
        settings = Settings(data_dir=tmp / "srv", database_url=url, auth_failures="100000/minute")
        rt = Runtime(settings)
        rt.services.projects.create("vols", _settings())
        rt.services.projects.create("flat", tiny_settings())
        _, token = rt.services.users.add("admin", "admin", None)
        with TestClient(create_app(settings, rt)) as client:
            v = Vols(client, rt, {"Authorization": f"Bearer {token}"}, data, flat)
            for i, split in enumerate(["train"] * 3 + ["val"]):
                r = client.post(
                    f"{VOLS}/reference",
                    files={
                        "image": (f"case{i}.nii.gz", v.nii("images", i)),
                        "mask": ("m.nii.gz", v.nii("masks", i)),
                    },
                    data={"split": split},
                    headers=v.headers,
                )
                assert r.status_code == 201, r.text
            job = client.post(f"{VOLS}/jobs", json={"kind": "train"}, headers=v.headers).json()
            assert v.wait_job(job["id"])["state"] == "succeeded"
            yield v
