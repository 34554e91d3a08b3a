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

import numpy as np
import pydicom

from medloop.domain.records import ImageRecord
from medloop.errors import InputError
from medloop.services.images import Images
from medloop.storage import repositories as repo
from medloop.storage.database import Database

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
    image: ImageRecord
    frame: int
    mask_key: str
    mask_sha256: str
    split: str
    group: str


def _items(db: Database, project_id: str) -> list[_Item]:
    with db.read() as s:
        pairs = repo.list_reference_pairs(s, project_id)
        corrections = repo.list_corrections(s, project_id)
        images = repo.get_images(s, project_id, {c.image_id for c in corrections})
    items = [
        _Item(f"ref-{p.id}", image, 0, p.mask_blob_key, p.mask_sha256, p.split, "reference")
        for p, image in pairs
    ]
    latest: dict[tuple[str, int], _Item] = {}
    for c in corrections:  # in seq order: the latest per image and frame wins
        latest[(c.image_id, c.frame)] = _Item(
            f"cor-{c.id}",
            images[c.image_id],
            c.frame,
            c.mask_blob_key,
            c.mask_sha256,
            "test" if c.held_out else "train",
            "correction",
        )
    return items + list(latest.values())


def _write_tiff(path: Path, pixels: np.ndarray) -> None:
    import tifffile

    rgb = pixels.shape[2] == 3
    tifffile.imwrite(
        path, pixels if rgb else pixels[:, :, 0], photometric="rgb" if rgb else "minisblack"
    )


def export_training_set(
    images: Images, project_id: str, out: Path, *, deidentify: bool, key: str | None = None
) -> ExportReport:
    """Write the project's training data to ``out`` (see the module doc).

    Args:
        images: the server's images (their database and blob store).
        project_id: the project.
        out: a new or empty folder.
        deidentify: apply the Basic Profile and set burned-in instances aside.
        key: the pseudonym key (default: a new random one, consistent within this export).

    Raises:
        InputError: ``out`` exists and is not empty, or the project has nothing to export.
    """
    from medloop.dicom.deid import Deidentifier, burned_in_reason
    from medloop.dicom.seg import encode_dataset

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} exists and is not an empty folder")
    items = _items(images.db, project_id)
    if not items:
        raise InputError("the project has no reference pairs or corrections to export")
    deid = Deidentifier(key or secrets.token_hex(32)) if deidentify else None
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    report = ExportReport(out)
    rows = []
    for item in items:
        blob = images.blobs.open_verified(item.image.blob_key, item.image.sha256)
        is_dicom = bool(item.image.sop_instance_uid)
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
            _write_tiff(out / name, images.pixels(item.image, item.frame).pixels)
        else:
            suffix = Path(item.image.filename).suffix.lower() or ".img"
            name = f"images/{item.key}{suffix}"
            (out / name).write_bytes(blob.read_bytes())
        mask = f"masks/{item.key}.png"
        (out / mask).write_bytes(images.blobs.read_bytes(item.mask_key, item.mask_sha256))
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
