"""A SEG of a volume assembled from a DICOM series: built from the label volume, read back
frame by frame on the instances' own geometry, whatever order the instances came in."""

from __future__ import annotations

import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medloop.dicom.seg import encode_dataset, segmentation
from medloop.dicom.seg_read import read_seg
from medloop.dicom.series_headers import headers_only, pack_headers, unpack_headers
from medloop.dicom.series_seg import build_series_seg, series_label_volume
from medloop.domain.labels import LabelSet
from medloop.errors import MaskError
from medloop.io.dicom_series import assemble_frames, assemble_series

from ...dicom_series import HIPPOCAMPUS, enhanced_file, hippocampus, series_files

LABELS = LabelSet.from_dicts(
    [
        {"value": 1, "name": "anterior", "color": "#ff0000"},
        {"value": 2, "name": "posterior", "color": "#00ff00"},
    ]
)
needs_data = pytest.mark.skipif(not Path(HIPPOCAMPUS).is_dir(), reason="needs the hippocampus")


def _truth(case: str = "001") -> np.ndarray:
    img = nib.load(f"{HIPPOCAMPUS}/masks/hippocampus_{case}.nii.gz")
    return np.asarray(img.dataobj).astype(np.uint8)


def _seg(files: list[tuple[str, bytes]], labels: np.ndarray, **uids: str) -> bytes:
    """The SEG of ``labels`` (on the volume's input grid) for the series ``files``."""
    volume = assemble_series(files, max_pixels=10**8)
    on_grid = _on_volume_grid(files, labels)
    headers = unpack_headers(pack_headers([headers_only(data) for _, data in files]))
    seg = build_series_seg(
        headers,
        on_grid,
        volume.affine,
        LABELS,
        model_version="v0007",
        sop_instance_uid=uids.get("sop", "2.25.1"),
        series_instance_uid=uids.get("series", "2.25.2"),
    )
    return encode_dataset(seg)


def _on_volume_grid(files: list[tuple[str, bytes]], labels: np.ndarray) -> np.ndarray:
    """``labels`` (``(X, Y, Z)`` as written into the series) on the assembled volume's grid:
    assembled exactly like the pixels, by writing them as a series of their own."""
    from medloop.io.volumes import volume_image

    volume = assemble_series(files, max_pixels=10**8)
    undo = volume.metadata["orientation"]
    grid = volume_image(labels, np.asarray(undo["affine"]), "x", {}, "labels")
    return grid.pixels[..., 0].astype(np.uint8)


@needs_data
def test_series_seg_round_trip_on_shuffled_instances() -> None:
    arr, affine = hippocampus("001")
    truth = _truth("001")
    files = series_files(arr, affine, shuffle=11)
    volume = assemble_series(files, max_pixels=10**8)
    grid = _on_volume_grid(files, truth)
    data = _seg(files, truth)
    ds = pydicom.dcmread(io.BytesIO(data))
    # one SEG referencing every instance; algorithm = medloop and the model version
    referenced = {
        str(i.ReferencedSOPInstanceUID)
        for s in ds.ReferencedSeriesSequence
        for i in s.ReferencedInstanceSequence
    }
    uids = {str(pydicom.dcmread(io.BytesIO(b)).SOPInstanceUID) for _, b in files}
    assert referenced == uids and len(uids) == arr.shape[2]
    algo = ds.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert (algo.AlgorithmName, algo.AlgorithmVersion) == ("medloop", "v0007")
    # segment frame k lies on the instance with the matching Image Position (Patient)
    by_uid = {}
    for name, raw in files:
        k = int(name[2:6])  # IM{k}.dcm holds arr[:, :, k]
        by_uid[str(pydicom.dcmread(io.BytesIO(raw)).SOPInstanceUID)] = k
    seg = read_seg(data, LABELS)
    for uid, k in by_uid.items():
        assert np.array_equal(seg.planes(uid)[0], truth[:, :, k].T), k
    # read back onto the volume: the same label volume
    headers = [headers_only(raw) for _, raw in files]
    back = series_label_volume(seg, headers, volume.affine, volume.shape)
    assert np.array_equal(back, grid) and back.any()


@needs_data
def test_series_seg_uids_are_deterministic() -> None:
    arr, affine = hippocampus("001")
    files = series_files(arr, affine, shuffle=3)
    truth = _truth("001")
    first, again = _seg(files, truth), _seg(series_files(arr, affine, shuffle=5), truth)
    a, b = (pydicom.dcmread(io.BytesIO(x)) for x in (first, again))
    assert (a.SOPInstanceUID, a.SeriesInstanceUID) == (b.SOPInstanceUID, b.SeriesInstanceUID)
    assert np.array_equal(a.pixel_array, b.pixel_array)  # instance order does not matter


