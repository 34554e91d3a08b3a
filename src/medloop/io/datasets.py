"""Image/mask datasets on disk: a ``manifest.csv``, or ``images/`` + ``masks/`` folders.

With a manifest, each row names an image and its mask (paths relative to the
dataset root), optionally its ``split`` (train / val / test) and ``group``;
other columns are ignored. Without one, files in ``images/`` and ``masks/`` are
paired by file stem (``a.png`` with ``a.tif``). Either way every problem is a
:class:`~medloop.errors.DatasetError` naming the file, row or value at fault.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from medloop.errors import DatasetError
from medloop.io.images import read_image
from medloop.io.masks import read_mask

__all__ = [
    "IMAGE_EXTENSIONS",
    "MANIFEST",
    "SPLITS",
    "Dataset",
    "ManifestRow",
    "Sample",
    "check_pairs",
    "load_dataset",
    "parse_manifest",
    "stem_of",
]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".dcm"})
SPLITS = ("train", "val", "test")
MANIFEST = "manifest.csv"
_MAX_LISTED = 5


@dataclass(frozen=True)
class Sample:
    """One image and its mask.

    Attributes:
        key: the image path relative to the dataset root, posix style; unique.
        image: path of the image file.
        mask: path of the mask file.
        split: ``"train"``, ``"val"``, ``"test"`` or ``None`` (unassigned).
        group: free-form subgroup (e.g. staining, site), or ``None``.
    """

    key: str
    image: Path
    mask: Path
    split: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Dataset:
    """Samples under one root, sorted by key."""

    root: Path
    samples: tuple[Sample, ...]

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def select(self, *, split: str | None = None, group: str | None = None) -> Dataset:
        """The samples of one split and/or group (``None`` = any); may be empty."""
        return Dataset(
            self.root,
            tuple(
                s
                for s in self.samples
                if (split is None or s.split == split) and (group is None or s.group == group)
            ),
        )

    @property
    def groups(self) -> tuple[str, ...]:
        """Distinct groups, sorted (samples without a group not counted)."""
        return tuple(sorted({s.group for s in self.samples if s.group is not None}))

    @property
    def splits(self) -> tuple[str, ...]:
        """Distinct splits in train, val, test order."""
        present = {s.split for s in self.samples}
        return tuple(name for name in SPLITS if name in present)


def _names(paths: list[str]) -> str:
    shown = ", ".join(paths[:_MAX_LISTED])
    return shown + (f", ... ({len(paths)} in all)" if len(paths) > _MAX_LISTED else "")


def _key(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:  # an absolute manifest path outside the root
        return path.as_posix()


@dataclass(frozen=True)
class ManifestRow:
    """One row of a ``manifest.csv``: paths relative to the dataset root, as written.

    ``problem`` says why the row cannot be used (an empty path, an unknown split).
    """

    line: int
    image: str
    mask: str
    split: str | None
    group: str | None
    problem: str | None = None


def parse_manifest(lines: Iterable[str], where: str) -> list[ManifestRow]:
    """The rows of a manifest read from ``lines`` (a file handle or a list of lines).

    Raises:
        DatasetError: no header row, or no ``image`` / ``mask`` column (``where`` names it).
    """
    try:
        reader = csv.DictReader(lines)
        if not reader.fieldnames:
            raise DatasetError(f"{where}: empty manifest (no header row)")
        reader.fieldnames = [name.strip() for name in reader.fieldnames]
        missing = [c for c in ("image", "mask") if c not in reader.fieldnames]
        if missing:
            raise DatasetError(
                f"{where}: missing column(s) {', '.join(missing)}; needs image, mask "
                f"(optional split, group); found {', '.join(reader.fieldnames)}"
            )
        return [_row(reader.line_num, row) for row in reader]
    except csv.Error as err:
        raise DatasetError(f"{where}: cannot read manifest ({err})") from err


def _row(line: int, row: dict[str, str | None]) -> ManifestRow:
    image, mask = ((row.get(c) or "").strip() for c in ("image", "mask"))
    split = (row.get("split") or "").strip() or None
    group = (row.get("group") or "").strip() or None
    problem = None
    if not image or not mask:
        problem = f"empty {'image' if not image else 'mask'} path"
    elif split is not None and split not in SPLITS:
        problem = f"split {split!r} is not one of {', '.join(SPLITS)}"
    return ManifestRow(line, image, mask, split, group, problem)


def _read_manifest(root: Path, manifest: Path) -> list[Sample]:
    try:
        with open(manifest, encoding="utf-8-sig", newline="") as handle:
            rows = parse_manifest(handle, str(manifest))
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"{manifest}: cannot read manifest ({err})") from err
    return [_manifest_sample(root, manifest, row) for row in rows]


def _manifest_sample(root: Path, manifest: Path, row: ManifestRow) -> Sample:
    where = f"{manifest}, line {row.line}"
    if row.problem is not None:
        raise DatasetError(f"{where}: {row.problem}")
    paths: dict[str, Path] = {}
    for column, value in (("image", row.image), ("mask", row.mask)):
        path = root / value
        if not path.is_file():
            raise DatasetError(f"{where}: {column} file {value!r} not found under {root}")
        paths[column] = path
    return Sample(_key(root, paths["image"]), paths["image"], paths["mask"], row.split, row.group)


def stem_of(name: str) -> str | None:
    """The pairing stem of a file name in ``images/`` or ``masks/``, or ``None`` when the
    name is not an image's (hidden files, other extensions)."""
    path = PurePosixPath(name)
    if path.name.startswith("."):
        return None
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return path.stem
    if suffix == "" or suffix[1:].isdigit():  # no extension, or a DICOM UID name
        return path.name
    return None


