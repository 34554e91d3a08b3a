"""Against a real Orthanc with its DICOMweb plugin: sources analysed, SEGs stored back
referencing them, a SEG edited in the PACS picked up as a correction, an outage survived.

Needs the Debian packages ``orthanc`` and ``orthanc-dicomweb``
(``scripts/install-orthanc.sh``); skipped when the Orthanc binary is absent.
"""

from __future__ import annotations

import contextlib
import copy
import glob
import io
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from sqlalchemy import func, select

from medloop.dicom.seg import build_seg, deterministic_uid, encode_dataset
from medloop.dicom.seg_read import read_seg
from medloop.domain.labels import LabelSet
from medloop.storage.models import Correction

from .conftest import LABELS, DicomServer, sample_file

ORTHANC = shutil.which("Orthanc")
pytestmark = pytest.mark.skipif(ORTHANC is None, reason="Orthanc is not installed")
USER, PASSWORD = "medloop", "not-a-real-secret"


def _plugin() -> str:
    for pattern in (
        "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
        "/usr/lib/orthanc/libOrthancDicomWeb.so*",
        "/usr/lib/*/orthanc/libOrthancDicomWeb.so*",
    ):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    pytest.skip("the Orthanc DICOMweb plugin (orthanc-dicomweb) is not installed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Orthanc:
    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(USER, PASSWORD), timeout=10)

    def start(self) -> None:
        config = {
            "Name": "medloop-test",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "storage"),
            "HttpPort": self.port,
            "RemoteAccessAllowed": False,
            "DicomServerEnabled": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "Plugins": [_plugin()],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "StorageCompression": False,
            "HttpCompressionEnabled": False,
        }
        path = self.folder / "orthanc.json"
        path.write_text(json.dumps(config))
        log = open(self.folder / "orthanc.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen([str(ORTHANC), str(path)], stdout=log, stderr=log)
        end = time.monotonic() + 20
        with self.client() as c:
            while time.monotonic() < end:
                try:
                    if c.get("/system").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(
            f"Orthanc did not start: {(self.folder / 'orthanc.log').read_text()[-2000:]}"
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None

    def upload(self, data: bytes) -> None:
        with self.client() as c:
            r = c.post("/instances", content=data)
            r.raise_for_status()

    def segs(self) -> list[pydicom.Dataset]:
        out = []
        with self.client() as c:
            found = c.post(
                "/tools/find", json={"Level": "Instance", "Query": {}, "Expand": True}
            ).json()
            for inst in found:
                data = c.get(f"/instances/{inst['ID']}/file").content
                ds = pydicom.dcmread(io.BytesIO(data))
                if ds.Modality == "SEG":
                    out.append(ds)
        return out


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    server = Orthanc(tmp_path / "orthanc", _free_port())
    server.folder.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _sync(srv: DicomServer, project: str) -> dict:
    r = srv.client.post(f"/api/v1/projects/{project}/dicomweb/sync", headers=srv.h())
    assert r.status_code == 202, r.text
    job = srv.wait_job_in(project, r.json()["id"])
    assert job["state"] == "succeeded", job
    return job["result"]


def test_orthanc_round_trip(
    dicom_server: DicomServer, new_project: Callable[[str], str], orthanc: Orthanc
) -> None:
    new_project("pacs")
    sources = [sample_file("CT_small.dcm"), sample_file("MR_small.dcm")]
    with contextlib.suppress(pytest.skip.Exception):  # larger ones need pydicom-data
        sources.append(sample_file("emri_small_jpeg_2k_lossless.dcm"))  # J2K, 10 frames
    for path in sources:
        orthanc.upload(path.read_bytes())

    r = dicom_server.client.put(
        "/api/v1/projects/pacs/dicom",
        json={
            "dicomweb": {
                "url": f"{orthanc.url}/dicom-web",
                "auth": {"kind": "basic", "username": USER, "password": PASSWORD},
                "poll_interval_s": 3600,
            }
        },
        headers=dicom_server.h(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["dicomweb"]["auth"] == {
        "kind": "basic",
        "username": USER,
        "has_password": True,
        "has_token": False,
    }
    _sync(dicom_server, "pacs")  # runs after the sync the new settings queued
    state = dicom_server.client.get(
        "/api/v1/projects/pacs/dicomweb/instances", headers=dicom_server.h()
    ).json()
    assert state["counts"]["source"] == {"done": len(sources)}, state

    labels = LabelSet.from_dicts(LABELS)
    segs = orthanc.segs()
    referenced = {uid for seg in segs for uid in read_seg(seg, labels).references}
    uids = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in sources}
    assert referenced == uids
    for seg in segs:
        algo = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
        assert (algo.AlgorithmName, algo.AlgorithmVersion) == ("medloop", "v0001")

    # a clinician edits the MR result in a viewer and stores the SEG in the PACS
    mr = pydicom.dcmread(sample_file("MR_small.dcm"))
    mask = np.zeros((64, 64), np.uint8)
    mask[8:30, 8:30] = 1
    edited = build_seg(
        copy.deepcopy(mr),
        {0: mask},
        labels,
        model_version="edited",
        sop_instance_uid=deterministic_uid("orthanc-edit"),
        series_instance_uid=deterministic_uid("orthanc-edit-series"),
    )
    edited.Manufacturer = "OHIF"
    orthanc.upload(encode_dataset(edited))
    result = _sync(dicom_server, "pacs")
    assert result["corrections"] == 1, result
    with dicom_server.runtime.db.write() as s:
        pid = dicom_server.project_id_of("pacs")
        count = s.scalar(
            select(func.count()).select_from(Correction).where(Correction.project_id == pid)
        )
    assert count == 1

    # the PACS goes down: the sync says so, and the next one after it is back catches up
    orthanc.stop()
    result = _sync(dicom_server, "pacs")
    assert result["pacs_unavailable"] is True
    orthanc.start()
    ct2 = pydicom.dcmread(sample_file("CT_small.dcm"))
    ct2.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ct2.file_meta.MediaStorageSOPInstanceUID = ct2.SOPInstanceUID
    orthanc.upload(encode_dataset(ct2))
    result = _sync(dicom_server, "pacs")
    assert result["analysed"] == 1 and result["segs_stored"] == 1, result
    referenced = {uid for seg in orthanc.segs() for uid in read_seg(seg, labels).references}
    assert str(ct2.SOPInstanceUID) in referenced
