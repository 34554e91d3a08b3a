"""DICOMweb sync of a 3D project, series by series: the steps of a
:class:`~medloop.services.dicom_sync.SyncRun` when the project's ``spatial_dims`` is 3.

1. **Discover** (QIDO-RS at series level, one search per modality the project
   analyses, or every series when it names none): each series the ledger does not know
   is recorded as a ``source`` row keyed by its Series Instance UID
   (``detail["level"] == "series"``), so nothing is fetched twice; a series of a
   modality without images (SR, ...) is recorded as ``other`` and skipped. SEG series
   are listed first: each SEG instance in a SEG series not seen before becomes a
   ``seg_in`` row (read as a correction, of a volume through its series, by the run's
   corrections step), and the SEG series itself is then known (listed once).
2. **Analyse** a due series: WADO-RS all its instances, assemble them into one volume
   (headers kept, de-identified when the project asks), analyse it, mark ``analysed``.
   Its one SEG is then stored back like an instance's (STOW-RS), with the same retries
   and backoff.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medloop.dicom.dicomweb import NOT_IMAGE_MODALITIES, SeriesRef, iter_series
from medloop.dicom.seg import encode_dataset
from medloop.domain.records import DicomInstanceRecord
from medloop.storage import repo_dicom

if TYPE_CHECKING:
    from medloop.services.dicom_sync import SyncRun

__all__ = ["SERIES_LEVEL", "analyse_series", "discover_series", "is_series"]

SERIES_LEVEL = "series"
"""``detail["level"]`` of a ledger row that stands for a whole series."""

_PAGE = 500


def is_series(row: DicomInstanceRecord) -> bool:
    """Whether a ledger row stands for a whole series (a 3D project's source)."""
    return row.detail.get("level") == SERIES_LEVEL


def discover_series(run: SyncRun) -> None:
    """Record every series the PACS lists that the ledger does not know yet (SEG series
    first, with their instances)."""
    segs = [ref for ref in iter_series(run.pacs, run.web.study_date_from, "SEG") if ref.series]
    with run.db.read() as s:
        known = repo_dicom.known_sop_uids(s, run.project.id, (r.series for r in segs))
    for ref in segs:
        if ref.series not in known:
            run.record_instances(
                [i for i in run.pacs.series_instances(ref) if i.sop and i.series == ref.series]
            )
            _record(run, [ref])
    modalities: list[str | None] = [m.upper() for m in run.web.modalities] or [None]
    for modality in modalities:
        page: list[SeriesRef] = []
        for ref in iter_series(run.pacs, run.web.study_date_from, modality):
            if ref.series:
                page.append(ref)
            if len(page) >= _PAGE:
                _record(run, page)
                page = []
        if page:
            _record(run, page)


def _record(run: SyncRun, refs: list[SeriesRef]) -> None:
    with run.db.write() as s:
        known = repo_dicom.known_sop_uids(s, run.project.id, (r.series for r in refs))
        for ref in refs:
            if ref.series in known:
                continue
            skip = ref.modality.upper() in NOT_IMAGE_MODALITIES
            repo_dicom.add_dicom_instance(
                s,
                project_id=run.project.id,
                sop_instance_uid=ref.series,
                study_instance_uid=ref.study,
                series_instance_uid=ref.series,
                sop_class_uid="",
                kind="other" if skip else "source",
                state="skipped" if skip else "pending",
                detail={"level": SERIES_LEVEL, "modality": ref.modality},
            )
            known.add(ref.series)
            run.report.discovered += 1
            run.report.skipped += skip


def analyse_series(run: SyncRun, row: DicomInstanceRecord) -> DicomInstanceRecord:
    """Fetch a whole series, store it as a volume with its headers and analyse it.

    Raises:
        PacsUnavailable, PacsError: the PACS failed or refused.
        InputError: not a series this project can analyse (given up at once).
    """
    ref = SeriesRef(row.study_instance_uid, row.series_instance_uid, row.detail.get("modality", ""))
    datasets = run.pacs.retrieve_series(ref)
    parts = [(f"{ds.SOPInstanceUID}.dcm", [encode_dataset(ds)]) for ds in datasets]
    analysis = run.analyses.create_series(run.project, parts, None)
    run.report.analysed += 1
    detail = {"series": row.series_instance_uid, "analyses": [analysis.id]}
    run.audit("dicomweb.analyse", "image", analysis.image_id, detail)
    return run.update(
        row,
        state="analysed",
        image_id=analysis.image_id,
        last_error=None,
        detail={**row.detail, "analyses": [analysis.id], "instances": len(datasets)},
    )
