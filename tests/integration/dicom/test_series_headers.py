"""A series kept as a volume keeps its instances' headers like a 2D DICOM original: without
pixel data, de-identified on ingest when the project asks, and gone with an erasure."""

from __future__ import annotations

import gzip
import io
import zipfile

import nibabel as nib
import numpy as np
import pydicom

from medloop.dicom.series_headers import unpack_headers
from medloop.domain.settings import ProjectSettings
from medloop.storage import repo_dicom
from medloop.storage import repositories as repo

from ...dicom_series import series_files
from .conftest import DicomServer

SETTINGS = ProjectSettings.parse(
    {
        "labels": [{"value": 1, "name": "blob", "color": "#ff0000"}],
        "image_kind": "mri",
        "spatial_dims": 3,
        "max_frames": 16,
    }
)


def _zip(files: list[tuple[str, bytes]]) -> bytes:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:
        for name, data in files:
            z.writestr(name, data)
    return packed.getvalue()


def test_series_headers_deidentified_and_erased(dicom_server: DicomServer) -> None:
    c, h = dicom_server.client, dicom_server.h()
    dicom_server.runtime.services.projects.create("series-deid", SETTINGS)
    url = "/api/v1/projects/series-deid"
    r = c.put(f"{url}/dicom", json={"deidentify_on_ingest": True}, headers=h)
    assert r.status_code == 200, r.text
    arr = (np.arange(10 * 8 * 5) % 90).astype(np.int16).reshape(10, 8, 5)
    affine = np.diag([-1.0, -1.0, 2.0, 1.0])
    files = series_files(arr, affine, series_uid="1.2.826.0.1.3680043.8.498.55")
    mask = np.zeros(arr.shape, np.uint8)
    mask[2:5, 2:5, 1:3] = 1
    r = c.post(
        f"{url}/reference",
        files={
            "image": ("series.zip", _zip(files)),
            "mask": ("m.nii.gz", gzip.compress(nib.Nifti1Image(mask, affine).to_bytes())),
        },
        data={"split": "train"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    image = c.get(f"{url}/images/{r.json()['image_id']}", headers=h).json()
    meta = image["metadata"]
    assert meta["PatientID"].startswith("MLP-") and meta["instances"] == 5
    assert meta["SeriesInstanceUID"] != "1.2.826.0.1.3680043.8.498.55"  # a pseudonym

    project = dicom_server.project_id_of("series-deid")
    rt = dicom_server.runtime
    with rt.db.read() as s:
        record = repo.get_image(s, image["id"], project)
    assert record.headers_blob_key and record.headers_sha256
    headers = unpack_headers(rt.blobs.read_bytes(record.headers_blob_key, record.headers_sha256))
    assert len(headers) == 5 and all("PixelData" not in ds for ds in headers)
    originals = {str(pydicom.dcmread(io.BytesIO(b)).SOPInstanceUID) for _, b in files}
    assert all(str(ds.SOPInstanceUID) not in originals for ds in headers)
    assert {str(ds.PatientID) for ds in headers} == {meta["PatientID"]}

    with rt.db.read() as s:
        mapped = {p.original for p in repo_dicom.list_pseudonyms(s, project)}
    assert originals | {"TEST"} <= mapped  # the pseudonym map knows every instance
    r = c.post(
        f"{url}/erasures",
        json={"scope": "patient", "value": "TEST", "reason": "test"},  # as before de-id
        headers=h,
    )
    assert r.status_code == 202, r.text
    assert dicom_server.wait_job_in("series-deid", r.json()["job"]["id"])["state"] == "succeeded"
    assert c.get(f"{url}/images/{image['id']}", headers=h).status_code == 404
    assert not rt.blobs.exists(record.headers_blob_key)
    with rt.db.read() as s:
        left = {p.original for p in repo_dicom.list_pseudonyms(s, project)}
    assert not left & (originals | {"TEST"})  # the instances' pseudonyms went too
