"""Export a server project's training data as a dataset folder, optionally de-identified.

The folder is what ``medloop train`` reads: ``images/``, ``masks/`` and a
``manifest.csv`` (``image, mask, split, group``). It holds the project's reference
pairs (their split kept) and the latest correction of every analysed image or frame
(``train``; held-out corrections go to ``test``, which training never reads).

With ``deidentify``:

- a DICOM image is written as DICOM with the PS3.15 Basic Profile applied
  (:class:`~medloop.dicom.deid.Deidentifier`; one key for the whole export, so UIDs
  are remapped consistently across files);
- an instance whose Burned In Annotation is not ``NO`` is set aside: listed by
  medloop id and reason in ``set_aside.csv``, never written;
- a frame of a multi-frame image, and any non-DICOM image, is written as a TIFF of
  its pixels only (no header, no metadata);
- file names are medloop ids, never the uploaded names;
- the pseudonym map is returned to the caller, never written into the folder.
"""

from __future__ import annotations

import csv
import secrets
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pydicom

from medloop.errors import InputError
from medloop.storage import repositories as repo
from medloop.storage.models import Analysis
from medloop.storage.models import Image as ImageRow

if TYPE_CHECKING:
    from medloop.runtime import Runtime

__all__ = ["ExportReport", "export_training_set"]


@dataclass
class ExportReport:
    """What an export wrote."""

    out: Path
    written: int = 0
    set_aside: list[tuple[str, str]] = field(default_factory=list)
    """``(item, reason)`` of every instance left out."""
    pseudonyms: list[tuple[str, str, str]] = field(default_factory=list)
    """``(kind, original, pseudonym)``: keep apart from the export."""


@dataclass(frozen=True)
class _Item:
    key: str
    image: ImageRow
    frame: int
    mask_key: str
    mask_sha256: str
    split: str
    group: str


def _items(rt: Runtime, project_id: str) -> list[_Item]:
    items: list[_Item] = []
    with rt.session() as s:
        for pair in repo.list_reference_pairs(s, project_id):
            image = repo.get_image(s, pair.image_id, project_id)
            items.append(
                _Item(
                    f"ref-{pair.id}",
                    image,
                    0,
                    pair.mask_blob_key,
                    pair.mask_sha256,
                    pair.split,
                    "reference",
                )
            )
        latest: dict[tuple[str, int], _Item] = {}
        for c in repo.list_corrections(s, project_id):
            analysis: Analysis = repo.get_analysis(s, c.analysis_id, project_id)
            image = repo.get_image(s, c.image_id, project_id)
            latest[(image.id, analysis.frame)] = _Item(
                f"cor-{c.id}",
                image,
                analysis.frame,
                c.mask_blob_key,
                c.mask_sha256,
                "test" if c.held_out else "train",
                "correction",
            )
        items.extend(latest.values())
    return items


def _write_tiff(path: Path, pixels: np.ndarray) -> None:
    import tifffile

    rgb = pixels.shape[2] == 3
    tifffile.imwrite(
        path, pixels if rgb else pixels[:, :, 0], photometric="rgb" if rgb else "minisblack"
    )


def export_training_set(
    rt: Runtime, project_id: str, out: Path, *, deidentify: bool, key: str | None = None
) -> ExportReport:
    """Write the project's training data to ``out`` (see the module doc).

    Args:
        rt: the server runtime.
        project_id: the project.
        out: a new or empty folder.
        deidentify: apply the Basic Profile and set burned-in instances aside.
        key: the pseudonym key (default: a new random one, consistent within this export).

    Raises:
        InputError: ``out`` exists and is not empty, or the project has nothing to export.
    """
    from medloop.dicom.deid import Deidentifier, burned_in_reason
    from medloop.dicom.seg import encode_dataset
    from medloop.services.server_data import load_image

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} exists and is not an empty folder")
    items = _items(rt, project_id)
    if not items:
        raise InputError("the project has no reference pairs or corrections to export")
    deid = Deidentifier(key or secrets.token_hex(32)) if deidentify else None
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    report = ExportReport(out)
    rows = []
    for item in items:
        blob = rt.blobs.open_verified(item.image.blob_key, item.image.sha256)
        is_dicom = bool((item.image.meta or {}).get("SOPInstanceUID"))
        if is_dicom and deid is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                header = pydicom.dcmread(blob, stop_before_pixels=True)
            reason = burned_in_reason(header)
            if reason is not None:
                report.set_aside.append((item.key, reason))
                continue
        if is_dicom and item.image.frames == 1:
            name = f"images/{item.key}.dcm"
            if deid is None:
                (out / name).write_bytes(blob.read_bytes())
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds = pydicom.dcmread(blob)
                report.pseudonyms.extend(deid.apply(ds))
                (out / name).write_bytes(encode_dataset(ds))
        elif is_dicom or deid is not None:
            name = f"images/{item.key}.tiff"
            _write_tiff(out / name, load_image(rt, item.image, item.frame).pixels)
        else:
            suffix = Path(item.image.filename).suffix.lower() or ".img"
            name = f"images/{item.key}{suffix}"
            (out / name).write_bytes(blob.read_bytes())
        mask = f"masks/{item.key}.png"
        (out / mask).write_bytes(rt.blobs.read_bytes(item.mask_key, item.mask_sha256))
        rows.append({"image": name, "mask": mask, "split": item.split, "group": item.group})
        report.written += 1
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image", "mask", "split", "group"])
        writer.writeheader()
        writer.writerows(rows)
    if report.set_aside:
        with open(out / "set_aside.csv", "w", newline="", encoding="utf-8") as fh:
            aside = csv.writer(fh)
            aside.writerow(["item", "reason"])
            aside.writerows(report.set_aside)
    report.pseudonyms = list(dict.fromkeys(report.pseudonyms))
    return report
