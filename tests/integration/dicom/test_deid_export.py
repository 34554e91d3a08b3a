"""De-identification on ingest (pseudonym map for admins only) and ``medloop export --deidentify``."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image as PILImage
from typer.testing import CliRunner

from medloop.cli.app import app
from medloop.io import load_dataset

from .conftest import DicomServer, dicom_bytes, multiframe_ct, sample_file


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _post(srv: DicomServer, project: str, data: bytes, name: str) -> dict:
    r = srv.client.post(
        f"/api/v1/projects/{project}/analyses",
        files={"file": (name, data, "application/dicom")},
        headers=srv.h(),
    )
    assert r.status_code == 201, r.text
    return r.json()


def _correct(srv: DicomServer, project: str, analysis: dict, shape: tuple[int, int]) -> None:
    mask = np.zeros(shape, np.uint8)
    mask[4:20, 4:20] = 1
    buffer = io.BytesIO()
    PILImage.fromarray(mask).save(buffer, format="PNG")
    r = srv.client.post(
        f"/api/v1/projects/{project}/analyses/{analysis['id']}/corrections",
        files={"file": ("m.png", buffer.getvalue())},
        headers=srv.h(),
    )
    assert r.status_code == 201, r.text


def test_deidentify_on_ingest(dicom_server: DicomServer, new_project: Callable[[str], str]) -> None:
    new_project("deid")
    r = dicom_server.client.put(
        "/api/v1/projects/deid/dicom", json={"deidentify_on_ingest": True}, headers=dicom_server.h()
    )
    assert r.status_code == 200 and r.json()["deidentify"] == {"enabled": True}
    path = sample_file("CT_small.dcm")
    original = pydicom.dcmread(path)
    a = _post(dicom_server, "deid", path.read_bytes(), "Doe^John.dcm")
    image = dicom_server.client.get(
        f"/api/v1/projects/deid/images/{a['image_id']}", headers=dicom_server.h()
    ).json()
    assert image["metadata"]["SOPInstanceUID"] != str(original.SOPInstanceUID)
    assert "Doe" not in image["filename"]
    stored = dicom_server.client.get(
        f"/api/v1/projects/deid/images/{a['image_id']}/file", headers=dicom_server.h()
    ).content
    ds = pydicom.dcmread(io.BytesIO(stored))
    assert ds.PatientIdentityRemoved == "YES"
    assert str(original.PatientName).encode() not in stored
    assert str(original.SOPInstanceUID).encode() not in stored
    # the analysis still works on the pseudonymised instance, SEG included
    seg = dicom_server.client.get(
        f"/api/v1/projects/deid/analyses/{a['id']}/seg", headers=dicom_server.h()
    )
    assert pydicom.dcmread(io.BytesIO(seg.content)).StudyInstanceUID == ds.StudyInstanceUID
    # the pseudonym map: for admins only, and every read audited
    assert dicom_server.client.get(
        "/api/v1/projects/deid/pseudonyms", headers=dicom_server.h("annotator")
    ).status_code in (403, 404)
    entries = dicom_server.client.get(
        "/api/v1/projects/deid/pseudonyms", headers=dicom_server.h()
    ).json()["items"]
    pairs = {(e["kind"], e["original"]): e["pseudonym"] for e in entries}
    assert pairs[("uid", str(original.SOPInstanceUID))] == ds.SOPInstanceUID
    assert pairs[("patient_id", str(original.PatientID))] == ds.PatientID
    events = dicom_server.client.get("/api/v1/audit", headers=dicom_server.h()).json()["items"]
    assert any(e["action"] == "pseudonym.read" for e in events)
    # the same instance uploaded again is the same image (pseudonyms are consistent)
    again = _post(dicom_server, "deid", path.read_bytes(), "again.dcm")
    assert again["image_id"] == a["image_id"]


def test_export_deidentified(
    dicom_server: DicomServer, new_project: Callable[[str], str], tmp_path: Path
) -> None:
    new_project("export")
    ct = pydicom.dcmread(sample_file("CT_small.dcm"))
    ct.BurnedInAnnotation = "NO"
    ct_a = _post(dicom_server, "export", dicom_bytes(ct), "ct.dcm")
    ct2 = pydicom.dcmread(sample_file("CT_small.dcm"))  # same study and series, another instance
    ct2.BurnedInAnnotation = "NO"
    ct2.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.77"
    ct2.file_meta.MediaStorageSOPInstanceUID = ct2.SOPInstanceUID
    ct2_a = _post(dicom_server, "export", dicom_bytes(ct2), "ct2.dcm")
    mr_a = _post(dicom_server, "export", sample_file("MR_small.dcm").read_bytes(), "mr.dcm")
    mf = multiframe_ct(2)
    mf.BurnedInAnnotation = "NO"
    mf_a = _post(dicom_server, "export", dicom_bytes(mf), "mf.dcm")
    for analysis, shape in (
        (ct_a, (128, 128)),
        (ct2_a, (128, 128)),
        (mr_a, (64, 64)),
        (mf_a, (128, 128)),
    ):
        _correct(dicom_server, "export", analysis, shape)

    out, key_map = tmp_path / "export", tmp_path / "private" / "map.csv"
    result = CliRunner().invoke(
        app,
        [
            "export",
            str(out),
            "--project",
            "export",
            "--deidentify",
            "--data-dir",
            str(dicom_server.runtime.data_dir),
            "--map",
            str(key_map),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "set aside" in result.output
    rows = _csv(out / "manifest.csv")
    assert len(rows) == 3 and {r["group"] for r in rows} == {"correction"}
    aside = _csv(out / "set_aside.csv")
    assert [r["reason"] for r in aside] == ["BurnedInAnnotation is missing"]
    dicoms = [pydicom.dcmread(out / r["image"]) for r in rows if r["image"].endswith(".dcm")]
    assert len(dicoms) == 2 and any(r["image"].endswith(".tiff") for r in rows)
    for ds in dicoms:
        assert ds.PatientIdentityRemoved == "YES" and ds.DeidentificationMethod
        assert str(ds.StudyInstanceUID) != str(ct.StudyInstanceUID)
        assert ds.PatientID != ct.PatientID
    assert dicoms[0].StudyInstanceUID == dicoms[1].StudyInstanceUID  # consistent remapping
    assert dicoms[0].SOPInstanceUID != dicoms[1].SOPInstanceUID
    exported = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert str(ct.SOPInstanceUID).encode() not in exported
    assert str(ct.PatientName).encode() not in exported
    mapping = {(m["kind"], m["original"]): m["pseudonym"] for m in _csv(key_map)}
    assert mapping[("patient_id", str(ct.PatientID))] == dicoms[0].PatientID
    dataset = load_dataset(out)  # a training set medloop train reads
    assert len(dataset.samples) == 3

    refused = CliRunner().invoke(
        app,
        [
            "export",
            str(out),
            "--project",
            "export",
            "--data-dir",
            str(dicom_server.runtime.data_dir),
        ],
    )
    assert refused.exit_code == 2 and "not an empty folder" in refused.output
    inside = CliRunner().invoke(
        app,
        [
            "export",
            str(tmp_path / "x"),
            "--project",
            "export",
            "--deidentify",
            "--map",
            str(tmp_path / "x" / "m.csv"),
        ],
    )
    assert inside.exit_code == 2 and "outside the export folder" in inside.output
