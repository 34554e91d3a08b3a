"""De-identification: PS3.15 Basic Profile, consistent pseudonyms, burned-in annotation."""

from __future__ import annotations

import copy
import io

import numpy as np
import pydicom
import pytest

from medloop.dicom.deid import (
    DEIDENTIFICATION_METHOD,
    Deidentifier,
    burned_in_reason,
    identifiers,
    reidentify,
)
from medloop.dicom.seg import build_seg, deterministic_uid, encode_dataset
from medloop.dicom.seg_read import read_seg
from medloop.domain.labels import LabelSet

from .conftest import sample


def test_basic_profile_applied() -> None:
    ds = pydicom.dcmread(sample("CT_small.dcm"))
    original = copy.deepcopy(ds)
    entries = Deidentifier("secret").apply(ds)
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethod == DEIDENTIFICATION_METHOD
    code = ds.DeidentificationMethodCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator) == ("113100", "DCM")
    assert ds.PatientID.startswith("MLP-") and str(ds.PatientName) == ds.PatientID
    assert ds.PatientID != original.PatientID
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
        assert ds[key].value != original[key].value and ds[key].value.startswith("2.25.")
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.SOPClassUID == original.SOPClassUID  # class UIDs stay
    assert ds.StudyDate != original.StudyDate
    assert not any(elem.tag.is_private for elem in ds)
    assert ("patient_id", str(original.PatientID), ds.PatientID) in entries
    assert ("uid", str(original.SOPInstanceUID), ds.SOPInstanceUID) in entries
    np.testing.assert_array_equal(ds.pixel_array, original.pixel_array)
    pydicom.dcmread(io.BytesIO(encode_dataset(ds)))  # still a valid file


def test_pseudonyms_consistent_per_key() -> None:
    a, b, c = (pydicom.dcmread(sample("CT_small.dcm")) for _ in range(3))
    Deidentifier("one").apply(a)
    Deidentifier("one").apply(b)
    Deidentifier("two").apply(c)
    assert a.SOPInstanceUID == b.SOPInstanceUID and a.PatientID == b.PatientID
    assert a.SOPInstanceUID != c.SOPInstanceUID and a.PatientID != c.PatientID


def test_seg_references_survive_consistent_remapping() -> None:
    labels = LabelSet.from_names(["x"])
    source = pydicom.dcmread(sample("MR_small.dcm"))
    mask = np.zeros((64, 64), np.uint8)
    mask[5:9, 5:9] = 1
    seg = build_seg(
        copy.deepcopy(source),
        {0: mask},
        labels,
        model_version="v1",
        sop_instance_uid=deterministic_uid("s"),
        series_instance_uid=deterministic_uid("t"),
    )
    deid = Deidentifier("k")
    deid.apply(source)
    deid.apply(seg)
    content = read_seg(seg, labels)
    assert list(content.references) == [str(source.SOPInstanceUID)]
    np.testing.assert_array_equal(content.label_map(str(source.SOPInstanceUID)), mask)


def test_reidentify_restores_uids_and_patient() -> None:
    ds = pydicom.dcmread(sample("CT_small.dcm"))
    original = copy.deepcopy(ds)
    entries = Deidentifier("k").apply(ds)
    assert str(original.SOPInstanceUID) not in identifiers(ds)
    reidentify(ds, entries)
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "PatientID"):
        assert ds[key].value == original[key].value
    assert str(ds.PatientName) == str(original.PatientName)


@pytest.mark.parametrize(
    ("value", "reason"),
    [("NO", None), ("YES", "BurnedInAnnotation is YES"), (None, "BurnedInAnnotation is missing")],
)
def test_burned_in_reason(value: str | None, reason: str | None) -> None:
    ds = pydicom.dcmread(sample("CT_small.dcm"), stop_before_pixels=True)
    if value is not None:
        ds.BurnedInAnnotation = value
    assert burned_in_reason(ds) == reason


def test_a_key_is_needed() -> None:
    with pytest.raises(ValueError, match="key"):
        Deidentifier("")
