"""The CLI's :class:`~medloop.domain.ports.TrainingData`: a dataset folder plus a correction folder.

Reference pairs are the dataset's (``manifest.csv`` or ``images/`` + ``masks/``),
optionally one group and optionally pinned to the keys a project was trained on;
corrections are those of a :class:`~medloop.storage.folder_corrections.CorrectionFolder`.
Files are hashed once per (path, size, mtime) and read only when the engine asks.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from medloop.domain.ports import CorrectionSample, LoadedPair, PairSample
from medloop.durable import sha256_bytes, sha256_file
from medloop.errors import DatasetError, TrainingError
from medloop.io import Sample, decode_image, decode_mask, load_dataset
from medloop.storage.folder_corrections import CorrectionFolder

__all__ = ["FolderTrainingData"]


class FolderTrainingData:
    """Reference pairs from a dataset folder, corrections from a correction folder.

    Args:
        root: the dataset folder.
        num_foreground: K, the project's number of foreground labels (masks are checked).
        group: only this manifest group.
        keys: only these pairs (the ones a project was trained on); any missing
            one is a :class:`TrainingError` (the dataset changed under the project).
        corrections: where corrections are kept (``None``: there are none).
    """

    def __init__(
        self,
        root: Path,
        num_foreground: int,
        *,
        group: str | None = None,
        keys: Collection[str] | None = None,
        corrections: CorrectionFolder | None = None,
    ) -> None:
        self.root = Path(root)
        self.num_foreground = num_foreground
        self.group = group
        self.keys = None if keys is None else frozenset(keys)
        self.correction_folder = corrections
        self._paths: dict[str, Sample] = {}
        self._hashes: dict[tuple[Path, int, int], str] = {}
        self._reference: list[PairSample] | None = None

    def _hash(self, path: Path) -> str:
        st = path.stat()
        ident = (path, st.st_size, st.st_mtime_ns)
        sha = self._hashes.get(ident)
        if sha is None:
            sha = self._hashes[ident] = sha256_file(path)
        return sha

    def samples(self) -> list[Sample]:
        """The dataset's pairs in scope (group, pinned keys)."""
        ds = load_dataset(self.root)
        if self.group is not None:
            ds = ds.select(group=self.group)
            if not len(ds):
                raise DatasetError(f"{self.root}: no pairs in group {self.group!r}")
        chosen = list(ds.samples)
        if self.keys is not None:
            chosen = [s for s in chosen if s.key in self.keys]
            missing = sorted(self.keys - {s.key for s in chosen})
            if missing:
                raise TrainingError(
                    f"reference data changed: {len(missing)} pairs are gone from "
                    f"{self.root} (first: {missing[0]})"
                )
        return chosen

    def reference(self) -> list[PairSample]:
        if self._reference is None:
            samples = self.samples()
            self._paths = {s.key: s for s in samples}
            self._reference = [
                PairSample(s.key, self._hash(s.image), self._hash(s.mask), s.split, s.group)
                for s in samples
            ]
        return self._reference

    def corrections(self) -> list[CorrectionSample]:
        if self.correction_folder is None:
            return []
        return [
            CorrectionSample(
                key=r.id,
                image_sha256=r.image_sha256,
                mask_sha256=r.mask_sha256,
                id=r.id,
                seq=r.seq,
                held_out=r.held_out,
                author=r.author,
                corrects_version=r.corrects_version,
            )
            for r in self.correction_folder.latest_per_image()
        ]

    def _bytes(self, sample: PairSample) -> tuple[bytes, bytes, str, str]:
        if isinstance(sample, CorrectionSample):
            if self.correction_folder is None:
                raise TrainingError(f"correction {sample.id} is not in this project")
            folder = self.correction_folder
            return (
                folder.read(sample.image_sha256),
                folder.read(sample.mask_sha256),
                f"correction {sample.id} image",
                f"correction {sample.id} mask",
            )
        if sample.key not in self._paths:
            self.reference()
        src = self._paths.get(sample.key)
        if src is None:
            raise TrainingError(f"reference pair {sample.key!r} is gone from {self.root}")
        return (
            _read(src.image, sample.key),
            _read(src.mask, sample.key),
            str(src.image),
            str(src.mask),
        )

    def load(self, sample: PairSample) -> LoadedPair:
        image_bytes, mask_bytes, image_name, mask_name = self._bytes(sample)
        if (sha256_bytes(image_bytes), sha256_bytes(mask_bytes)) != (
            sample.image_sha256,
            sample.mask_sha256,
        ):
            raise TrainingError(f"{image_name} or its mask changed since it was listed")
        image = decode_image(image_bytes, name=image_name)
        mask = decode_mask(
            mask_bytes,
            name=mask_name,
            num_foreground=self.num_foreground,
            expected_shape=image.shape,
            image=image,
        )
        return LoadedPair(sample, image, mask)


def _read(path: Path, key: str) -> bytes:
    """A listed file's bytes; a file gone or unreadable since it was listed is a
    :class:`TrainingError` naming it (a one-line CLI error, not a traceback)."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise TrainingError(
            f"reference pair {key!r}: cannot read {path} ({err.strerror or err}); "
            "the dataset changed while it was in use"
        ) from err
