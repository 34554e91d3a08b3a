"""The PACS as medloop sees it: find instances, fetch one, store SEGs back.

:class:`Pacs` is the narrow interface the sync uses (tests pass fakes);
:class:`DicomwebPacs` implements it over DICOMweb (QIDO-RS, WADO-RS, STOW-RS) with
``dicomweb-client``. Failures are split in two::

    PacsError            the PACS answered, but refused this request (4xx, bad data)
     └── PacsUnavailable  the PACS could not be reached or failed (connection, timeout, 5xx):
                          worth retrying later, never a reason to give an instance up

Their messages end up in job logs, which every role of the project reads: they name
neither the URL nor what exactly failed (a refused connection, a timeout and a 500 read
the same, so the sync cannot be used to probe ports); the server log has the details.
Redirects are not followed (a PACS does not redirect; a redirect would lead the
credentials, and the server, elsewhere).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydicom.dataset import Dataset

from medloop.domain.dicom import DicomwebSettings
from medloop.errors import MedloopError

__all__ = [
    "NOT_IMAGE_MODALITIES",
    "DicomwebPacs",
    "InstanceRef",
    "Pacs",
    "PacsError",
    "PacsUnavailable",
    "SeriesRef",
    "classify",
    "iter_instances",
    "iter_series",
]

NOT_IMAGE_MODALITIES = frozenset(
    {"SEG", "SR", "PR", "KO", "RTSTRUCT", "RTPLAN", "RTDOSE", "REG", "DOC"}
)
"""Series modalities that hold no images to analyse (the SEGs medloop stores among them)."""

log = logging.getLogger(__name__)

_TAGS = {
    "study": "0020000D",
    "series": "0020000E",
    "sop": "00080018",
    "sop_class": "00080016",
    "modality": "00080060",
}


class PacsError(MedloopError):
    """The PACS refused a request (the request or the data is at fault)."""


class PacsUnavailable(PacsError):
    """The PACS cannot be reached or failed on its side; try again later."""


@dataclass(frozen=True)
class InstanceRef:
    """Where an instance lives on the PACS, and what it is."""

    study: str
    series: str
    sop: str
    sop_class: str = ""
    modality: str = ""

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> InstanceRef:
        """From a QIDO-RS DICOM JSON result."""

        def first(tag: str) -> str:
            values = (item.get(_TAGS[tag]) or {}).get("Value") or [""]
            return str(values[0])

        return cls(*(first(tag) for tag in ("study", "series", "sop", "sop_class", "modality")))


@dataclass(frozen=True)
class SeriesRef:
    """Where a series lives on the PACS, and its modality."""

    study: str
    series: str
    modality: str = ""

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> SeriesRef:
        """From a QIDO-RS DICOM JSON result of a series search."""
        ref = InstanceRef.from_json(item)
        return cls(ref.study, ref.series, ref.modality)


class Pacs(Protocol):
    """What the DICOMweb sync needs from a PACS."""

    def search(self, offset: int, limit: int, study_date_from: str | None) -> list[InstanceRef]:
        """One page of instances (QIDO-RS); an empty page ends the list."""
        ...

    def retrieve(self, ref: InstanceRef) -> Dataset:
        """One instance with its pixel data (WADO-RS)."""
        ...

    def store(self, datasets: Sequence[Dataset]) -> None:
        """Store instances (STOW-RS)."""
        ...

    def search_series(
        self, offset: int, limit: int, study_date_from: str | None, modality: str | None
    ) -> list[SeriesRef]:
        """One page of series (QIDO-RS), of one modality when given."""
        ...

    def retrieve_series(self, ref: SeriesRef) -> list[Dataset]:
        """Every instance of a series with its pixel data (WADO-RS)."""
        ...

    def series_instances(self, ref: SeriesRef) -> list[InstanceRef]:
        """The instances of one series (QIDO-RS)."""
        ...


class DicomwebPacs:
    """:class:`Pacs` over DICOMweb, with basic or bearer auth and a timeout.

    Args:
        settings: the project's DICOMweb settings.
    """

    def __init__(self, settings: DicomwebSettings) -> None:
        import requests
        from dicomweb_client.api import DICOMwebClient

        session = requests.Session()
        session.max_redirects = 0
        session.trust_env = False  # no ~/.netrc credentials, no proxy from the environment
        auth = settings.auth
        headers: dict[str, str] = {}
        if auth.kind == "basic":
            session.auth = (auth.username or "", auth.password or "")
        elif auth.kind == "bearer":
            headers["Authorization"] = f"Bearer {auth.token or ''}"
        self.url = settings.url
        self._client = DICOMwebClient(
            settings.url, session=session, headers=headers, timeout=settings.timeout_s
        )
        # no waiting retries inside a request: the sync retries with its own backoff
        self._client.set_http_retry_params(retry=False)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import requests

        unavailable = f"{what}: the PACS could not be reached or failed"
        try:
            return fn(*args, **kwargs)
        except requests.HTTPError as err:
            code = err.response.status_code if err.response is not None else 0
            log.warning("%s at %s: HTTP %s", what, self.url, code)
            if code >= 500 or code in (0, 408, 429):
                raise PacsUnavailable(unavailable) from err
            raise PacsError(f"{what}: the PACS refused the request (HTTP {code})") from err
        except requests.TooManyRedirects as err:
            log.warning("%s at %s: redirected (not followed)", what, self.url)
            raise PacsError(f"{what}: the PACS answered with a redirect (not followed)") from err
        except requests.RequestException as err:
            log.warning("%s at %s: %s", what, self.url, err)
            raise PacsUnavailable(unavailable) from err

    def search(self, offset: int, limit: int, study_date_from: str | None) -> list[InstanceRef]:
        filters = {"StudyDate": f"{study_date_from}-"} if study_date_from else None
        found = self._call(
            "QIDO-RS search",
            self._client.search_for_instances,
            offset=offset,
            limit=limit,
            fields=["SOPClassUID", "Modality", "StudyInstanceUID", "SeriesInstanceUID"],
            search_filters=filters,
        )
        return [InstanceRef.from_json(item) for item in found or []]

    def retrieve(self, ref: InstanceRef) -> Dataset:
        ds: Dataset = self._call(
            f"WADO-RS retrieve of {ref.sop}",
            self._client.retrieve_instance,
            ref.study,
            ref.series,
            ref.sop,
            media_types=(("application/dicom", "*"),),
        )
        return ds

    def search_series(
        self, offset: int, limit: int, study_date_from: str | None, modality: str | None
    ) -> list[SeriesRef]:
        filters = {"StudyDate": f"{study_date_from}-"} if study_date_from else {}
        if modality:
            filters["Modality"] = modality
        found = self._call(
            "QIDO-RS series search",
            self._client.search_for_series,
            offset=offset,
            limit=limit,
            fields=["Modality", "StudyInstanceUID", "SeriesInstanceUID"],
            search_filters=filters or None,
        )
        return [SeriesRef.from_json(item) for item in found or []]

    def retrieve_series(self, ref: SeriesRef) -> list[Dataset]:
        found: list[Dataset] = self._call(
            f"WADO-RS retrieve of series {ref.series}",
            self._client.retrieve_series,
            ref.study,
            ref.series,
            media_types=(("application/dicom", "*"),),
        )
        return list(found)

    def series_instances(self, ref: SeriesRef) -> list[InstanceRef]:
        found = self._call(
            f"QIDO-RS instances of series {ref.series}",
            self._client.search_for_instances,
            study_instance_uid=ref.study,
            series_instance_uid=ref.series,
            fields=["SOPClassUID", "Modality", "StudyInstanceUID", "SeriesInstanceUID"],
        )
        return [InstanceRef.from_json(item) for item in found or []]

    def store(self, datasets: Sequence[Dataset]) -> None:
        if datasets:
            self._call("STOW-RS store", self._client.store_instances, datasets=list(datasets))


def iter_instances(
    pacs: Pacs, study_date_from: str | None = None, page: int = 100, max_pages: int = 1000
) -> Iterator[InstanceRef]:
    """Every instance the PACS lists, page by page."""
    for number in range(max_pages):
        found = pacs.search(number * page, page, study_date_from)
        yield from found
        if len(found) < page:
            return


def iter_series(
    pacs: Pacs,
    study_date_from: str | None = None,
    modality: str | None = None,
    page: int = 100,
    max_pages: int = 1000,
) -> Iterator[SeriesRef]:
    """Every series the PACS lists (of ``modality`` when given), page by page."""
    for number in range(max_pages):
        found = pacs.search_series(number * page, page, study_date_from, modality)
        yield from found
        if len(found) < page:
            return


def _is_image_class(sop_class: str) -> bool:
    from pydicom.uid import UID

    return "Image Storage" in (UID(sop_class).name or "") if sop_class else False


def classify(ref: InstanceRef, settings: DicomwebSettings) -> tuple[str, str]:
    """``(kind, state)`` in the sync ledger of a newly seen instance: a SEG to read as a
    correction, an image to analyse, or something else (skipped)."""
    from medloop.dicom.seg import SEG_SOP_CLASS_UIDS

    if ref.sop_class in SEG_SOP_CLASS_UIDS:
        return "seg_in", "pending"
    wanted = {m.upper() for m in settings.modalities}
    if wanted and ref.modality.upper() not in wanted:
        return "other", "skipped"
    if ref.sop_class and not _is_image_class(ref.sop_class):
        return "other", "skipped"
    return "source", "pending"
