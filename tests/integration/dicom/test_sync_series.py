"""The DICOMweb sync of a 3D project against an in-memory PACS: series found by modality,
fetched whole once, analysed as one volume, one SEG stored back per series; a refused
fetch backs off, an outage loses nothing, a broken series is given up at once."""

from __future__ import annotations

import copy
import gzip
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset

from medloop.dicom.dicomweb import InstanceRef, PacsError, PacsUnavailable, SeriesRef
from medloop.dicom.seg import encode_dataset
from medloop.dicom.seg_read import read_seg
from medloop.dicom.series_seg import build_series_seg
from medloop.domain.records import DicomInstanceRecord
from medloop.io.dicom_series import assemble_series
from medloop.storage import repo_dicom
from medloop.storage.models import utcnow

from ...dicom_series import series_files
from .conftest import SETTINGS_3D, DicomServer
from .test_sync import _connect, _ledger


class FakeSeriesPacs:
    """Series in memory: QIDO series pages, WADO of a series, STOW appends."""

    def __init__(self) -> None:
        self.series: dict[str, list[Dataset]] = {}
        self.modality: dict[str, str] = {}
        self.fetched: list[str] = []
        self.stored: list[Dataset] = []
        self.down = False
        self.refuse: set[str] = set()

    def add(self, files: list[tuple[str, bytes]], modality: str = "MR") -> str:
        import io

        datasets = [pydicom.dcmread(io.BytesIO(raw)) for _, raw in files]
        uid = str(datasets[0].SeriesInstanceUID)
        self.series[uid], self.modality[uid] = datasets, modality
        return uid

    def search_series(
        self, offset: int, limit: int, study_date_from: str | None, modality: str | None
    ) -> list[SeriesRef]:
        if self.down:
            raise PacsUnavailable("QIDO-RS series search: the PACS could not be reached")
        refs = [
            SeriesRef(str(ds[0].StudyInstanceUID), uid, self.modality[uid])
            for uid, ds in self.series.items()
            if modality is None or self.modality[uid] == modality
        ]
        return refs[offset : offset + limit]

    def retrieve_series(self, ref: SeriesRef) -> list[Dataset]:
        if self.down:
            raise PacsUnavailable("WADO-RS: the PACS could not be reached")
        if ref.series in self.refuse:
            raise PacsError(f"WADO-RS retrieve of series {ref.series}: HTTP 404")
        self.fetched.append(ref.series)
        return [copy.deepcopy(ds) for ds in self.series[ref.series]]

    def series_instances(self, ref: SeriesRef) -> list[InstanceRef]:
        return [
            InstanceRef(ref.study, ref.series, str(ds.SOPInstanceUID), str(ds.SOPClassUID), "SEG")
            for ds in self.series[ref.series]
        ]

    def retrieve(self, ref: InstanceRef) -> Dataset:
        (ds,) = [d for d in self.series[ref.series] if str(d.SOPInstanceUID) == ref.sop]
        return copy.deepcopy(ds)

    def store(self, datasets: Sequence[Dataset]) -> None:
        if self.down:
            raise PacsUnavailable("STOW-RS store: HTTP 503")
        for ds in datasets:  # kept, and listed like any SEG series
            self.stored.append(copy.deepcopy(ds))
            self.series.setdefault(str(ds.SeriesInstanceUID), []).append(copy.deepcopy(ds))
            self.modality[str(ds.SeriesInstanceUID)] = "SEG"


def _ledger_rows(srv: DicomServer, project_id: str) -> dict[str, DicomInstanceRecord]:
    with srv.runtime.db.read() as s:
        rows = repo_dicom.list_dicom_instances(s, project_id)
    return {r.sop_instance_uid: r for r in rows}


def _volume(data: Path, case: int, uid: str) -> list[tuple[str, bytes]]:
    img = nib.Nifti1Image.from_bytes(
        gzip.decompress((data / "images" / f"case{case}.nii.gz").read_bytes())
    )
    return series_files(np.asarray(img.dataobj), img.affine, series_uid=uid, shuffle=case)


