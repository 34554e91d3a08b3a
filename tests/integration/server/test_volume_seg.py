"""DICOM SEG of volumes over HTTP in a 3D project: a series analysed -> ONE SEG referencing
every instance -> edited as a viewer would (only slices with content) and sent back ->
the stored correction differs from the prediction exactly where edited -> fine-tune and
gate; a NIfTI volume has no SEG (409); a SEG that does not fit stores nothing."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medloop.dicom.seg import encode_dataset
from medloop.dicom.series_headers import headers_only
from medloop.dicom.series_seg import build_series_seg
from medloop.domain.labels import LabelSet

from ...dicom_series import HIPPOCAMPUS, hippocampus, series_files
from .conftest import VOLS as P
from .conftest import Vols

LABELS = LabelSet.from_dicts(
    [
        {"value": 1, "name": "left", "color": "#ff0000"},
        {"value": 2, "name": "right", "color": "#00ff00"},
    ]
)


def _nifti(data: bytes) -> nib.Nifti1Image:
    return nib.Nifti1Image.from_bytes(gzip.decompress(data))


def _viewer_seg(
    files: list[tuple[str, bytes]], labels: np.ndarray, affine: np.ndarray, uid: str
) -> bytes:
    """A SEG of ``labels`` (on the stored volume's grid) as a viewer writes it: one frame
    per segment and slice with content, referencing the instances by SOP Instance UID."""
    seg = build_series_seg(
        [headers_only(data) for _, data in files],
        labels,
        affine,
        LABELS,
        model_version="edited",
        sop_instance_uid=uid,
        series_instance_uid=uid + ".1",
    )
    seg.Manufacturer = "OHIF"
    return encode_dataset(seg)


@pytest.mark.skipif(not Path(HIPPOCAMPUS).is_dir(), reason="needs the shared hippocampus volumes")
def test_series_seg_out_edited_and_back_as_a_correction(vols: Vols) -> None:
    c, h = vols.client, vols.headers
    arr, affine = hippocampus("003")
    files = series_files(arr, affine, series_uid="1.2.826.0.1.3680043.8.498.3", shuffle=5)
    r = c.post(f"{P}/analyses", files=[("file", f) for f in files], headers=h)
    assert r.status_code == 201, r.text
    a = r.json()

    seg_url = f"{P}/analyses/{a['id']}/seg"
    r = c.get(seg_url, headers=h)
    assert r.status_code == 200, r.text
    seg = pydicom.dcmread(io.BytesIO(r.content))
    assert seg.Modality == "SEG" and str(seg.SeriesInstanceUID) != "1.2.826.0.1.3680043.8.498.3"
    referenced = {
        str(i.ReferencedSOPInstanceUID)
        for s in seg.ReferencedSeriesSequence
        for i in s.ReferencedInstanceSequence
    }
    sources = {str(pydicom.dcmread(io.BytesIO(b)).SOPInstanceUID) for _, b in files}
    assert referenced == sources and len(sources) == arr.shape[2]
    algo = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert (algo.AlgorithmName, algo.AlgorithmVersion) == ("medloop", a["model_version"])
    again = pydicom.dcmread(io.BytesIO(c.get(seg_url, headers=h).content))
    assert (again.SOPInstanceUID, again.SeriesInstanceUID) == (
        seg.SOPInstanceUID,
        seg.SeriesInstanceUID,
    )

    pred = _nifti(c.get(f"{P}/analyses/{a['id']}/mask", headers=h).content)
    pred_arr = np.asarray(pred.dataobj).astype(np.uint8)
    edited = pred_arr.copy()
    edited[5:12, 10:20, 8:14] = 2  # a clinician paints a block "right"...
    edited[:, :, 20:] = np.where(edited[:, :, 20:] == 1, 0, edited[:, :, 20:])  # ...erases "left"
    changed = edited != pred_arr
    assert changed.any()

    before = vols.counts()
    other = series_files(arr, affine, series_uid="1.2.826.0.1.3680043.8.498.4")
    refused = [
        (f"{P}/corrections/seg", _viewer_seg(other, edited, pred.affine, "2.25.71"), 404, "no"),
        (
            f"{P}/analyses/{a['id']}/corrections",
            _viewer_seg(other, edited, pred.affine, "2.25.72"),
            400,
            "references series 1.2.826.0.1.3680043.8.498.4",
        ),
    ]
    for url, body, code, message in refused:
        r = c.post(url, files={"file": ("seg.dcm", body)}, headers=h)
        assert r.status_code == code and message in r.text, r.text
    assert vols.counts() == before

    body = _viewer_seg(files, edited, pred.affine, "2.25.73")
    r = c.post(f"{P}/corrections/seg", files={"file": ("edited.dcm", body)}, headers=h)
    assert r.status_code == 201, r.text
    (result,) = r.json()["items"]
    assert result["analysis_id"] == a["id"]
    for k, agreed in zip((1, 2), result["agreement"], strict=True):
        assert agreed["changed"] == int(((pred_arr == k) ^ (edited == k)).sum())
    stored = _nifti(c.get(f"{P}/corrections/{result['id']}/mask", headers=h).content)
    kept = np.asarray(stored.dataobj)
    assert np.allclose(stored.affine, pred.affine) and np.array_equal(kept, edited)
    assert np.array_equal(kept != pred_arr, changed)  # exactly where edited

    job = vols.wait_job(result["finetune_job_id"])
    assert job["state"] == "succeeded", job
    assert job["result"]["trained_corrections"] >= 1 and job["result"]["reasons"]  # the gate

    # the analysis's own corrections route takes the series' SEG as well
    r = c.post(f"{P}/analyses/{a['id']}/corrections", files={"file": ("e.dcm", body)}, headers=h)
    assert r.status_code == 201, r.text
    kept = _nifti(c.get(f"{P}/corrections/{r.json()['id']}/mask", headers=h).content)
    assert np.array_equal(np.asarray(kept.dataobj), edited)
    if r.json()["finetune_job_id"]:  # let it finish before the next test
        vols.wait_job(r.json()["finetune_job_id"])


def test_a_nifti_volume_has_no_seg(vols: Vols) -> None:
    c, h = vols.client, vols.headers
    r = c.post(f"{P}/analyses", files={"file": ("case5.nii.gz", vols.nii("images", 5))}, headers=h)
    assert r.status_code == 201, r.text
    r = c.get(f"{P}/analyses/{r.json()['id']}/seg", headers=h)
    assert r.status_code == 409 and "NIfTI or NRRD" in r.text and "/mask" in r.text, r.text
