"""Evaluate a model version on any dataset split (``medloop evaluate``)."""

from __future__ import annotations

from pathlib import Path

from medloop.domain.learning import EvalSummary
from medloop.errors import DatasetError
from medloop.io import load_dataset
from medloop.registry import ModelRegistry
from medloop.services.evaluation import EvalCase, evaluate_cases
from medloop.services.items import PairLoader

__all__ = ["evaluate_dataset"]


def evaluate_dataset(
    registry_root: Path,
    data: Path,
    split: str | None = None,
    version: str | None = None,
    device: str | None = None,
) -> tuple[str, EvalSummary]:
    """Score ``version`` (default production) on ``split`` of ``data`` (default: test, else all)."""
    from medloop.ml.inference import Predictor

    registry = ModelRegistry(registry_root)
    record = registry.resolve(version)
    manifest = registry.manifest(record.name)
    ds = load_dataset(data)
    if split is None and "test" in ds.splits:
        split = "test"
    if split is not None:
        ds = ds.select(split=split)
    if not len(ds):
        raise DatasetError(f"{data}: no pairs in split {split!r}")
    predictor = Predictor.load(manifest, record.weights_path, device)
    loader = PairLoader(manifest.labels.num_foreground)
    cases = [EvalCase(s.key, s.image, s.mask, s.group) for s in ds.samples]
    summary, _ = evaluate_cases(predictor, cases, loader)
    return record.name, summary
