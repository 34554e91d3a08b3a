"""The DICOMweb sync against an in-memory PACS: fetch once, analyse, store SEG back,
survive outages, read corrections made as SEG in the PACS."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from sqlalchemy import func, select

from medloop.dicom.dicomweb import InstanceRef, PacsError, PacsUnavailable
from medloop.dicom.seg import build_seg, deterministic_uid
from medloop.dicom.seg_read import read_seg
from medloop.domain.dicom import DicomSettings
from medloop.domain.labels import LabelSet
from medloop.runtime import Runtime
from medloop.services.dicom_sync import SyncReport
from medloop.storage import repo_dicom
from medloop.storage.models import Analysis, Correction, DicomInstance, utcnow

from .conftest import LABELS, DicomServer, multiframe_ct, sample_file


class FakePacs:
    """A PACS in memory: QIDO pages, WADO copies, STOW appends; ``down`` breaks it."""

    def __init__(self, datasets: Sequence[Dataset] = ()) -> None:
        self.instances: dict[str, Dataset] = {}
        self.retrieved: list[str] = []
        self.stored: list[Dataset] = []
        self.down = False
        self.store_down = False
        self.gone: set[str] = set()
        for ds in datasets:
            self.add(ds)

    def add(self, ds: Dataset) -> None:
        self.instances[str(ds.SOPInstanceUID)] = copy.deepcopy(ds)

    def search(self, offset: int, limit: int, study_date_from: str | None) -> list[InstanceRef]:
        if self.down:
            raise PacsUnavailable("QIDO-RS search: ConnectionError")
        refs = [
            InstanceRef(
                str(ds.StudyInstanceUID),
                str(ds.SeriesInstanceUID),
                uid,
                str(ds.SOPClassUID),
                str(ds.get("Modality", "")),
            )
            for uid, ds in self.instances.items()
        ]
        return refs[offset : offset + limit]

    def retrieve(self, ref: InstanceRef) -> Dataset:
        if self.down:
            raise PacsUnavailable("WADO-RS: ConnectionError")
        if ref.sop in self.gone:
            raise PacsError(f"WADO-RS retrieve of {ref.sop}: HTTP 404")
        self.retrieved.append(ref.sop)
        return copy.deepcopy(self.instances[ref.sop])

    def store(self, datasets: Sequence[Dataset]) -> None:
        if self.down or self.store_down:
            raise PacsUnavailable("STOW-RS store: HTTP 503")
        for ds in datasets:
            self.stored.append(copy.deepcopy(ds))
            self.add(ds)


def sync_project(
    rt: Runtime, project_id: str, pacs: FakePacs, now: datetime | None = None
) -> SyncReport:
    return rt.services.sync.run(project_id, pacs, now=now)


def _connect(srv: DicomServer, project_id: str, **web: object) -> None:
    # enabled: False keeps the server's scheduler from polling this fake address itself
    web = {"url": "http://pacs.invalid/dicom-web", "enabled": False, **web}
    settings = DicomSettings.load({"dicomweb": web}, None)
    with srv.runtime.db.write() as s:
        repo_dicom.set_dicom_settings(s, project_id, settings.stored(srv.runtime.secrets.box))


def _ledger(srv: DicomServer, project_id: str) -> dict[str, tuple[str, str]]:
    with srv.runtime.db.write() as s:
        rows = s.scalars(select(DicomInstance).where(DicomInstance.project_id == project_id))
        return {r.sop_instance_uid: (r.kind, r.state) for r in rows}


def _count(srv: DicomServer, model: type, project_id: str) -> int:
    with srv.runtime.db.write() as s:
        query = select(func.count()).select_from(model).where(model.project_id == project_id)
        return int(s.scalar(query) or 0)


def _sources() -> list[Dataset]:
    return [
        pydicom.dcmread(sample_file("CT_small.dcm")),
        pydicom.dcmread(sample_file("MR_small.dcm")),
        multiframe_ct(2),
    ]


def test_new_instances_analysed_once_and_seg_stored(
    dicom_server: DicomServer, new_project: Callable[[str], str]
) -> None:
    pid = new_project("sync-basic")
    _connect(dicom_server, pid)
    sources = _sources()
    pacs = FakePacs(sources)
    report = sync_project(dicom_server.runtime, pid, pacs)
    assert (report.discovered, report.analysed, report.pacs_unavailable) == (3, 3, False)
    # a multi-frame source without per-frame geometry gets a SEG per frame
    assert report.segs_stored == 4 and len(pacs.stored) == 4
    for ds in sources:
        uid = str(ds.SOPInstanceUID)
        segs = [
            s for s in pacs.stored if uid in read_seg(s, LabelSet.from_dicts(LABELS)).references
        ]
        assert segs, uid
        assert all(str(s.StudyInstanceUID) == str(ds.StudyInstanceUID) for s in segs)
        assert all(
            s.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmName
            == "medloop"
            for s in segs
        )
    ledger = _ledger(dicom_server, pid)
    assert sorted(ledger.values()) == sorted([("source", "done")] * 3 + [("seg_out", "done")] * 4)
    analyses = _count(dicom_server, Analysis, pid)
    assert analyses == 4  # 1 + 1 + 2 frames

    # a second run finds the SEGs it stored (known) and fetches nothing again
    fetched = list(pacs.retrieved)
    again = sync_project(dicom_server.runtime, pid, pacs)
    assert (again.discovered, again.analysed, again.corrections) == (0, 0, 0)
    assert pacs.retrieved == fetched
    assert _count(dicom_server, Analysis, pid) == analyses


def test_pacs_outage_is_retried_and_loses_nothing(
    dicom_server: DicomServer, new_project: Callable[[str], str]
) -> None:
    pid = new_project("sync-outage")
    _connect(dicom_server, pid)
    ct, mr, _ = _sources()
    pacs = FakePacs([ct])
    pacs.down = True
    report = sync_project(dicom_server.runtime, pid, pacs)
    assert report.pacs_unavailable and report.discovered == 0
    pacs.down = False

    # the upload of the result fails: the analysis is kept, the SEG goes at the next run
    pacs.store_down = True
    report = sync_project(dicom_server.runtime, pid, pacs)
    assert report.analysed == 1 and report.pacs_unavailable and not pacs.stored
    assert _ledger(dicom_server, pid)[str(ct.SOPInstanceUID)] == ("source", "analysed")
    pacs.store_down = False
    pacs.add(mr)
    report = sync_project(dicom_server.runtime, pid, pacs)
    assert report.analysed == 1 and report.segs_stored == 2
    assert pacs.retrieved.count(str(ct.SOPInstanceUID)) == 1  # not fetched twice
    assert _count(dicom_server, Analysis, pid) == 2  # not analysed twice
    assert {v for v in _ledger(dicom_server, pid).values()} == {
        ("source", "done"),
        ("seg_out", "done"),
    }


def test_failing_instance_backs_off_then_is_given_up(
    dicom_server: DicomServer, new_project: Callable[[str], str]
) -> None:
    pid = new_project("sync-gone")
    _connect(dicom_server, pid, max_attempts=2)
    ct = _sources()[0]
    pacs = FakePacs([ct])
    pacs.gone.add(str(ct.SOPInstanceUID))
    now = utcnow()
    report = sync_project(dicom_server.runtime, pid, pacs, now=now)
    assert report.retrying == 1
    report = sync_project(dicom_server.runtime, pid, pacs, now=now + timedelta(seconds=5))
    assert (report.retrying, report.failed) == (0, 0)  # backing off
    report = sync_project(dicom_server.runtime, pid, pacs, now=now + timedelta(minutes=5))
    assert report.failed == 1
    with dicom_server.runtime.db.write() as s:
        row = repo_dicom.find_dicom_instance(s, pid, str(ct.SOPInstanceUID))
        assert row is not None and row.state == "failed" and "404" in (row.last_error or "")


def test_bad_instance_given_up_at_once_and_others_ignored(
    dicom_server: DicomServer, new_project: Callable[[str], str]
) -> None:
    pid = new_project("sync-bad")
    _connect(dicom_server, pid, modalities=["CT"])
    ct, mr, _ = _sources()
    broken = copy.deepcopy(ct)
    broken.SOPInstanceUID = pydicom.uid.generate_uid()
    del broken.PixelData
    pacs = FakePacs([broken, mr])
    report = sync_project(dicom_server.runtime, pid, pacs)
    assert (report.failed, report.skipped, report.analysed) == (1, 1, 0)
    assert _ledger(dicom_server, pid)[str(mr.SOPInstanceUID)] == ("other", "skipped")


def test_seg_edited_in_the_pacs_becomes_a_correction(
    dicom_server: DicomServer, new_project: Callable[[str], str]
) -> None:
    pid = new_project("sync-correct")
    _connect(dicom_server, pid)
    mr = pydicom.dcmread(sample_file("MR_small.dcm"))
    pacs = FakePacs([mr])
    sync_project(dicom_server.runtime, pid, pacs)
    edited_mask = np.zeros((64, 64), np.uint8)
    edited_mask[20:40, 20:40] = 1
    edited = build_seg(
        copy.deepcopy(mr),
        {0: edited_mask},
        LabelSet.from_dicts(LABELS),
        model_version="manual",
        sop_instance_uid=deterministic_uid("edited-in-pacs"),
        series_instance_uid=deterministic_uid("edited-series"),
    )
    edited.Manufacturer = "3D Slicer"
    pacs.add(edited)
    report = sync_project(dicom_server.runtime, pid, pacs)
    assert report.corrections == 1
    with dicom_server.runtime.db.write() as s:
        (correction,) = s.scalars(select(Correction).where(Correction.project_id == pid))
        analysis = s.get(Analysis, correction.analysis_id)
        assert analysis is not None and analysis.image_id is not None
        assert correction.author_id is None  # made by the system on the clinician's behalf
    again = sync_project(dicom_server.runtime, pid, pacs)
    assert again.corrections == 0 and _count(dicom_server, Correction, pid) == 1


def test_deidentified_project_sends_seg_with_the_pacs_identifiers(
    dicom_server: DicomServer, new_project: Callable[[str], str]
) -> None:
    pid = new_project("sync-deid")
    settings = DicomSettings.load(
        {
            "dicomweb": {"url": "http://pacs.invalid", "enabled": False},
            "deidentify": {"enabled": True},
        },
        None,
    ).with_key()
    with dicom_server.runtime.db.write() as s:
        repo_dicom.set_dicom_settings(s, pid, settings.stored(dicom_server.runtime.secrets.box))
    ct = pydicom.dcmread(sample_file("CT_small.dcm"))
    pacs = FakePacs([ct])
    report = sync_project(dicom_server.runtime, pid, pacs)
    assert report.segs_stored == 1
    (seg,) = pacs.stored
    assert list(read_seg(seg, LabelSet.from_dicts(LABELS)).references) == [str(ct.SOPInstanceUID)]
    assert str(seg.StudyInstanceUID) == str(ct.StudyInstanceUID)
    assert seg.PatientID == ct.PatientID
    with dicom_server.runtime.db.write() as s:
        from medloop.storage.models import Image as ImageRow

        (image,) = s.scalars(select(ImageRow).where(ImageRow.project_id == pid))
        assert image.meta["SOPInstanceUID"] != str(ct.SOPInstanceUID)  # stored de-identified
        assert image.filename.startswith("2.25.")


def test_pages_are_followed() -> None:
    from medloop.dicom.dicomweb import iter_instances

    refs = [InstanceRef("s", "r", str(i)) for i in range(250)]

    class Paged:
        def search(self, offset: int, limit: int, study_date_from: str | None) -> list[InstanceRef]:
            return refs[offset : offset + limit]

    assert [r.sop for r in iter_instances(Paged())] == [r.sop for r in refs]  # type: ignore[arg-type]
    assert list(itertools.islice(iter_instances(Paged(), page=100), 3))[2].sop == "2"  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["source", "seg_in"])
def test_ledger_kinds(kind: str) -> None:
    from medloop.dicom.dicomweb import classify as _classify
    from medloop.domain.dicom import DicomwebSettings

    sop_class = "1.2.840.10008.5.1.4.1.1.66.4" if kind == "seg_in" else "1.2.840.10008.5.1.4.1.1.2"
    ref = InstanceRef("a", "b", "c", sop_class, "CT")
    assert _classify(ref, DicomwebSettings(url="http://x"))[0] == kind
    sr = InstanceRef("a", "b", "c", "1.2.840.10008.5.1.4.1.1.88.11", "SR")
    assert _classify(sr, DicomwebSettings(url="http://x")) == ("other", "skipped")
