"""De-identification: the DICOM PS3.15 Annex E Basic Application Level Confidentiality
Profile, applied with ``dicom-anonymizer`` (its table E.1-1 of the 2026c standard).

On top of the library's table, :class:`Deidentifier`:

- replaces every instance UID (nested sequences and file meta included) with a keyed
  pseudonym ``2.25.<HMAC>``: the same UID always maps to the same pseudonym under
  the same key, so a study stays a study and a SEG keeps referencing its image
  (the profile's ``U``, and ``U*`` for reference sequences);
- replaces Patient ID and Patient's Name with one keyed pseudonym (``MLP-...``);
- sets Patient Identity Removed ``YES``, De-identification Method and its code
  sequence (DCM 113100), and Longitudinal Temporal Information Modified ``REMOVED``;
- returns the ``(kind, original, pseudonym)`` entries it used: the pseudonym map,
  which the caller keeps apart from the data.

Pixel data are not touched: :func:`burned_in_reason` says which instances to set
aside (Burned In Annotation other than ``NO``).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

__all__ = [
    "DEIDENTIFICATION_METHOD",
    "PROFILE_CODE",
    "Deidentifier",
    "burned_in_reason",
    "identifiers",
    "reidentify",
]

DEIDENTIFICATION_METHOD = "PS3.15 E.1 Basic Profile (dicom-anonymizer, medloop)"
"""De-identification Method (LO, at most 64 characters)."""

PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
"""CID 7050 code of the Basic Profile."""

_STANDARD = "dicomfields_2026c"
_KEEP_UIDS = frozenset({"TransferSyntaxUID", "CodingSchemeUID", "ContextUID", "MappingResourceUID"})
_PATIENT_ID = (0x0010, 0x0020)
_PATIENT_NAME = (0x0010, 0x0010)
_LIBRARY_LOCK = threading.Lock()  # the library keeps a module-global UID dictionary

Entry = tuple[str, str, str]
"""``(kind, original, pseudonym)``; kind is ``uid``, ``patient_id`` or ``patient_name``."""


def _keep(dataset: Dataset, tag: Any) -> None:
    """The library's action signature: leave the element as it is (already replaced)."""


def _replace_with(value: str) -> Callable[[Dataset, Any], None]:
    def action(dataset: Dataset, tag: Any) -> None:
        element = dataset.get(tag)
        if element is not None:
            element.value = value

    return action


def _profile_rules() -> dict[tuple[int, ...], Callable[[Dataset, Any], None]]:
    """The standard's actions for UIDs become ``keep``: :meth:`Deidentifier.apply`
    replaced them consistently already."""
    from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector

    tags = dicom_anonymization_database_selector(_STANDARD)
    return {tuple(tag): _keep for tag in (*tags["U_TAGS"], *tags["X_Z_U_STAR_TAGS"])}