def test_series_fetched_once_analysed_and_seg_stored(
    dicom_server: DicomServer, volumes_3d: Path, new_project_3d: Callable[[str], str]
) -> None:
    pid = new_project_3d("sync3d")
    _connect(dicom_server, pid, modalities=["MR"])
    pacs = FakeSeriesPacs()
    good = pacs.add(_volume(volumes_3d, 3, "1.2.826.0.1.3680043.8.498.81"))
    pacs.add(_volume(volumes_3d, 2, "1.2.826.0.1.3680043.8.498.82"), modality="CT")  # not MR
    refused = pacs.add(_volume(volumes_3d, 1, "1.2.826.0.1.3680043.8.498.83"))
    pacs.refuse.add(refused)
    broken = pacs.add(_volume(volumes_3d, 0, "1.2.826.0.1.3680043.8.498.84")[:1])  # 1 instance
    sync = dicom_server.runtime.services.sync

    pacs.down = True
    report = sync.run(pid, pacs)  # an outage: nothing recorded, nothing lost
    assert report.pacs_unavailable and report.discovered == 0
    pacs.down = False

    report = sync.run(pid, pacs)
    assert (report.discovered, report.analysed, report.segs_stored) == (3, 1, 1), report
    assert (report.retrying, report.failed) == (1, 1), report  # refused: later; broken: never
    ledger = _ledger(dicom_server, pid)
    assert ledger[good] == ("source", "done") and ledger[broken] == ("source", "failed")
    assert ledger[refused] == ("source", "pending")
    (seg,) = pacs.stored
    instances = {str(ds.SOPInstanceUID) for ds in pacs.series[good]}
    assert set(read_seg(seg, SETTINGS_3D.label_set).references) == instances
    assert ledger[str(seg.SOPInstanceUID)] == ("seg_out", "done")

    report = sync.run(pid, pacs)  # before the backoff ends: nothing fetched again
    assert (report.discovered, report.analysed) == (1, 0) and pacs.fetched.count(good) == 1
    ledger = _ledger(dicom_server, pid)  # the one new series is our SEG's, recorded once
    assert ledger[str(seg.SeriesInstanceUID)] == ("other", "skipped")
    assert ledger[str(seg.SOPInstanceUID)] == ("seg_out", "done")  # never read back
    pacs.refuse.clear()
    report = sync.run(pid, pacs, now=utcnow() + timedelta(hours=2))
    assert (report.analysed, report.segs_stored, report.corrections) == (1, 1, 0), report
    assert pacs.fetched.count(good) == 1 and _ledger(dicom_server, pid)[refused][1] == "done"

    # a clinician edits the result in a viewer, which stores a SEG of its own in the PACS
    files = [(f"{i}.dcm", encode_dataset(ds)) for i, ds in enumerate(pacs.series[good])]
    volume = assemble_series(files, max_pixels=10**7)
    edited = np.zeros(volume.shape, np.uint8)
    edited[3:9, 4:10, 2:6] = 1
    seg = build_series_seg(
        pacs.series[good],
        edited,
        volume.affine,
        SETTINGS_3D.label_set,
        model_version="edited",
        sop_instance_uid="2.25.901",
        series_instance_uid="2.25.902",
    )
    seg.Manufacturer = "OHIF"
    pacs.series["2.25.902"], pacs.modality["2.25.902"] = [seg], "SEG"
    report = sync.run(pid, pacs, now=utcnow() + timedelta(hours=3))
    assert report.corrections == 1 and report.analysed == 0, report  # never our own SEGs
    (correction,) = dicom_server.runtime.services.corrections.recent(pid)
    row = _ledger_rows(dicom_server, pid)[good]
    assert correction.analysis_id in row.detail["analyses"]  # the good series' analysis
    stored = dicom_server.runtime.services.corrections.mask(pid, correction.id).data
    kept = nib.Nifti1Image.from_bytes(gzip.decompress(stored))
    assert np.array_equal(np.asarray(kept.dataobj), edited)
