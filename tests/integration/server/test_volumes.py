"""Volumes over HTTP in a 3D project: reference volumes -> train -> analyse a NIfTI -> its
label volume and slices -> a NIfTI correction -> fine-tune -> gate; and every refusal
(wrong dimensions, too many slices, a correction on another grid) stores nothing."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image as PILImage

from medloop.client import MedloopClient

from ...dicom_series import HIPPOCAMPUS, enhanced_file, hippocampus, series_files
from .conftest import VOLS as P
from .conftest import Vols


def _nifti(data: bytes) -> nib.Nifti1Image:
    raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    return nib.Nifti1Image.from_bytes(raw)


def _nifti_bytes(arr: np.ndarray, affine: np.ndarray) -> bytes:
    return gzip.compress(nib.Nifti1Image(arr, affine).to_bytes())


def _analyse(v: Vols, i: int) -> dict:
    r = v.client.post(
        f"{P}/analyses", files={"file": (f"case{i}.nii.gz", v.nii("images", i))}, headers=v.headers
    )
    assert r.status_code == 201, r.text
    return r.json()


def _png(data: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(data)))


def test_volume_analysis_stores_one_label_volume_on_the_input_grid(vols: Vols) -> None:
    c, h = vols.client, vols.headers
    a = _analyse(vols, 4)
    assert a["volume"] is True and a["model_version"] == "v0001" and 0 <= a["uncertainty"] <= 1
    for m in a["measurements"]:
        assert m["area_mm2"] is None and m["volume_mm3"] == 2.0 * m["area_px"]  # 1 x 1 x 2 mm
        assert m["largest_component_px"] <= m["area_px"] and m["components"] >= 0
    r = c.get(f"{P}/analyses/{a['id']}/mask", headers=h)
    assert r.headers["content-type"] == "application/gzip" and r.content[:2] == b"\x1f\x8b"
    labels, source = _nifti(r.content), _nifti(vols.nii("images", 4))
    assert labels.shape == source.shape == (24, 28, 20)
    assert np.allclose(labels.affine, source.affine)  # LPS as uploaded, not reoriented
    arr = np.asarray(labels.dataobj)
    assert arr.dtype == np.uint8 and set(np.unique(arr)) <= {0, 1, 2}
    assert [int((arr == k).sum()) for k in (1, 2)] == [m["area_px"] for m in a["measurements"]]


def test_slices_in_every_plane_in_radiological_orientation(vols: Vols) -> None:
    c, h = vols.client, vols.headers
    a = _analyse(vols, 5)
    url = f"{P}/analyses/{a['id']}/slice"
    labels = _nifti(c.get(f"{P}/analyses/{a['id']}/mask", headers=h).content)
    canonical = np.asarray(nib.as_closest_canonical(labels).dataobj)  # RAS+ (X, Y, Z)
    cuts = {
        "axial": (canonical[:, :, 10], 20, "1,1"),
        "coronal": (canonical[:, 14, :], 28, "2,1"),
        "sagittal": (canonical[12, :, :], 24, "2,1"),
    }
    for plane, (cut, count, spacing) in cuts.items():
        index = {"axial": 10, "coronal": 14, "sagittal": 12}[plane]
        r = c.get(url, params={"plane": plane, "index": index, "kind": "mask"}, headers=h)
        assert r.status_code == 200, r.text
        assert r.headers["x-slice-count"] == str(count)
        assert r.headers["x-pixel-spacing"] == spacing
        # rows: anterior / superior at the top; columns: the patient's right on the left
        assert np.array_equal(_png(r.content), cut.T[::-1, ::-1])
        for kind in ("image", "overlay"):
            r = c.get(url, params={"plane": plane, "index": index, "kind": kind}, headers=h)
            assert r.status_code == 200 and _png(r.content).shape == (*cut.T.shape, 3)
    r = c.get(
        url, params={"plane": "axial", "index": 3, "kind": "image", "window": "bone"}, headers=h
    )
    assert (r.headers["x-window-center"], r.headers["x-window-width"]) == ("400", "1800")
    r = c.get(url, params={"index": 3, "kind": "image", "window": "100,50"}, headers=h)
    assert r.headers["x-window-center"] == "100" and r.headers["x-window-width"] == "50"
    bad = [
        ({"plane": "axial", "index": 20}, "out of range"),
        ({"plane": "axial", "index": -1}, "out of range"),
        ({"plane": "oblique", "index": 0}, "unknown plane"),
        ({"plane": "axial", "index": 0, "kind": "heatmap"}, "unknown kind"),
        ({"plane": "axial", "index": 0, "kind": "image", "window": "wide"}, "window"),
    ]
    for params, message in bad:
        r = c.get(url, params=params, headers=h)
        assert r.status_code == 400 and message in r.json()["error"]["message"], r.text
    r = c.get(f"{P}/analyses/{a['id']}/overlay", headers=h)
    assert r.status_code == 400 and "/slice" in r.text


def test_wrong_dimensions_and_too_many_slices_store_nothing(vols: Vols) -> None:
    c, h = vols.client, vols.headers
    before = vols.counts()
    flat_png = (vols.flat / "images" / "case (0).png").read_bytes()
    r = c.post(f"{P}/analyses", files={"file": ("disc.png", flat_png)}, headers=h)
    assert r.status_code == 400 and "disc.png: a 2D image" in r.text and "3D" in r.text
    r = c.post(
        "/api/v1/projects/flat/analyses",
        files={"file": ("case4.nii.gz", vols.nii("images", 4))},
        headers=h,
    )
    assert r.status_code == 400 and "case4.nii.gz: a 3D volume" in r.text and "2D" in r.text
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    deep = _nifti_bytes(np.zeros((8, 8, 70), np.int16), affine)
    r = c.post(f"{P}/analyses", files={"file": ("deep.nii.gz", deep)}, headers=h)
    assert r.status_code == 413 and "70 slices" in r.text and "max_frames" in r.text
    assert vols.counts() == before


def test_volume_correction_agreement_finetune_and_gate(vols: Vols) -> None:
    c, h = vols.client, vols.headers
    a = _analyse(vols, 4)
    url = f"{P}/analyses/{a['id']}/corrections"
    pred = _nifti(c.get(f"{P}/analyses/{a['id']}/mask", headers=h).content)
    pred_arr = np.asarray(pred.dataobj)
    before = vols.counts()
    refused = [
        (_nifti_bytes(pred_arr[:, :, :19], pred.affine), "label volume is"),
        (_nifti_bytes(pred_arr, pred.affine @ np.diag([1, 1, 1.5, 1])), "affine"),
        (_nifti_bytes(np.full_like(pred_arr, 7), pred.affine), "outside"),
        ((vols.flat / "masks" / "case (0).png").read_bytes(), "not a NIfTI or NRRD"),
    ]
    for body, message in refused:
        r = c.post(url, files={"file": ("fix.nii.gz", body)}, headers=h)
        assert r.status_code == 400 and message in r.text, r.text
    assert vols.counts() == before

    truth = np.asarray(_nifti(vols.nii("masks", 4)).dataobj).astype(np.uint8)
    r = c.post(url, files={"file": ("fix.nii.gz", _nifti_bytes(truth, pred.affine))}, headers=h)
    assert r.status_code == 201, r.text
    body = r.json()
    for k, agreed in zip((1, 2), body["agreement"], strict=True):
        p, t = pred_arr == k, truth == k
        assert agreed["value"] == k and agreed["changed"] == int((p ^ t).sum())
        total = int(p.sum() + t.sum())
        assert agreed["dice"] == pytest.approx(2 * int((p & t).sum()) / total if total else 1.0)
    stored = c.get(f"{P}/corrections/{body['id']}/mask", headers=h)
    assert stored.headers["content-type"] == "application/gzip"
    kept = _nifti(stored.content)
    assert np.allclose(kept.affine, pred.affine) and np.array_equal(kept.dataobj, truth)

    assert body["finetune_job_id"], "finetune_every=1: the correction starts a fine-tune"
    job = vols.wait_job(body["finetune_job_id"])
    assert job["state"] == "succeeded", job
    result = job["result"]
    assert result["parent"] == "v0001" and result["trained_corrections"] == 1
    assert isinstance(result["promoted"], bool) and result["reasons"]  # the gate's verdict
    models = c.get(f"{P}/models", headers=h).json()["items"]
    tuned = [m for m in models if m["version"] != "v0001"]
    assert [m["version"] for m in tuned] == [result["version"]]
    lineage = tuned[0]["lineage"]
    assert lineage["parent"] == "v0001"
    assert any(r["role"] == "correction" for r in lineage["data"])
    assert tuned[0]["report"]["against"] == "v0001"  # the gate compared it with production
    again = c.post(
        f"{P}/analyses", json={"image_id": a["image_id"], "version": tuned[0]["version"]}, headers=h
    )
    assert again.status_code == 201 and again.json()["volume"] is True


def _nrrd(path: Path, nifti: bytes) -> Path:
    """The NIfTI volume ``nifti`` written again as NRRD, on the same world grid."""
    import nrrd

    img = _nifti(nifti)
    header = {
        "space": "right-anterior-superior",
        "space directions": img.affine[:3, :3].T,
        "space origin": img.affine[:3, 3],
    }
    nrrd.write(str(path), np.asarray(img.dataobj), header)
    return path


def _remote_analyze(
    monkeypatch: pytest.MonkeyPatch, sdk: MedloopClient, path: Path, out: Path
) -> str:
    """``medloop remote analyze PATH --out OUT`` through ``sdk``; its output."""
    from typer.testing import CliRunner

    from medloop.cli import app
    from medloop.cli import remote as remote_cli

    monkeypatch.setattr(remote_cli, "_client", lambda server, tok: sdk)
    res = CliRunner().invoke(
        app,
        ["remote", "analyze", str(path), "--project", "vols", "--out", str(out)],
        env={"MEDLOOP_TOKEN": "token", "COLUMNS": "200"},
    )
    assert res.exit_code == 0, res.output
    return res.output


def test_sdk_and_remote_cli_take_volumes(
    vols: Vols, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = vols.headers["Authorization"].split()[1]
    sdk = MedloopClient("", token, http_client=vols.client)
    scan = _nrrd(tmp_path / "scan.nrrd", vols.nii("images", 5))
    a = sdk.analyze("vols", file=scan)
    assert a.volume and a.measurements[0].volume_mm3 == 2.0 * a.measurements[0].area_px
    labels = _nifti(sdk.analysis_mask("vols", a.id))
    assert labels.shape == (24, 28, 20)
    cut = sdk.analysis_slice("vols", a.id, "coronal", 3, kind="image", window="lung")
    assert cut.count == 28 and cut.spacing_mm == (2.0, 1.0)
    assert (cut.center, cut.width) == (-600.0, 1500.0) and cut.png[:4] == b"\x89PNG"
    fixed = sdk.correct("vols", a.id, _nifti_bytes(np.asarray(labels.dataobj), labels.affine))
    agreed = fixed.agreement or []
    assert [(g.name, g.dice, g.changed) for g in agreed] == [("left", 1.0, 0), ("right", 1.0, 0)]
    if fixed.finetune_job_id:  # let it finish: later tests count the blobs
        vols.wait_job(fixed.finetune_job_id)

    out = tmp_path / "out"
    output = _remote_analyze(monkeypatch, sdk, scan, out)
    assert "mm²|mm³" in output and "left" in output
    assert sorted(p.name for p in out.iterdir()) == [
        "scan_analysis.json",
        "scan_axial.png",
        "scan_labels.nii.gz",
    ]
    assert _nifti((out / "scan_labels.nii.gz").read_bytes()).shape == (24, 28, 20)
    axial = _png((out / "scan_axial.png").read_bytes())
    assert axial.shape == (28, 24, 3)


@pytest.mark.skipif(not Path(HIPPOCAMPUS).is_dir(), reason="needs the shared hippocampus volumes")
def test_a_dicom_series_in_parts_or_a_zip_is_one_volume(vols: Vols) -> None:
    c, h = vols.client, vols.headers
    arr, affine = hippocampus("001")
    files = series_files(arr, affine, shuffle=7)
    r = c.post(f"{P}/analyses", files=[("file", f) for f in files], headers=h)
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["volume"] is True
    labels = _nifti(c.get(f"{P}/analyses/{a['id']}/mask", headers=h).content)
    assert labels.shape == arr.shape and np.allclose(labels.affine, affine)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:
        for name, data in files:
            z.writestr(f"series/{name}", data)
    r = c.post(f"{P}/analyses", files={"file": ("series.zip", packed.getvalue())}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["image_id"] == a["image_id"]  # the same volume, content-addressed
    one = c.post(f"{P}/analyses", files={"file": ("mf.dcm", enhanced_file(arr, affine))}, headers=h)
    assert one.status_code == 201, one.text  # an enhanced multi-frame image is a volume too
    assert one.json()["volume"] is True and one.json()["image_id"] == a["image_id"]


def test_broken_dicom_series_answer_400_and_store_nothing(vols: Vols) -> None:
    c, h = vols.client, vols.headers
    arr = np.arange(16 * 12 * 6, dtype=np.int16).reshape(16, 12, 6)
    good = series_files(arr, np.diag([1.0, 1.0, 3.0, 1.0]), shuffle=None)
    stray = series_files(arr, np.eye(4), series_uid="1.2.3")[0]
    before = vols.counts()
    cases = [
        ([*good, stray], 400, "mixed series"),
        (good[:2] + good[3:], 400, "gap in the series"),
        ([*good, ("again.dcm", good[0][1])], 400, "duplicate slice"),
        (good[:1], 400, "a 2D image, but this project is 3D"),  # a lone instance
        (series_files(np.zeros((4, 4, 70)), np.eye(4)), 413, "70 instances"),
    ]
    for parts, status, message in cases:
        r = c.post(f"{P}/analyses", files=[("file", f) for f in parts], headers=h)
        assert r.status_code == status and message in r.text, r.text
        assert vols.counts() == before, message
    r = c.post("/api/v1/projects/flat/analyses", files=[("file", f) for f in good], headers=h)
    assert r.status_code == 400 and "this project is 2D" in r.text
    assert vols.counts() == before


def test_sdk_and_remote_cli_send_a_folder_as_a_series(
    vols: Vols, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medloop.client import InvalidArgument

    arr = (np.arange(20 * 16 * 8) % 200).astype(np.int16).reshape(20, 16, 8)
    folder = tmp_path / "study" / "series1"
    (folder / "sub").mkdir(parents=True)
    for k, (name, data) in enumerate(series_files(arr, np.diag([1.0, 1.0, 3.0, 1.0]))):
        (folder / ("sub" if k % 2 else "") / name).write_bytes(data)
    (folder / ".DS_Store").write_bytes(b"not an instance")  # hidden: left out
    token = vols.headers["Authorization"].split()[1]
    sdk = MedloopClient("", token, http_client=vols.client)
    a = sdk.analyze("vols", file=folder)
    assert a.volume and _nifti(sdk.analysis_mask("vols", a.id)).shape == (20, 16, 8)
    with pytest.raises(InvalidArgument, match="production"):
        sdk.analyze("vols", file=folder, version="v0001")

    out = tmp_path / "out"
    _remote_analyze(monkeypatch, sdk, folder, out)
    assert (out / "series1_labels.nii.gz").is_file() and (out / "series1_axial.png").is_file()
    assert _png((out / "series1_axial.png").read_bytes()).shape == (16, 20, 3)


def test_a_reference_pair_may_bring_its_volume_as_a_zipped_series(vols: Vols) -> None:
    c, h = vols.client, vols.headers
    arr = (np.arange(18 * 14 * 7) % 300).astype(np.int16).reshape(18, 14, 7)
    affine = np.diag([-1.0, -1.0, 2.0, 1.0])  # LPS, as a DICOM series is
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:
        for name, data in series_files(arr, affine):
            z.writestr(name, data)
    mask = np.zeros(arr.shape, np.uint8)
    mask[4:9, 3:8, 2:5] = 1
    before = vols.counts()
    for bad, project, message in [
        (_nifti_bytes(mask[:, :, :6], affine), "vols", "label volume is"),
        (_nifti_bytes(mask, np.diag([1.0, 1.0, 2.0, 1.0])), "vols", "affine"),
        (_nifti_bytes(mask, affine), "flat", "this project is 2D"),
    ]:
        r = c.post(
            f"/api/v1/projects/{project}/reference",
            files={"image": ("series.zip", packed.getvalue()), "mask": ("m.nii.gz", bad)},
            data={"split": "train"},
            headers=h,
        )
        assert r.status_code == 400 and message in r.text, r.text
    assert vols.counts() == before
    r = c.post(
        f"{P}/reference",
        files={
            "image": ("series.zip", packed.getvalue()),
            "mask": ("m.nii.gz", _nifti_bytes(mask, affine)),
        },
        data={"split": "train", "group": "dicom"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    pairs = c.get(f"{P}/reference", params={"group": "dicom"}, headers=h).json()["items"]
    assert len(pairs) == 1
