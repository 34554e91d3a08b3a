"""One real ``medloop serve`` for the whole catalogue, with every kind of caller.

Built once per session: ``medloop users add`` makes the unscoped admin, the server is
started with the production defaults (apart from a 2 MB upload limit and a per-user
limit of 20 analyses waiting, so the limits are cheap to reach), two projects are
created over HTTP (``discs``, at most 100 frames per request, and ``other``), the
other users are added with the CLI while the server runs, reference pairs are
uploaded, a tiny model is trained, and one analysis and one correction are made.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import write_disc_dataset
from tests.integration.process.serverproc import (
    ServerProcess,
    upload_reference_pairs,
    users_add,
)

from .live import Live, Served, wait_job

PROJECT, OTHER = "discs", "other"
LABELS = [{"value": 1, "name": "disc", "color": "#ff0000"}]
SETTINGS: dict[str, Any] = {
    "labels": LABELS,
    "training": {"steps": 30, "patch_size": [32], "channels": [8, 16, 32]},
    "learning": {"steps": 10, "replay_size": 4},
    "finetune_every": 1000,
    "max_frames": 100,
}
ENV = {
    "MEDLOOP_MAX_UPLOAD_BYTES": str(2 * 1024 * 1024),
    "MEDLOOP_MAX_QUEUED_ANALYSES": "20",
    "MEDLOOP_JOB_HEARTBEAT_S": "0.25",
}
CALLERS = ("none", "bad", "viewer", "annotator", "padmin", "outsider", "admin")
"""No token, a wrong token, a viewer, an annotator and an admin of ``discs``, an admin of
``other`` (the outsider), and an admin bound to no project."""


def _setup(live: Live, dataset: Path) -> None:
    data_dir = live.data_dir
    with live.client("admin") as c:
        for name, settings in ((PROJECT, SETTINGS), (OTHER, {"labels": LABELS})):
            r = c.post("/api/v1/projects", json={"name": name, **settings})
            assert r.status_code == 201, r.text
            live.ids[name] = r.json()["id"]
        for name, role, project in [
            ("viewer", "viewer", PROJECT),
            ("annotator", "annotator", PROJECT),
            ("padmin", "admin", PROJECT),
            ("outsider", "admin", OTHER),
        ]:
            live.tokens[name] = users_add(data_dir, name, role, project)
        upload_reference_pairs(c, PROJECT, dataset, ["train"] * 6 + ["val"] * 2)
        r = c.post(f"/api/v1/projects/{PROJECT}/jobs", json={"kind": "train"})
        assert r.status_code == 202, r.text
        live.ids["j"] = r.json()["id"]
        job = wait_job(c, f"/api/v1/projects/{PROJECT}/jobs/{live.ids['j']}")
        assert job["state"] == "succeeded", job
    with live.client("annotator") as c:
        image = (dataset / "images" / "case (8).png").read_bytes()
        r = c.post(f"/api/v1/projects/{PROJECT}/analyses", files={"file": ("scan.png", image)})
        assert r.status_code == 201, r.text
        live.ids["a"], live.ids["i"] = r.json()["id"], r.json()["image_id"]
        mask = (dataset / "masks" / "case (8).png").read_bytes()
        r = c.post(
            f"/api/v1/projects/{PROJECT}/analyses/{live.ids['a']}/corrections",
            files={"file": ("m.png", mask)},
        )
        assert r.status_code == 201, r.text
        live.ids["c"] = r.json()["id"]


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_disc_dataset(
        tmp_path_factory.mktemp("sec-data") / "ds", n_train=6, n_val=2, n_test=2
    )


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, dataset: Path) -> Iterator[Live]:
    """The catalogue's server (kept running for the session)."""
    root = tmp_path_factory.mktemp("sec-live")
    data_dir = root / "srv"
    tokens = {"admin": users_add(data_dir, "admin", "admin"), "bad": "mlp_" + "0" * 43}
    srv = ServerProcess(data_dir, root / "server.log", env=ENV)
    srv.start()
    files = {
        "png": (dataset / "images" / "case (9).png").read_bytes(),
        "mask": (dataset / "masks" / "case (9).png").read_bytes(),
    }
    lv = Live(srv, tokens, {}, files)
    try:
        _setup(lv, dataset)
        yield lv
    finally:
        srv.stop()


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Live]:
    """A server of its own, without projects: for tests whose counts (the audit budget of
    failed authentications, a moving window shared by all clients) others would disturb."""
    data_dir = tmp_path / "srv"
    tokens = {"admin": users_add(data_dir, "admin", "admin")}
    srv = ServerProcess(data_dir, tmp_path / "server.log", env=ENV)
    srv.start()
    try:
        yield Live(srv, tokens, {}, {})
    finally:
        srv.stop()


@dataclass
class Plain(Served):
    """A second server, without a model, started with the options under test: ``--docs``,
    a trusted proxy at 127.0.0.2, one-second header and body timeouts, and DICOMweb
    allowed to 127.0.0.1 (the tests' fake PACS)."""

    admin: str
    root: Path

    ARGS = (
        "--docs",
        "--behind-proxy",
        "127.0.0.2",
        "--header-timeout",
        "1",
        "--body-timeout",
        "1",
        "--dicomweb-host",
        "127.0.0.1",
    )

    def client(self, source: str = "127.0.0.1", token: str | None = None) -> Any:
        from .live import client_from

        return client_from(self.url, source, token if token is not None else self.admin)


@pytest.fixture(scope="session")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plain]:
    root = tmp_path_factory.mktemp("sec-plain")
    data_dir = root / "srv"
    admin = users_add(data_dir, "admin", "admin")
    srv = ServerProcess(data_dir, root / "server.log", args=Plain.ARGS)
    srv.start()
    try:
        yield Plain(srv, admin, root)
    finally:
        srv.stop()
