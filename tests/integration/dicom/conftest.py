"""An in-process server with a tiny trained model, for the DICOM tests.

One server per test session: training the model takes a few seconds, every test
makes its own project-level state (images are content-addressed per project).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient
from pydicom.data import get_testdata_file

from medloop.api import create_app
from medloop.domain.settings import ProjectSettings
from medloop.runtime import Runtime
from medloop.settings import Settings

from ..conftest import write_disc_dataset, write_volume_dataset

LABELS = [
    {"value": 1, "name": "disc", "color": "#ff0000"},
    {"value": 2, "name": "rim", "color": "#00ff00"},
]
SETTINGS = ProjectSettings.parse(
    {
        "labels": LABELS,
        "image_kind": "ct",
        "training": {"steps": 12, "patch_size": [32], "channels": [4, 8], "val_every": 1000},
        "learning": {"steps": 4, "replay_size": 2},
        "finetune_every": 0,
    }
)

SETTINGS_3D = ProjectSettings.parse(
    {
        "labels": [
            {"value": 1, "name": "left", "color": "#ff0000"},
            {"value": 2, "name": "right", "color": "#00ff00"},
        ],
        "image_kind": "mri",
        "spatial_dims": 3,
        "max_frames": 64,
        "training": {"steps": 6, "channels": [4, 8], "batch_size": 2},
        "learning": {"steps": 2, "replay_size": 2},
        "finetune_every": 0,
    }
)


@dataclass
class DicomServer:
    client: TestClient
    runtime: Runtime
    tokens: dict[str, str]
    project: str
    project_id: str

    def h(self, who: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}

    def wait_job(self, job_id: str, timeout: float = 120) -> dict:
        return self.wait_job_in(self.project, job_id, timeout)

    def wait_job_in(self, project: str, job_id: str, timeout: float = 120) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            j = self.client.get(
                f"/api/v1/projects/{project}/jobs/{job_id}", headers=self.h()
            ).json()
            if j["state"] in ("succeeded", "failed", "cancelled"):
                return j
            time.sleep(0.1)
        raise TimeoutError(job_id)

    def project_id_of(self, name: str) -> str:
        return self.runtime.services.projects.find(name).id


def sample_file(name: str) -> Path:
    """A pydicom test file (bundled, or from ``pydicom-data`` when installed); else skip."""
    try:
        path = get_testdata_file(name, download=False)
    except Exception:  # pragma: no cover - depends on what is installed
        path = None
    if path is None:
        pytest.skip(f"pydicom test file {name} is not available offline")
    return Path(str(path))


def dicom_bytes(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def multiframe_ct(frames: int = 3) -> pydicom.Dataset:
    """CT_small as a multi-frame image: frame k is the CT shifted by k rows, new UIDs."""
    ds = pydicom.dcmread(sample_file("CT_small.dcm"))
    base = ds.pixel_array
    stack = np.stack([np.roll(base, 7 * k, axis=0) for k in range(frames)])
    ds.NumberOfFrames = frames
    ds.PixelData = stack.astype(base.dtype).tobytes()
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    return ds


def _make(tmp: Path) -> Iterator[DicomServer]:
    data = write_disc_dataset(tmp / "data", n_train=4, n_val=2, n_test=0)
    settings = Settings(
        data_dir=tmp / "srv", max_upload_bytes=8 * 1024 * 1024, dicomweb_hosts=["127.0.0.1"]
    )
    rt = Runtime(settings)
    tokens: dict[str, str] = {}
    project = rt.services.projects.create("ct", SETTINGS).project
    rt.services.projects.create("elsewhere", SETTINGS)
    for name, role, pid in [
        ("admin", "admin", None),
        ("annotator", "annotator", "ct"),
        ("viewer", "viewer", "ct"),
        ("outsider", "admin", "elsewhere"),
    ]:
        _, tokens[name] = rt.services.users.add(name, role, pid)
    app = create_app(settings, rt)
    with TestClient(app) as client:
        srv = DicomServer(client, rt, tokens, "ct", project.id)
        for i, split in enumerate(["train"] * 4 + ["val"] * 2):
            r = client.post(
                "/api/v1/projects/ct/reference",
                files={
                    "image": (f"{i}.png", (data / "images" / f"case ({i}).png").read_bytes()),
                    "mask": ("m.png", (data / "masks" / f"case ({i}).png").read_bytes()),
                },
                data={"split": split},
                headers=srv.h(),
            )
            assert r.status_code == 201, r.text
        job = client.post(
            "/api/v1/projects/ct/jobs", json={"kind": "train"}, headers=srv.h()
        ).json()
        assert srv.wait_job(job["id"])["state"] == "succeeded"
        yield srv


@pytest.fixture(scope="session")
def dicom_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DicomServer]:
    yield from _make(tmp_path_factory.mktemp("dicom-server"))


@pytest.fixture
def upload(dicom_server: DicomServer) -> Callable[..., dict]:
    """``upload(bytes, name, who="admin") -> analysis JSON`` (asserts 201)."""

    def go(data: bytes, name: str = "x.dcm", who: str = "admin") -> dict:
        r = dicom_server.client.post(
            "/api/v1/projects/ct/analyses",
            files={"file": (name, data, "application/dicom")},
            headers=dicom_server.h(who),
        )
        assert r.status_code == 201, r.text
        return r.json()

    return go


@pytest.fixture
def new_project(dicom_server: DicomServer) -> Callable[[str], str]:
    """``new_project(name) -> id``: a project with the session's trained model in production."""
    svc = dicom_server.runtime.services

    def make(name: str) -> str:
        project = svc.projects.create(name, SETTINGS).project
        source, target = svc.models.store(dicom_server.project_id), svc.models.store(project.id)
        for v in source.versions():
            files = {f: source.read_file(v.name, f) for f in v.files}
            target.add_version(files, v.manifest, v.lineage, v.metrics)
        target.promote(str(source.production()), "copied for a test")
        return project.id

    return make