def test_enhanced_multiframe_round_trip() -> None:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 200, (12, 10, 6)).astype(np.int16)
    affine = np.diag([-0.8, -0.8, 2.5, 1.0])
    labels = np.zeros(arr.shape, np.uint8)
    labels[2:7, 3:6, 1:4] = 1
    labels[8:11, 1:4, 4] = 2
    data = enhanced_file(arr, affine, seed=4)
    volume = assemble_frames(data, "mf.dcm", max_pixels=10**6)
    from medloop.io.volumes import volume_image

    undo = volume.metadata["orientation"]
    grid = volume_image(labels, np.asarray(undo["affine"]), "x", {}, "l").pixels[..., 0]
    headers = [headers_only(data)]
    seg = build_series_seg(
        headers,
        grid.astype(np.uint8),
        volume.affine,
        LABELS,
        model_version="v1",
        sop_instance_uid="2.25.3",
        series_instance_uid="2.25.4",
    )
    back = series_label_volume(
        read_seg(encode_dataset(seg), LABELS), headers, volume.affine, volume.shape
    )
    assert np.array_equal(back, grid)


def test_a_seg_of_other_instances_or_overlapping_segments_is_refused() -> None:
    arr = (np.arange(8 * 6 * 4) % 50).astype(np.int16).reshape(8, 6, 4)
    affine = np.diag([-1.0, -1.0, 2.0, 1.0])
    files = series_files(arr, affine)
    other = series_files(arr, affine, series_uid="1.2.3.4")
    volume = assemble_series(files, max_pixels=10**6)
    labels = np.zeros(volume.shape, np.uint8)
    labels[1:4, 1:3, 1:3] = 1
    built = _seg(other, labels)
    headers = [headers_only(raw) for _, raw in files]
    with pytest.raises(MaskError, match=r"references series 1\.2\.3\.4"):
        series_label_volume(read_seg(built, LABELS), headers, volume.affine, volume.shape)
    # segments of two labels on one pixel (as a viewer may write them) cannot be one map
    planes = np.zeros((len(files), 6, 8, 2), np.uint8)  # (instances, rows, columns, segments)
    planes[1, 2:4, 2:5, 0] = 1
    planes[1, 3:5, 4:6, 1] = 1
    sources = [headers_only(raw) for _, raw in files]
    for ds in sources:  # what a viewer's sources have (the written series lacks them)
        ds.PatientName = ds.PatientBirthDate = ds.PatientSex = ds.AccessionNumber = ""
        ds.StudyDate = ds.StudyTime = ds.ReferringPhysicianName = ds.StudyID = ""
        ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.1.9"
    overlapping = segmentation(
        sources,
        planes,
        LABELS,
        model_version="viewer",
        sop_instance_uid="2.25.5",
        series_instance_uid="2.25.6",
        series_number=1,
        instance_number=1,
        software_version="",
    )
    with pytest.raises(MaskError, match="overlap on instance"):
        series_label_volume(read_seg(overlapping, LABELS), headers, volume.affine, volume.shape)


def test_a_seg_referencing_instances_outside_the_series_is_refused() -> None:
    arr = (np.arange(8 * 6 * 4) % 50).astype(np.int16).reshape(8, 6, 4)
    affine = np.diag([-1.0, -1.0, 2.0, 1.0])
    files = series_files(arr, affine, shuffle=None)
    labels = np.zeros(arr.shape, np.uint8)
    labels[1:4, 1:3, :] = 1
    seg = read_seg(_seg(files, labels), LABELS)  # 4 instances; the stored series has 3
    three = series_files(arr[:, :, :3], affine, shuffle=None)
    volume = assemble_series(three, max_pixels=10**6)
    headers = [headers_only(raw) for _, raw in three]
    with pytest.raises(MaskError, match=r"references instance\(s\) .*\.4, which are not in"):
        series_label_volume(seg, headers, volume.affine, volume.shape)


def test_a_volume_sent_as_nifti_has_no_seg() -> None:
    from datetime import UTC, datetime

    from medloop.domain.records import ImageRecord
    from medloop.errors import ConflictError
    from medloop.services.dicom_results import source_dataset

    image = ImageRecord(
        id="i" * 32,
        project_id="p" * 32,
        sha256="0" * 64,
        blob_key="0" * 64,
        filename="scan.nii.gz",
        content_type="application/gzip",
        width=24,
        height=28,
        channels=1,
        spacing_mm=None,
        metadata={"orientation": {"affine": np.eye(4).tolist()}, "dtype": "int16"},
        created_at=datetime.now(UTC),
    )
    with pytest.raises(ConflictError, match="NIfTI or NRRD file: it has no DICOM instances"):
        source_dataset(None, image)  # type: ignore[arg-type]  # never reaches the store