def _stem(path: Path) -> str | None:
    """The pairing stem of a candidate file, or ``None`` when it is not one."""
    return stem_of(path.name) if path.is_file() else None


def _by_stem(folder: Path) -> dict[str, Path]:
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        stem = _stem(path)
        if stem is not None:
            found.setdefault(stem, []).append(path)
    clashes = [" / ".join(p.name for p in ps) for ps in found.values() if len(ps) > 1]
    if clashes:
        raise DatasetError(f"{folder}: several files share a name stem: {_names(clashes)}")
    return {stem: ps[0] for stem, ps in found.items()}


def _read_folders(root: Path) -> list[Sample]:
    images_dir, masks_dir = root / "images", root / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise DatasetError(
            f"{root}: expected {MANIFEST} or the folders images/ and masks/ (paired by file name)"
        )
    try:
        images, masks = _by_stem(images_dir), _by_stem(masks_dir)
    except OSError as err:
        raise DatasetError(f"{root}: cannot list dataset folders ({err})") from err
    lonely_images = sorted(images[s].name for s in images.keys() - masks.keys())
    lonely_masks = sorted(masks[s].name for s in masks.keys() - images.keys())
    problems = []
    if lonely_images:
        problems.append(f"{len(lonely_images)} image(s) without a mask: {_names(lonely_images)}")
    if lonely_masks:
        problems.append(f"{len(lonely_masks)} mask(s) without an image: {_names(lonely_masks)}")
    if problems:
        raise DatasetError(f"{root}: unpaired files: " + "; ".join(problems))
    return [Sample(_key(root, images[s]), images[s], masks[s]) for s in images]


def load_dataset(root: str | Path) -> Dataset:
    """Find the image/mask pairs of a dataset folder.

    Args:
        root: the dataset folder, holding ``manifest.csv`` or ``images/`` + ``masks/``.

    Returns:
        The dataset, samples sorted by key.

    Raises:
        DatasetError: no such folder, bad manifest (missing column, file or
            split value), unpaired or clashing files, or no pairs at all.
    """
    base = Path(root)
    if not base.is_dir():
        raise DatasetError(f"{base}: dataset folder not found")
    manifest = base / MANIFEST
    samples = _read_manifest(base, manifest) if manifest.is_file() else _read_folders(base)
    if not samples:
        raise DatasetError(f"no image/mask pairs found in {base}")
    duplicates = sorted(k for k, n in Counter(s.key for s in samples).items() if n > 1)
    if duplicates:
        raise DatasetError(f"{base}: images listed more than once: {_names(duplicates)}")
    return Dataset(base, tuple(sorted(samples, key=lambda s: s.key)))


def check_pairs(dataset: Dataset, *, num_foreground: int) -> None:
    """Read every pair and check each mask against its image and the labels.

    Args:
        dataset: the pairs to check.
        num_foreground: K, the project's number of foreground labels.

    Raises:
        ImageReadError: the first unreadable image (message names the file).
        MaskError: the first mask that does not fit (message names the file).
    """
    for sample in dataset.samples:
        image = read_image(sample.image)
        read_mask(sample.mask, num_foreground=num_foreground, expected_shape=image.shape)
