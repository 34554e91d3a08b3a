"""The command line's project: a registry folder, its project file and its reference dataset.

Every ``medloop`` engine command (train, finetune, evaluate, analyze, models) opens
a :class:`Workspace` and hands its folder adapters to the same
:class:`~medloop.services.learning.Learner` the server uses.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from medloop.domain.learning import EvalSummary
from medloop.domain.settings import ProjectSettings, TrainingOptions
from medloop.errors import ConfigError, DatasetError
from medloop.io import load_dataset
from medloop.services.evaluation import evaluate_samples
from medloop.services.folder_data import FolderTrainingData
from medloop.services.learning import Learner, TrainOutcome
from medloop.services.pairs import PairCache
from medloop.services.splits import split_reference
from medloop.storage.folder_corrections import CorrectionFolder, FolderCorrection
from medloop.storage.folder_project import (
    FolderProject,
    load_folder_project,
    save_folder_project,
)
from medloop.storage.folder_registry import FolderArtifactStore

if TYPE_CHECKING:
    from medloop.domain.plan import Plan
    from medloop.domain.ports import VersionRecord
    from medloop.ml.inference import Predictor
    from medloop.ml.trainer import TrainCallbacks

__all__ = [
    "Workspace",
    "add_corrections",
    "evaluate_dataset",
    "stored_version",
    "train_workspace",
    "version_predictor",
]


@dataclass
class Workspace:
    """A CLI project opened from its registry folder."""

    registry: Path
    project: FolderProject
    store: FolderArtifactStore
    corrections: CorrectionFolder
    data: FolderTrainingData

    @classmethod
    def open(cls, registry: Path) -> Workspace:
        """Open ``registry`` (``ConfigError`` if nothing was trained there yet)."""
        project = load_folder_project(registry)
        corrections = CorrectionFolder(registry / "corrections")
        data = FolderTrainingData(
            Path(project.reference_root),
            project.settings.label_set.num_foreground,
            group=project.group,
            keys=set(project.train_keys) | set(project.val_keys),
            corrections=corrections,
        )
        return cls(registry, project, FolderArtifactStore(registry), corrections, data)

    def learner(
        self,
        settings: ProjectSettings | None = None,
        device: str | None = None,
        cache: PairCache | None = None,
    ) -> Learner:
        """The engine over this workspace (``settings`` default to the project's)."""
        return Learner(settings or self.project.settings, self.data, self.store, device, cache)


def train_workspace(
    data: Path,
    registry: Path,
    settings: ProjectSettings,
    *,
    options: TrainingOptions | None = None,
    group: str | None = None,
    train_keys: set[str] | None = None,
    device: str | None = None,
    callbacks: TrainCallbacks | None = None,
    max_val: int | None = None,
    cache: PairCache | None = None,
    on_plan: Callable[[Plan], None] | None = None,
) -> TrainOutcome:
    """Train a version on ``data`` into ``registry``, pinning the project to that data.

    The first training writes the project file with ``settings``; later ones keep
    the project's settings and must use the same labels and locked validation set.
    ``train_keys`` restricts the ``train`` pairs to those keys (validation is untouched).

    Raises:
        ConfigError: the registry holds a project with other labels or other
            validation pairs (use a new registry for a different dataset).
    """
    source = FolderTrainingData(data, settings.label_set.num_foreground, group=group)
    samples = source.reference()
    if train_keys is not None:
        samples = [s for s in samples if s.split != "train" or s.key in train_keys]
    split = split_reference(samples)
    cache = (cache or PairCache(source)).rebind(source)
    for sample in split.train + split.select + split.locked:
        cache.pair(sample)  # every pair read and checked before anything is written
    pinned = FolderProject(
        settings=settings,
        reference_root=str(Path(data).resolve()),
        train_keys=tuple(s.key for s in split.train),
        val_keys=tuple(s.key for s in sorted(split.select + split.locked, key=lambda s: s.key)),
        group=group,
    )
    try:
        existing: FolderProject | None = load_folder_project(registry)
    except ConfigError:
        existing = None
    if existing is not None:
        if existing.settings.labels != settings.labels:
            raise ConfigError(f"{registry} already holds a project with other labels")
        if existing.val_keys != pinned.val_keys:
            raise ConfigError(
                f"{registry} already holds a project with another locked validation set; "
                "use a new --registry for a different dataset"
            )
        settings = existing.settings
    fresh = not registry.exists()
    save_folder_project(registry, replace(pinned, settings=settings))
    try:
        workspace = Workspace.open(registry)
        learner = workspace.learner(settings, device, cache)
        return learner.train(
            options or settings.training, callbacks, max_val=max_val, on_plan=on_plan
        )
    except BaseException:
        if fresh:  # a failed first training leaves no registry behind
            shutil.rmtree(registry, ignore_errors=True)
        raise


def add_corrections(
    registry: Path, data: Path, *, author: str = "cli", corrects_version: str | None = None
) -> list[FolderCorrection]:
    """Validate every pair of dataset ``data``, then store each as a correction."""
    workspace = Workspace.open(registry)
    source = FolderTrainingData(data, workspace.project.settings.label_set.num_foreground)
    pairs = [source.load(s) for s in source.reference()]  # validate everything first
    share = workspace.project.settings.learning.held_out_share
    samples = {s.key: s for s in source.samples()}
    return [
        workspace.corrections.add(
            samples[p.sample.key].image.read_bytes(),
            samples[p.sample.key].mask.read_bytes(),
            key=p.sample.key,
            held_out_share=share,
            author=author,
            corrects_version=corrects_version,
        )
        for p in pairs
    ]


def stored_version(
    registry: Path, version: str | None = None
) -> tuple[FolderArtifactStore, VersionRecord]:
    """``registry``'s store and the record of ``version`` (default: production); no
    weights are read, so callers check the version against their data first.

    Raises:
        ConfigError: no such registry.
        RegistryError: no such version, or none in production.
    """
    if not registry.is_dir():
        raise ConfigError(f"registry {registry} does not exist")
    store = FolderArtifactStore(registry)
    return store, store.get(version or store.require_production())


def version_predictor(
    store: FolderArtifactStore, record: VersionRecord, device: str | None = None
) -> Predictor:
    """The torch predictor of a version found by :func:`stored_version`."""
    from medloop.ml.inference import Predictor

    return Predictor.from_bytes(record.manifest, store.read_file(record.name), device)


def evaluate_dataset(
    registry: Path,
    data: Path,
    split: str | None = None,
    version: str | None = None,
    device: str | None = None,
) -> tuple[str, EvalSummary]:
    """Score ``version`` (default production) on ``split`` of ``data`` (default: test, else all).

    The version and the dataset are checked before the weights are loaded.
    """
    store, record = stored_version(registry, version)
    if split is None and "test" in load_dataset(data).splits:
        split = "test"
    source = FolderTrainingData(data, record.manifest.labels.num_foreground)
    samples = [s for s in source.reference() if split is None or s.split == split]
    if not samples:
        raise DatasetError(f"{data}: no pairs in split {split!r}")
    summary, _ = evaluate_samples(
        version_predictor(store, record, device), samples, PairCache(source), hd95=True
    )
    return record.name, summary
