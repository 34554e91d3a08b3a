"""Erasure of a patient or a study of DICOM data: only theirs goes, shared blobs stay, and a
Patient ID given as it was before de-identification on ingest is found through the map."""

from __future__ import annotations

from collections.abc import Callable

import pydicom

from .conftest import DicomServer, dicom_bytes, sample_file


def _ct(patient: str, study: str | None = None) -> pydicom.Dataset:
    ds = pydicom.dcmread(sample_file("CT_small.dcm"))
    ds.PatientID = patient
    ds.PatientName = f"{patient}^Test"
    ds.StudyInstanceUID = study or pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def _analyse(srv: DicomServer, project: str, ds: pydicom.Dataset) -> dict:
    r = srv.client.post(
        f"/api/v1/projects/{project}/analyses",
        files={"file": ("x.dcm", dicom_bytes(ds), "application/dicom")},
        headers=srv.h(),
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _erase(srv: DicomServer, project: str, scope: str, value: str) -> dict:
    r = srv.client.post(
        f"/api/v1/projects/{project}/erasures",
        json={"scope": scope, "value": value, "reason": "test"},
        headers=srv.h(),
    )
    assert r.status_code == 202, r.text
    assert srv.wait_job_in(project, r.json()["job"]["id"])["state"] == "succeeded"
    erasure = srv.client.get(
        f"/api/v1/projects/{project}/erasures/{r.json()['erasure']['id']}", headers=srv.h()
    ).json()
    return dict(erasure)


def _exists(srv: DicomServer, project: str, analysis: dict) -> bool:
    r = srv.client.get(f"/api/v1/projects/{project}/analyses/{analysis['id']}", headers=srv.h())
    return r.status_code == 200


def test_erase_a_patient_and_a_study(
    dicom_server: DicomServer, new_project: Callable[[str], str]
) -> None:
    new_project("erase-dicom")
    study = pydicom.uid.generate_uid()
    p1_a = _analyse(dicom_server, "erase-dicom", _ct("P-1", study))
    p1_b = _analyse(dicom_server, "erase-dicom", _ct("P-1"))
    p2 = _analyse(dicom_server, "erase-dicom", _ct("P-2", study))
    shared = _ct("P-1")  # the same bytes in another project: its blob must stay
    other = _analyse(dicom_server, "ct", shared)
    mine = _analyse(dicom_server, "erase-dicom", shared)
    image = dicom_server.client.get(
        f"/api/v1/projects/ct/images/{other['image_id']}", headers=dicom_server.h()
    ).json()
    preview = dicom_server.client.post(
        "/api/v1/projects/erase-dicom/erasures/preview",
        json={"scope": "patient", "value": "P-1"},
        headers=dicom_server.h(),
    ).json()
    assert preview["counts"]["image"] == 3 and preview["counts"]["analysis"] == 3
    done = _erase(dicom_server, "erase-dicom", "patient", "P-1")
    assert done["counts"]["images"] == 3 and done["counts"]["blobs_still_used"] >= 1
    assert not any(_exists(dicom_server, "erase-dicom", a) for a in (p1_a, p1_b, mine))
    assert _exists(dicom_server, "erase-dicom", p2) and _exists(dicom_server, "ct", other)
    assert dicom_server.runtime.blobs.path(image["sha256"]).is_file()
    assert "P-1" not in str(done) and done["value_sha256"]
    # the study P-1 shared with P-2: erasing it takes what is left of it
    assert _erase(dicom_server, "erase-dicom", "study", study)["counts"]["images"] == 1
    assert not _exists(dicom_server, "erase-dicom", p2)
    r = dicom_server.client.post(
        "/api/v1/projects/erase-dicom/erasures/preview",
        json={"scope": "patient", "value": "P-404"},
        headers=dicom_server.h(),
    )
    assert r.status_code == 404


def test_erase_a_patient_known_only_by_its_pseudonym(
    dicom_server: DicomServer, new_project: Callable[[str], str]
) -> None:
    new_project("erase-deid")
    r = dicom_server.client.put(
        "/api/v1/projects/erase-deid/dicom",
        json={"deidentify_on_ingest": True},
        headers=dicom_server.h(),
    )
    assert r.status_code == 200
    a = _analyse(dicom_server, "erase-deid", _ct("REAL-77"))
    b = _analyse(dicom_server, "erase-deid", _ct("REAL-78"))
    image = dicom_server.client.get(
        f"/api/v1/projects/erase-deid/images/{a['image_id']}", headers=dicom_server.h()
    ).json()
    assert image["metadata"]["PatientID"] != "REAL-77"  # only the pseudonym is stored
    done = _erase(dicom_server, "erase-deid", "patient", "REAL-77")
    assert done["counts"]["images"] == 1 and done["counts"]["pseudonyms"] >= 3
    assert not _exists(dicom_server, "erase-deid", a) and _exists(dicom_server, "erase-deid", b)
    originals = {
        p["original"]
        for p in dicom_server.client.get(
            "/api/v1/projects/erase-deid/pseudonyms", headers=dicom_server.h()
        ).json()["items"]
    }
    assert "REAL-77" not in originals and "REAL-78" in originals
