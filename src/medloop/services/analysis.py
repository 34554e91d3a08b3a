"""Analyse images with a model version: label map, overlay, measurements, uncertainty."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medloop.domain.image import Image
from medloop.domain.measurements import ClassMeasurement, measure
from medloop.durable import atomic_write_bytes, sha256_file
from medloop.errors import ConfigError
from medloop.io import encode_label_map_png, read_image
from medloop.io.masks import encode_png, render_overlay
from medloop.io.volumes import encode_label_volume
from medloop.services.predictors import load_predictor
from medloop.storage.folder_registry import FolderArtifactStore

__all__ = ["AnalysisResult", "analyze_files"]


@dataclass(frozen=True)
class AnalysisResult:
    """One analysed image and where its outputs were written."""

    source: str
    image_sha256: str
    model_version: str
    shape: tuple[int, ...]
    spacing_mm: tuple[float, ...] | None
    uncertainty: float
    measurements: tuple[ClassMeasurement, ...]
    label_map_path: str
    overlay_path: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "image_sha256": self.image_sha256,
            "model_version": self.model_version,
            "shape": list(self.shape),
            "spacing_mm": list(self.spacing_mm) if self.spacing_mm else None,
            "uncertainty": self.uncertainty,
            "measurements": [m.to_dict() for m in self.measurements],
            "label_map": self.label_map_path,
            "overlay": self.overlay_path,
        }


def _unique_stem(path: Path, used: set[str]) -> str:
    stem, n = path.stem, 1
    while stem in used:
        n += 1
        stem = f"{path.stem}-{n}"
    used.add(stem)
    return stem


def analyze_files(
    paths: Sequence[Path],
    registry_root: Path,
    out_dir: Path,
    version: str | None = None,
    device: str | None = None,
) -> list[AnalysisResult]:
    """Analyse each image or volume with ``version`` (default: production); write to ``out_dir``.

    Every input is read (and so validated) before the model is loaded. For a 2D image
    ``<stem>.labels.png`` (label map) and ``<stem>.overlay.png`` are written; for a
    volume ``<stem>.labels.nii.gz`` on the input's own grid and ``<stem>.overlay.png``
    of its middle axial slice. Each gets ``<stem>.json`` (version, uncertainty,
    per-class size in pixels/voxels and mm²/mm³, components), and the run
    ``results.json``; every file is written atomically.
    """
    store = FolderArtifactStore(registry_root)
    record = store.get(version or store.require_production())
    manifest = record.manifest
    images = [read_image(p) for p in paths]
    predictor = load_predictor(
        manifest, record.files, lambda f: store.read_file(record.name, f), device, label=record.name
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    colors = [lab.color for lab in manifest.labels.labels]
    used: set[str] = set()
    results: list[AnalysisResult] = []
    for path, image in zip(paths, images, strict=True):
        if image.ndim != manifest.spatial_dims:
            raise ConfigError(
                f"{path}: a {image.ndim}D input for a {manifest.spatial_dims}D model ({record.name})"
            )
        pred = predictor.predict(image)
        stem = _unique_stem(path, used)
        overlay_path = out_dir / f"{stem}.overlay.png"
        if image.is_volume:
            labels_path = out_dir / f"{stem}.labels.nii.gz"
            atomic_write_bytes(labels_path, encode_label_volume(pred.label_map, image))
            k = image.shape[2] // 2
            mid = Image(pixels=image.pixels[:, :, k])
            overlay = render_overlay(mid, pred.label_map[:, :, k], colors)
        else:
            labels_path = out_dir / f"{stem}.labels.png"
            atomic_write_bytes(labels_path, encode_label_map_png(pred.label_map))
            overlay = render_overlay(image, pred.label_map, colors)
        atomic_write_bytes(overlay_path, encode_png(overlay))
        res = AnalysisResult(
            source=str(path),
            image_sha256=sha256_file(path),
            model_version=record.name,
            shape=image.shape,
            spacing_mm=image.spacing,
            uncertainty=pred.uncertainty,
            measurements=tuple(measure(pred.label_map, manifest.labels, image.element_size)),
            label_map_path=str(labels_path),
            overlay_path=str(overlay_path),
        )
        atomic_write_bytes(out_dir / f"{stem}.json", json.dumps(res.to_dict(), indent=2).encode())
        results.append(res)
    atomic_write_bytes(
        out_dir / "results.json", json.dumps([r.to_dict() for r in results], indent=2).encode()
    )
    return results