def _copy_models(srv: DicomServer, source_id: str, target_id: str) -> None:
    svc = srv.runtime.services
    source, target = svc.models.store(source_id), svc.models.store(target_id)
    for v in source.versions():
        files = {f: source.read_file(v.name, f) for f in v.files}
        target.add_version(files, v.manifest, v.lineage, v.metrics)
    target.promote(str(source.production()), "copied for a test")


@pytest.fixture(scope="session")
def volumes_3d(dicom_server: DicomServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3D project ``vol3d`` trained on tiny volumes (once a session); the volumes' folder."""
    data = write_volume_dataset(tmp_path_factory.mktemp("vol3d"), n_train=2, n_val=1, n_test=1)
    dicom_server.runtime.services.projects.create("vol3d", SETTINGS_3D)
    for i, split in enumerate(["train", "train", "val"]):
        r = dicom_server.client.post(
            "/api/v1/projects/vol3d/reference",
            files={
                "image": (f"case{i}.nii.gz", (data / "images" / f"case{i}.nii.gz").read_bytes()),
                "mask": ("m.nii.gz", (data / "masks" / f"case{i}.nii.gz").read_bytes()),
            },
            data={"split": split},
            headers=dicom_server.h(),
        )
        assert r.status_code == 201, r.text
    r = dicom_server.client.post(
        "/api/v1/projects/vol3d/jobs", json={"kind": "train"}, headers=dicom_server.h()
    )
    assert dicom_server.wait_job_in("vol3d", r.json()["id"])["state"] == "succeeded"
    return data


@pytest.fixture
def new_project_3d(dicom_server: DicomServer, volumes_3d: Path) -> Callable[[str], str]:
    """``new_project_3d(name) -> id``: a 3D project with ``vol3d``'s model in production."""

    def make(name: str) -> str:
        project = dicom_server.runtime.services.projects.create(name, SETTINGS_3D).project
        _copy_models(dicom_server, dicom_server.project_id_of("vol3d"), project.id)
        return project.id

    return make
