"""A 3D project against a real Orthanc: a series stored in the PACS is found at series level
(by modality), fetched whole, analysed as one volume, and ONE SEG referencing all of its
instances is stored back; the next run fetches nothing again; a SEG a viewer stored in the
PACS becomes a correction of the volume.

Needs the Debian packages ``orthanc`` and ``orthanc-dicomweb``; skipped without them.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import nibabel as nib
import numpy as np
import pydicom
import pytest

from medloop.dicom.seg import encode_dataset
from medloop.dicom.series_headers import headers_only
from medloop.dicom.series_seg import build_series_seg
from medloop.io.dicom_series import assemble_series

from ...dicom_series import series_files
from .conftest import SETTINGS_3D, DicomServer, sample_file
from .test_orthanc import ORTHANC, PASSWORD, USER, Orthanc, _free_port
from .test_sync import _ledger

pytestmark = pytest.mark.skipif(ORTHANC is None, reason="Orthanc is not installed")

SERIES = "1.2.826.0.1.3680043.8.498.77"


@pytest.fixture
def orthanc3d(tmp_path: Path) -> Iterator[Orthanc]:
    server = Orthanc(tmp_path / "orthanc", _free_port())
    server.folder.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _sync(srv: DicomServer) -> dict:
    r = srv.client.post("/api/v1/projects/pacs3d/dicomweb/sync", headers=srv.h())
    assert r.status_code == 202, r.text
    job = srv.wait_job_in("pacs3d", r.json()["id"])
    assert job["state"] == "succeeded", job
    return dict(job["result"])


def test_a_series_in_orthanc_is_analysed_and_its_seg_stored_back(
    dicom_server: DicomServer,
    orthanc3d: Orthanc,
    volumes_3d: Path,
    new_project_3d: Callable[[str], str],
) -> None:
    new_project_3d("pacs3d")
    data = volumes_3d
    scan = nib.Nifti1Image.from_bytes(
        gzip.decompress((data / "images" / "case3.nii.gz").read_bytes())
    )
    files = series_files(np.asarray(scan.dataobj), scan.affine, series_uid=SERIES, shuffle=2)
    for _, raw in files:
        orthanc3d.upload(raw)
    orthanc3d.upload(sample_file("CT_small.dcm").read_bytes())  # a CT: not this project's

    r = dicom_server.client.put(
        "/api/v1/projects/pacs3d/dicom",
        json={
            "dicomweb": {
                "url": f"{orthanc3d.url}/dicom-web",
                "auth": {"kind": "basic", "username": USER, "password": PASSWORD},
                "poll_interval_s": 3600,
                "modalities": ["MR"],
            }
        },
        headers=dicom_server.h(),
    )
    assert r.status_code == 200, r.text
    result = _sync(dicom_server)  # runs after the sync the new settings queued
    state = dicom_server.client.get(
        "/api/v1/projects/pacs3d/dicomweb/instances", headers=dicom_server.h()
    ).json()
    assert state["counts"]["source"] == {"done": 1}, (state, result)

    with httpx.Client(base_url=f"{orthanc3d.url}/dicom-web", auth=(USER, PASSWORD)) as c:
        study = str(pydicom.dcmread(io.BytesIO(files[0][1])).StudyInstanceUID)
        found = c.get(f"/studies/{study}/series", params={"Modality": "SEG"}).json()
        assert len(found) == 1, found
        seg_series = found[0]["0020000E"]["Value"][0]
        instances = c.get(f"/studies/{study}/series/{seg_series}/instances").json()
        assert len(instances) == 1
    (seg,) = [s for s in orthanc3d.segs() if str(s.SeriesInstanceUID) == seg_series]
    referenced = {
        str(i.ReferencedSOPInstanceUID)
        for s in seg.ReferencedSeriesSequence
        for i in s.ReferencedInstanceSequence
    }
    sources = {str(pydicom.dcmread(io.BytesIO(raw)).SOPInstanceUID) for _, raw in files}
    assert referenced == sources and len(sources) == 20
    algo = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert (algo.AlgorithmName, algo.AlgorithmVersion) == ("medloop", "v0001")

    again = _sync(dicom_server)  # nothing fetched or analysed twice
    assert (again["analysed"], again["segs_stored"], again["corrections"]) == (0, 0, 0), again
    ledger = _ledger(dicom_server, dicom_server.project_id_of("pacs3d"))
    assert ledger[seg_series] == ("other", "skipped")  # our SEG's series: listed once
    assert ledger[str(seg.SOPInstanceUID)] == ("seg_out", "done")  # never read back

    # a clinician edits the result in a viewer, which stores its SEG in the PACS
    volume = assemble_series(files, max_pixels=10**7)
    edited = np.zeros(volume.shape, np.uint8)
    edited[4:12, 5:11, 3:9] = 2
    viewer = build_series_seg(
        [headers_only(raw) for _, raw in files],
        edited,
        volume.affine,
        SETTINGS_3D.label_set,
        model_version="edited",
        sop_instance_uid="2.25.7001",
        series_instance_uid="2.25.7002",
    )
    viewer.Manufacturer = "3D Slicer"
    orthanc3d.upload(encode_dataset(viewer))
    result = _sync(dicom_server)
    assert result["corrections"] == 1, result
    pid = dicom_server.project_id_of("pacs3d")
    (correction,) = dicom_server.runtime.services.corrections.recent(pid)
    stored = dicom_server.runtime.services.corrections.mask(pid, correction.id).data
    kept = nib.Nifti1Image.from_bytes(gzip.decompress(stored))
    assert np.array_equal(np.asarray(kept.dataobj), edited)
