"""DICOM through the API: multi-frame analyses, SEG out, SEG corrections, bad DICOM."""

from __future__ import annotations

import io
from collections.abc import Callable

import highdicom as hd
import numpy as np
import pydicom
import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from medloop.storage.models import Analysis, Correction
from medloop.storage.models import Image as ImageRow

from .conftest import DicomServer, dicom_bytes, multiframe_ct, sample_file


def _count(srv: DicomServer, model: type) -> int:
    with srv.runtime.db.write() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_ct_small_analysed_and_seg_downloaded(
    dicom_server: DicomServer, upload: Callable[..., dict]
) -> None:
    path = sample_file("CT_small.dcm")
    a = upload(path.read_bytes(), "CT_small.dcm")
    assert a["model_version"] == "v0001"
    r = dicom_server.client.get(
        f"/api/v1/projects/ct/analyses/{a['id']}/seg", headers=dicom_server.h("viewer")
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/dicom"
    seg = hd.seg.segread(io.BytesIO(r.content))
    src = pydicom.dcmread(path)
    assert seg.Rows == src.Rows and seg.Columns == src.Columns
    assert str(seg.StudyInstanceUID) == str(src.StudyInstanceUID)
    assert [uids[2] for uids in seg.get_source_image_uids()] == [str(src.SOPInstanceUID)]
    assert [seg.get_segment_description(n).segment_label for n in seg.segment_numbers] == [
        "disc",
        "rim",
    ]
    algo = seg.get_segment_description(1).algorithm_identification
    assert algo[0].AlgorithmName == "medloop" and algo[0].AlgorithmVersion == "v0001"
    mask = dicom_server.client.get(
        f"/api/v1/projects/ct/analyses/{a['id']}/mask", headers=dicom_server.h()
    ).content
    expected = np.asarray(PILImage.open(io.BytesIO(mask)))
    pixels = seg.get_pixels_by_source_instance(
        [str(src.SOPInstanceUID)], combine_segments=True, skip_overlap_checks=True
    )[0]
    np.testing.assert_array_equal(pixels, expected)
    # the same analysis gives the same SEG instance (deterministic UIDs)
    again = dicom_server.client.get(
        f"/api/v1/projects/ct/analyses/{a['id']}/seg", headers=dicom_server.h()
    )
    assert pydicom.dcmread(io.BytesIO(again.content)).SOPInstanceUID == seg.SOPInstanceUID


def test_multiframe_upload_analyses_every_frame(
    dicom_server: DicomServer, upload: Callable[..., dict]
) -> None:
    ds = multiframe_ct(3)
    first = upload(dicom_bytes(ds), "mf.dcm")
    with dicom_server.runtime.db.write() as s:
        image = s.get(ImageRow, first["image_id"])
        assert image is not None and image.frames == 3
        frames = sorted(
            a.frame for a in s.scalars(select(Analysis).where(Analysis.image_id == image.id))
        )
        first_row = s.get(Analysis, first["id"])
        assert first_row is not None and first_row.frame == 0
    assert frames == [0, 1, 2]
    r = dicom_server.client.get(
        f"/api/v1/projects/ct/analyses/{first['id']}/seg", headers=dicom_server.h()
    )
    seg = hd.seg.segread(io.BytesIO(r.content))
    assert {uids[2] for uids in seg.get_source_image_uids()} == {str(ds.SOPInstanceUID)}


def test_png_analysis_has_no_seg(dicom_server: DicomServer) -> None:
    with dicom_server.runtime.db.write() as s:
        png = s.scalars(select(ImageRow).where(ImageRow.filename == "0.png")).first()
    assert png is not None
    a = dicom_server.client.post(
        "/api/v1/projects/ct/analyses", json={"image_id": png.id}, headers=dicom_server.h()
    ).json()
    r = dicom_server.client.get(
        f"/api/v1/projects/ct/analyses/{a['id']}/seg", headers=dicom_server.h()
    )
    assert r.status_code == 409
    assert "not DICOM" in r.json()["error"]["message"]


def _corrected_seg(srv: DicomServer, analysis_id: str) -> tuple[bytes, np.ndarray]:
    """The analysis's SEG with a square of label 1 painted in (what Slicer would send)."""
    r = srv.client.get(f"/api/v1/projects/ct/analyses/{analysis_id}/seg", headers=srv.h())
    ds = pydicom.dcmread(io.BytesIO(r.content))
    seg = hd.seg.Segmentation.from_dataset(ds)
    src_uid = seg.get_source_image_uids()[0][2]
    source = pydicom.dcmread(sample_file("MR_small.dcm"))
    assert str(source.SOPInstanceUID) == src_uid
    wanted = np.zeros((source.Rows, source.Columns), np.uint8)
    wanted[10:30, 20:40] = 1
    wanted[40:44, 40:44] = 2
    from medloop.dicom.seg import build_seg, deterministic_uid, encode_dataset
    from medloop.domain.labels import LabelSet

    labels = LabelSet.from_dicts(
        [
            {"value": 1, "name": "disc", "color": "#ff0000"},
            {"value": 2, "name": "rim", "color": "#00ff00"},
        ]
    )
    edited = build_seg(
        source,
        {0: wanted},
        labels,
        model_version="edited",
        sop_instance_uid=deterministic_uid("edited", analysis_id),
        series_instance_uid=deterministic_uid("edited-series", analysis_id),
    )
    return encode_dataset(edited), wanted


def test_seg_correction_on_the_analysis_route(
    dicom_server: DicomServer, upload: Callable[..., dict]
) -> None:
    a = upload(sample_file("MR_small.dcm").read_bytes(), "MR_small.dcm")
    data, wanted = _corrected_seg(dicom_server, a["id"])
    r = dicom_server.client.post(
        f"/api/v1/projects/ct/analyses/{a['id']}/corrections",
        files={"file": ("edited.dcm", data, "application/dicom")},
        headers=dicom_server.h("annotator"),
    )
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["analysis_id"] == a["id"]
    with dicom_server.runtime.db.write() as s:
        row = s.get(Correction, c["id"])
        assert row is not None
        png = dicom_server.runtime.blobs.read_bytes(row.mask_blob_key, row.mask_sha256)
    np.testing.assert_array_equal(np.asarray(PILImage.open(io.BytesIO(png))), wanted)


def test_seg_correction_on_the_project_route_finds_its_analysis(
    dicom_server: DicomServer, upload: Callable[..., dict]
) -> None:
    a = upload(sample_file("MR_small.dcm").read_bytes(), "MR_small.dcm")
    data, _ = _corrected_seg(dicom_server, a["id"])
    r = dicom_server.client.post(
        "/api/v1/projects/ct/corrections/seg",
        files={"file": ("edited.dcm", data, "application/dicom")},
        headers=dicom_server.h("annotator"),
    )
    assert r.status_code == 201, r.text
    items = r.json()["items"]
    assert [c["analysis_id"] for c in items] == [a["id"]]


def test_seg_of_another_instance_is_refused(
    dicom_server: DicomServer, upload: Callable[..., dict]
) -> None:
    ct = upload(sample_file("CT_small.dcm").read_bytes(), "CT_small.dcm")
    mr = upload(sample_file("MR_small.dcm").read_bytes(), "MR_small.dcm")
    data, _ = _corrected_seg(dicom_server, mr["id"])
    before = _count(dicom_server, Correction)
    r = dicom_server.client.post(
        f"/api/v1/projects/ct/analyses/{ct['id']}/corrections",
        files={"file": ("edited.dcm", data, "application/dicom")},
        headers=dicom_server.h(),
    )
    assert r.status_code == 400
    assert "does not reference instance" in r.json()["error"]["message"]
    r = dicom_server.client.post(
        "/api/v1/projects/elsewhere/corrections/seg",
        files={"file": ("edited.dcm", data, "application/dicom")},
        headers=dicom_server.h(),
    )
    assert r.status_code == 404
    r = dicom_server.client.post(
        "/api/v1/projects/ct/corrections/seg",
        files={"file": ("ct.dcm", sample_file("CT_small.dcm").read_bytes(), "application/dicom")},
        headers=dicom_server.h(),
    )
    assert r.status_code == 400 and "not a DICOM SEG" in r.json()["error"]["message"]
    assert _count(dicom_server, Correction) == before


def _bad_dicoms() -> list[tuple[str, bytes, str]]:
    ct = sample_file("CT_small.dcm").read_bytes()
    nopix = pydicom.dcmread(sample_file("CT_small.dcm"))
    del nopix.PixelData
    huge = pydicom.dcmread(sample_file("CT_small.dcm"))
    huge.Rows = huge.Columns = 60000
    frames = pydicom.dcmread(sample_file("CT_small.dcm"))
    frames.NumberOfFrames = 10**7
    short = pydicom.dcmread(sample_file("CT_small.dcm"))
    short.NumberOfFrames = 4
    mpeg = pydicom.dcmread(sample_file("CT_small.dcm"))
    mpeg.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video
    mpeg.PixelData = pydicom.encaps.encapsulate([b"\x00" * 64])
    mpeg["PixelData"].VR = "OB"
    return [
        ("not DICOM", b"DICM" + b"\x00" * 300, "not a supported image"),
        ("truncated", ct[: len(ct) // 2], "truncated or corrupt"),
        ("no pixel data", dicom_bytes(nopix), "no pixel data"),
        ("absurd size", dicom_bytes(huge), "60000x60000"),
        ("absurd frame count", dicom_bytes(frames), "NumberOfFrames"),
        ("frames missing", dicom_bytes(short), "truncated or corrupt"),
        ("unsupported syntax", dicom_bytes(mpeg), "1.2.840.10008.1.2.4.100"),
    ]


@pytest.mark.parametrize(
    ("case", "data", "reason"), _bad_dicoms(), ids=[c for c, *_ in _bad_dicoms()]
)
def test_bad_dicom_is_refused_and_nothing_stored(
    dicom_server: DicomServer, case: str, data: bytes, reason: str
) -> None:
    images, analyses = _count(dicom_server, ImageRow), _count(dicom_server, Analysis)
    blobs = sorted(
        p.name for p in (dicom_server.runtime.data_dir / "blobs").rglob("*") if p.is_file()
    )
    r = dicom_server.client.post(
        "/api/v1/projects/ct/analyses",
        files={"file": ("bad.dcm", data, "application/dicom")},
        headers=dicom_server.h(),
    )
    assert r.status_code == 400, (case, r.text)
    assert reason in r.json()["error"]["message"], r.json()
    assert "bad.dcm" in r.json()["error"]["message"]
    assert (_count(dicom_server, ImageRow), _count(dicom_server, Analysis)) == (images, analyses)
    after = sorted(
        p.name for p in (dicom_server.runtime.data_dir / "blobs").rglob("*") if p.is_file()
    )
    assert after == blobs


ROUTES = [
    ("GET", "/api/v1/projects/ct/analyses/{a}/seg", "viewer", {}),
    (
        "POST",
        "/api/v1/projects/ct/corrections/seg",
        "annotator",
        {"files": {"file": ("s.dcm", b"x")}},
    ),
    ("GET", "/api/v1/projects/ct/dicom", "admin", {}),
    ("PUT", "/api/v1/projects/ct/dicom", "admin", {"json": {"deidentify_on_ingest": False}}),
    ("POST", "/api/v1/projects/ct/dicomweb/sync", "admin", {}),
    ("GET", "/api/v1/projects/ct/dicomweb/instances", "admin", {}),
    ("GET", "/api/v1/projects/ct/pseudonyms", "admin", {}),
]
RANK = {"viewer": 0, "annotator": 1, "admin": 2}


@pytest.mark.parametrize("role", ["none", "viewer", "annotator", "admin", "outsider"])
@pytest.mark.parametrize(
    ("method", "path", "min_role", "kw"), ROUTES, ids=[f"{m} {p}" for m, p, *_ in ROUTES]
)
def test_dicom_routes_auth(
    dicom_server: DicomServer,
    upload: Callable[..., dict],
    role: str,
    method: str,
    path: str,
    min_role: str,
    kw: dict,
) -> None:
    a = upload(sample_file("CT_small.dcm").read_bytes(), "CT_small.dcm")
    r = dicom_server.client.request(
        method, path.format(a=a["id"]), headers=dicom_server.h(role), **kw
    )
    if role == "none":
        assert r.status_code == 401
    elif role == "outsider":
        assert r.status_code == 404
    elif RANK[role] < RANK[min_role]:
        assert r.status_code == 403
    else:
        assert r.status_code not in (401, 403) and r.status_code < 500, r.text


def test_frame_corrections_train_on_their_own_frame(
    dicom_server: DicomServer, upload: Callable[..., dict]
) -> None:
    ds = multiframe_ct(3)
    first = upload(dicom_bytes(ds), "frames.dcm")
    with dicom_server.runtime.db.write() as s:
        second = s.scalars(
            select(Analysis).where(Analysis.image_id == first["image_id"], Analysis.frame == 2)
        ).one()
    mask = np.zeros((128, 128), np.uint8)
    mask[30:60, 30:60] = 1
    buffer = io.BytesIO()
    PILImage.fromarray(mask).save(buffer, format="PNG")
    r = dicom_server.client.post(
        f"/api/v1/projects/ct/analyses/{second.id}/corrections",
        files={"file": ("m.png", buffer.getvalue())},
        headers=dicom_server.h(),
    )
    assert r.status_code == 201, r.text
    rt = dicom_server.runtime
    data = rt.services.learning.learner(rt.services.projects.find("ct")).data
    (sample,) = [c for c in data.corrections() if c.id == r.json()["id"]]
    assert sample.frame == 2
    loaded = data.load(sample)
    expected = read_image_frame(dicom_bytes(ds), 2)
    np.testing.assert_array_equal(loaded.image.pixels, expected)
    np.testing.assert_array_equal(loaded.mask, mask)


def read_image_frame(data: bytes, frame: int) -> np.ndarray:
    from medloop.io import decode_image

    return decode_image(data, frame=frame).pixels