class Deidentifier:
    """Applies the Basic Profile with keyed, consistent pseudonyms (see the module doc).

    Args:
        key: the secret that makes pseudonyms consistent; keep it as secret as the map.
    """

    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("a de-identification key is needed")
        self._key = key.encode("utf-8")

    def _digest(self, kind: str, value: str) -> bytes:
        return hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """The pseudonym of a UID: ``2.25.`` and a 128-bit keyed hash (at most 44 characters)."""
        return "2.25." + str(int.from_bytes(self._digest("uid", original)[:16], "big"))

    def patient(self, original: str) -> str:
        """The pseudonym of a patient (from the Patient ID, else the name)."""
        return "MLP-" + self._digest("patient", original)[:6].hex().upper()

    def _remap_uids(self, ds: Dataset, entries: list[Entry]) -> None:
        seen: set[int] = set()  # elements shared between sequences are remapped once

        def visit(_: Dataset, elem: DataElement) -> None:
            if elem.VR != "UI" or not elem.value or id(elem) in seen:
                return
            seen.add(id(elem))
            keyword = elem.keyword or ""
            if keyword.endswith("ClassUID") or keyword in _KEEP_UIDS:
                return
            many = isinstance(elem.value, MultiValue | list)
            new = []
            for value in elem.value if many else [elem.value]:
                original = str(value)
                pseudonym = self.uid(original)
                entries.append(("uid", original, pseudonym))
                new.append(pseudonym)
            elem.value = new if many else new[0]

        ds.walk(visit)
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            meta.walk(visit)

    def apply(self, ds: Dataset) -> list[Entry]:
        """De-identify ``ds`` in place.

        Returns:
            The pseudonym map entries used, each once.
        """
        from dicomanonymizer import simpledicomanonymizer as lib

        entries: list[Entry] = []
        self._remap_uids(ds, entries)
        patient_id = str(ds.get("PatientID", "") or "").strip()
        patient_name = str(ds.get("PatientName", "") or "").strip()
        pseudonym = self.patient(patient_id or patient_name or "unknown")
        rules = _profile_rules()
        rules[_PATIENT_ID] = _replace_with(pseudonym)
        rules[_PATIENT_NAME] = _replace_with(pseudonym)
        with _LIBRARY_LOCK:
            try:
                lib.anonymize_dataset(
                    ds,
                    extra_anonymization_rules=rules,
                    delete_private_tags=True,
                    base_rules_gen=lambda: lib.initialize_actions(_STANDARD),
                )
            finally:
                lib.dictionary.clear()
        if patient_id:
            entries.append(("patient_id", patient_id, pseudonym))
        if patient_name:
            entries.append(("patient_name", patient_name, pseudonym))
        ds.PatientID = pseudonym
        ds.PatientName = pseudonym
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = DEIDENTIFICATION_METHOD
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = PROFILE_CODE
        ds.DeidentificationMethodCodeSequence = [code]
        ds.LongitudinalTemporalInformationModified = "REMOVED"
        return list(dict.fromkeys(entries))


def burned_in_reason(ds: Dataset) -> str | None:
    """Why an instance must be set aside (identifying text may be burned into its pixels),
    or ``None`` when Burned In Annotation is ``NO``."""
    value = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if value == "NO":
        return None
    return f"BurnedInAnnotation is {value}" if value else "BurnedInAnnotation is missing"


def identifiers(ds: Dataset) -> list[str]:
    """Every UID value (nested too), Patient ID and Patient's Name of a dataset."""
    found: list[str] = []

    def visit(_: Dataset, elem: DataElement) -> None:
        if elem.VR == "UI" and elem.value:
            many = isinstance(elem.value, MultiValue | list)
            found.extend(str(v) for v in (elem.value if many else [elem.value]))

    ds.walk(visit)
    found.extend(str(ds.get(k, "") or "") for k in ("PatientID", "PatientName"))
    return [v for v in dict.fromkeys(found) if v]


def reidentify(ds: Dataset, entries: Iterable[Entry] | Mapping[tuple[str, str], str]) -> Dataset:
    """Put original identifiers back where a dataset holds pseudonyms (in place).

    Used for a SEG of a de-identified image that goes back to the PACS the image came
    from: its references and patient must be the PACS's, not the pseudonyms.

    Args:
        ds: the dataset.
        entries: the pseudonym map, as ``(kind, original, pseudonym)`` entries or as
            ``{(kind, pseudonym): original}``.

    Returns:
        ``ds``.
    """
    if isinstance(entries, Mapping):
        reverse = dict(entries)
    else:
        reverse = {(kind, pseudonym): original for kind, original, pseudonym in entries}

    def visit(_: Dataset, elem: DataElement) -> None:
        if elem.VR != "UI" or not elem.value:
            return
        if isinstance(elem.value, MultiValue | list):
            elem.value = [reverse.get(("uid", str(v)), str(v)) for v in elem.value]
        else:
            elem.value = reverse.get(("uid", str(elem.value)), str(elem.value))

    ds.walk(visit)
    for kind, keyword in (("patient_id", "PatientID"), ("patient_name", "PatientName")):
        value = str(ds.get(keyword, "") or "")
        if (kind, value) in reverse:
            setattr(ds, keyword, reverse[(kind, value)])
    return ds
