"""DICOM SEG: write with highdicom, read back with highdicom and pydicom."""

from __future__ import annotations

import io

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from medloop.dicom.seg import (
    LABEL_SCHEME,
    build_seg,
    deterministic_uid,
    encode_dataset,
    one_frame_per_seg,
)
from medloop.dicom.seg_read import read_seg
from medloop.domain.labels import LabelSet
from medloop.errors import MaskError

from .conftest import sample

LABELS = LabelSet.from_names(["tumour", "oedema"])


def _label_map(shape: tuple[int, int], shift: int = 0) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    out[10 + shift : 30 + shift, 5:25] = 1
    out[40:46, 30 + shift : 50] = 2
    return out


def _seg(source: Dataset, maps: dict[int, np.ndarray], version: str = "v0007") -> bytes:
    seg = build_seg(
        source,
        maps,
        LABELS,
        model_version=version,
        sop_instance_uid=deterministic_uid("test", version),
        series_instance_uid=deterministic_uid("series"),
    )
    return encode_dataset(seg)


def test_single_frame_round_trip_geometry_labels_references() -> None:
    source = pydicom.dcmread(sample("CT_small.dcm"))
    label_map = _label_map((128, 128))
    data = _seg(source, {0: label_map})

    ds = pydicom.dcmread(io.BytesIO(data))  # plain pydicom
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    assert (ds.Rows, ds.Columns) == (source.Rows, source.Columns)
    assert ds.StudyInstanceUID == source.StudyInstanceUID
    assert ds.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert ds.PatientID == source.PatientID
    ref = ds.ReferencedSeriesSequence[0]
    assert ref.SeriesInstanceUID == source.SeriesInstanceUID
    assert ref.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    segments = ds.SegmentSequence
    assert [s.SegmentLabel for s in segments] == ["tumour", "oedema"]
    assert [s.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator for s in segments] == [
        LABEL_SCHEME,
        LABEL_SCHEME,
    ]
    algo = segments[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algo.AlgorithmName == "medloop" and algo.AlgorithmVersion == "v0007"
    assert segments[0].SegmentAlgorithmType == "AUTOMATIC"
    spacing = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing
    assert [float(v) for v in spacing] == [float(v) for v in source.PixelSpacing]

    seg = hd.seg.segread(io.BytesIO(data))  # highdicom
    pixels = seg.get_pixels_by_source_instance([str(source.SOPInstanceUID)], combine_segments=True)[
        0
    ]
    np.testing.assert_array_equal(pixels, label_map)

    content = read_seg(data, LABELS)  # ours
    assert content.references == {str(source.SOPInstanceUID): frozenset({0})}
    assert content.manufacturer == "medloop"
    np.testing.assert_array_equal(content.label_map(str(source.SOPInstanceUID)), label_map)


def test_enhanced_multiframe_one_seg_for_all_frames() -> None:
    source = pydicom.dcmread(sample("eCT_Supplemental.dcm"))  # pydicom-data
    assert not one_frame_per_seg(source)
    maps = {0: _label_map((512, 512)), 1: _label_map((512, 512), shift=40)}
    content = read_seg(_seg(source, maps), LABELS)
    uid = str(source.SOPInstanceUID)
    assert content.references == {uid: frozenset({0, 1})}
    for frame, expected in maps.items():
        np.testing.assert_array_equal(content.label_map(uid, frame, 2), expected)


def test_multiframe_without_geometry_one_seg_per_frame() -> None:
    source = pydicom.dcmread(sample("emri_small.dcm"))  # pydicom-data, no functional groups
    assert one_frame_per_seg(source)
    with pytest.raises(MaskError, match="one SEG per frame"):
        _seg(source, {0: _label_map((64, 64)), 1: _label_map((64, 64))})
    content = read_seg(_seg(source, {7: _label_map((64, 64))}), LABELS)
    uid = str(source.SOPInstanceUID)
    assert content.references == {uid: frozenset({7})}
    np.testing.assert_array_equal(content.label_map(uid, 7, 10), _label_map((64, 64)))
    assert not content.label_map(uid, 6, 10).any()


def test_empty_prediction_still_makes_a_seg() -> None:
    source = pydicom.dcmread(sample("MR_small.dcm"))
    content = read_seg(_seg(source, {0: np.zeros((64, 64), np.uint8)}), LABELS)
    assert not content.label_map(str(source.SOPInstanceUID)).any()


def test_segments_matched_by_label_name_when_codes_differ() -> None:
    source = pydicom.dcmread(sample("MR_small.dcm"))
    ds = pydicom.dcmread(io.BytesIO(_seg(source, {0: _label_map((64, 64))})))
    # as another tool would write it: its own codes, the labels in another order and case
    for item, label in zip(ds.SegmentSequence, ["OEDEMA", "Tumour"], strict=True):
        item.SegmentLabel = label
        code = item.SegmentedPropertyTypeCodeSequence[0]
        code.CodingSchemeDesignator, code.CodeValue = "SCT", "108369006"
    back = read_seg(ds, LABELS).label_map(str(source.SOPInstanceUID))
    expected = _label_map((64, 64))
    np.testing.assert_array_equal(back, np.choose(expected, [0, 2, 1]).astype(np.uint8))


def test_unknown_segment_and_not_a_seg_are_refused() -> None:
    source = pydicom.dcmread(sample("MR_small.dcm"))
    ds = pydicom.dcmread(io.BytesIO(_seg(source, {0: _label_map((64, 64))})))
    ds.SegmentSequence[1].SegmentLabel = "liver"
    ds.SegmentSequence[1].SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator = "SCT"
    with pytest.raises(MaskError, match=r"segment\(s\) 2 'liver' match none .*tumour, oedema"):
        read_seg(ds, LABELS)
    with pytest.raises(MaskError, match="not a DICOM SEG"):
        read_seg(sample("CT_small.dcm").read_bytes(), LABELS)
    with pytest.raises(MaskError, match="not a readable DICOM"):
        read_seg(b"nonsense", LABELS)


def test_label_map_of_unreferenced_instance_is_refused() -> None:
    source = pydicom.dcmread(sample("MR_small.dcm"))
    content = read_seg(_seg(source, {0: _label_map((64, 64))}), LABELS)
    with pytest.raises(MaskError, match=r"does not reference instance 1\.2\.3"):
        content.label_map("1.2.3")


def test_bad_label_maps_are_refused() -> None:
    source = pydicom.dcmread(sample("MR_small.dcm"))
    with pytest.raises(MaskError, match=r"label map is \(10, 10\)"):
        _seg(source, {0: np.zeros((10, 10), np.uint8)})
    with pytest.raises(MaskError, match="label 3 is not one of"):
        _seg(source, {0: np.full((64, 64), 3, np.uint8)})
    with pytest.raises(MaskError, match="frame 1 is outside"):
        _seg(source, {1: np.zeros((64, 64), np.uint8)})


def test_deterministic_uid() -> None:
    assert deterministic_uid("a", "b") == deterministic_uid("a", "b")
    assert deterministic_uid("a", "b") != deterministic_uid("ab")
    uid = deterministic_uid("x")
    assert uid.startswith("2.25.") and len(uid) <= 64
    assert pydicom.uid.UID(uid).is_valid
