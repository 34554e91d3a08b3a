"""Where ``medloop remote analyze --out`` puts an analysis's results."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medloop.client import AnalysisOut, MedloopClient

__all__ = ["save_results"]


def save_results(c: MedloopClient, project: str, a: AnalysisOut, out: Path, stem: str) -> None:
    """An analysis's label map, a view of it, and its JSON, under ``out``: for a 2D image
    ``<stem>_mask.png`` and ``_overlay.png``; for a volume ``<stem>_labels.nii.gz`` (on the
    uploaded grid) and ``_axial.png`` (its middle axial slice with the labels)."""
    out.mkdir(parents=True, exist_ok=True)
    mask = c.analysis_mask(project, a.id)
    if a.volume:
        stem = stem.removesuffix(".nii")  # x.nii.gz
        (out / f"{stem}_labels.nii.gz").write_bytes(mask)
        count = c.analysis_slice(project, a.id, "axial", 0, kind="mask").count
        middle = c.analysis_slice(project, a.id, "axial", count // 2)
        (out / f"{stem}_axial.png").write_bytes(middle.png)
    else:
        (out / f"{stem}_mask.png").write_bytes(mask)
        (out / f"{stem}_overlay.png").write_bytes(c.analysis_overlay(project, a.id))
    (out / f"{stem}_analysis.json").write_text(a.model_dump_json(indent=2) + "\n")
