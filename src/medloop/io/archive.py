"""A dataset sent as a zip: ``images/`` + ``masks/`` paired by file stem, or a ``manifest.csv``.

The same two forms :func:`~medloop.io.datasets.load_dataset` reads from a folder, with
the folder optionally wrapped in one top folder (what zipping a folder gives). Nothing
is extracted to disk: members are read into memory one at a time, each at most
``max_member_bytes``. Problems of the whole archive (not a zip, no pairs, a manifest
without its columns) raise :class:`~medloop.errors.DatasetError`; problems of one
pair (a missing mask, an unknown split, an encrypted member) are kept with the pair,
so the good pairs can be imported and the bad ones listed with their reasons::

    with DatasetArchive.open(path, max_member_bytes=64 << 20) as archive:
        for pair in archive.pairs:
            if pair.problem is None:
                image, mask = archive.read(pair.image), archive.read(pair.mask)
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from medloop.errors import DatasetError
from medloop.io.datasets import MANIFEST, ManifestRow, parse_manifest, stem_of

__all__ = ["ArchivePair", "DatasetArchive", "MemberError"]

MAX_MEMBERS = 200_000
_IGNORED = ("__MACOSX/",)


class MemberError(Exception):
    """One member of the archive cannot be read (the message says why)."""


@dataclass(frozen=True)
class ArchivePair:
    """An image and its mask in the archive.

    Attributes:
        key: the image's path relative to the dataset root (unique).
        image, mask: member names (``None`` when missing).
        split, group: from the manifest, when it gives them.
        problem: why the pair cannot be imported, or ``None``.
    """

    key: str
    image: str | None
    mask: str | None
    split: str | None = None
    group: str | None = None
    problem: str | None = None


class DatasetArchive:
    """A zip holding one dataset; see the module doc. Use :meth:`open`."""

    def __init__(self, zf: zipfile.ZipFile, max_member_bytes: int) -> None:
        self._zip, self.max_member_bytes = zf, max_member_bytes
        self._members = {
            info.filename: info
            for info in zf.infolist()
            if not info.is_dir() and not info.filename.startswith(_IGNORED)
        }
        self.root = self._root()
        self.pairs = self._pairs()

    @classmethod
    def open(cls, path: Path, max_member_bytes: int) -> DatasetArchive:
        """Open and index the archive at ``path``.

        Raises:
            DatasetError: not a zip, too many members, no dataset in it, a manifest
                without ``image`` and ``mask`` columns, or no pairs.
        """
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as err:
            raise DatasetError(f"not a zip archive ({err})") from err
        try:
            if len(zf.infolist()) > MAX_MEMBERS:
                raise DatasetError(f"the archive holds over {MAX_MEMBERS} files")
            return cls(zf, max_member_bytes)
        except BaseException:
            zf.close()
            raise

    def __enter__(self) -> DatasetArchive:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def __iter__(self) -> Iterator[ArchivePair]:
        return iter(self.pairs)

    # -- reading -----------------------------------------------------------------------------

    def read(self, member: str) -> bytes:
        """The bytes of ``member``, at most ``max_member_bytes``.

        Raises:
            MemberError: missing, encrypted, too large, or corrupt.
        """
        info = self._members.get(member)
        if info is None:
            raise MemberError(f"{member}: not in the archive")
        if info.flag_bits & 0x1:
            raise MemberError(f"{member}: encrypted")
        if info.file_size > self.max_member_bytes:
            raise MemberError(f"{member}: larger than the limit of {self.max_member_bytes} bytes")
        try:
            with self._zip.open(info) as fh:
                data = fh.read(self.max_member_bytes + 1)
        except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as err:
            raise MemberError(f"{member}: cannot be read ({err})") from err
        if len(data) > self.max_member_bytes:
            raise MemberError(f"{member}: larger than the limit of {self.max_member_bytes} bytes")
        return data

    # -- indexing ----------------------------------------------------------------------------

    def _has(self, rel: str, root: str) -> bool:
        name = root + rel
        return name in self._members or any(m.startswith(name) for m in self._members)

    def _root(self) -> str:
        """``""``, or the one top folder that holds the dataset."""
        if self._has(MANIFEST, "") or self._has("images/", ""):
            return ""
        tops = {name.split("/", 1)[0] for name in self._members if "/" in name}
        if len(tops) == 1:
            top = f"{tops.pop()}/"
            if self._has(MANIFEST, top) or self._has("images/", top):
                return top
        raise DatasetError(
            f"expected {MANIFEST} or the folders images/ and masks/ (paired by file name), "
            "at the top of the archive or in its one top folder"
        )

    def _pairs(self) -> list[ArchivePair]:
        manifest = self.root + MANIFEST
        pairs = self._from_manifest(manifest) if manifest in self._members else self._by_stem()
        if not pairs:
            raise DatasetError("no image/mask pairs in the archive")
        counts = Counter(p.key for p in pairs)
        seen: set[str] = set()
        out = []
        for pair in sorted(pairs, key=lambda p: p.key):
            if counts[pair.key] > 1 and pair.key in seen:
                pair = ArchivePair(pair.key, pair.image, pair.mask, problem="listed more than once")
            seen.add(pair.key)
            out.append(pair)
        return out

    def _from_manifest(self, manifest: str) -> list[ArchivePair]:
        try:
            text = self.read(manifest).decode("utf-8-sig")
        except (MemberError, UnicodeDecodeError) as err:
            raise DatasetError(f"{MANIFEST}: cannot read manifest ({err})") from err
        rows = parse_manifest(io.StringIO(text, newline=""), MANIFEST)
        return [self._manifest_pair(row) for row in rows]

    def _member(self, rel: str) -> str | None:
        name = posixpath.normpath(self.root + rel.replace("\\", "/"))
        return name if name in self._members and not name.startswith("../") else None

    def _manifest_pair(self, row: ManifestRow) -> ArchivePair:
        where = f"{MANIFEST}, line {row.line}"
        image = self._member(row.image) if row.image else None
        mask = self._member(row.mask) if row.mask else None
        problem = row.problem
        if problem is None and image is None:
            problem = f"image {row.image!r} is not in the archive"
        elif problem is None and mask is None:
            problem = f"mask {row.mask!r} is not in the archive"
        key = row.image or f"line {row.line}"
        return ArchivePair(
            key,
            image,
            mask,
            row.split,
            row.group,
            None if problem is None else f"{where}: {problem}",
        )

    def _folder(self, folder: str) -> dict[str, list[str]]:
        prefix = f"{self.root}{folder}/"
        found: dict[str, list[str]] = {}
        for name in sorted(self._members):
            rest = name[len(prefix) :] if name.startswith(prefix) else None
            if not rest or "/" in rest:
                continue
            stem = stem_of(rest)
            if stem is not None:
                found.setdefault(stem, []).append(name)
        return found

    def _by_stem(self) -> list[ArchivePair]:
        images, masks = self._folder("images"), self._folder("masks")
        out = []
        for stem in sorted(images.keys() | masks.keys()):
            names, mask_names = images.get(stem, []), masks.get(stem, [])
            image = names[0] if names else None
            mask = mask_names[0] if mask_names else None
            problem = None
            if len(names) > 1 or len(mask_names) > 1:
                problem = f"several files share the name stem {stem!r}"
            elif image is None:
                problem = f"mask {posixpath.basename(mask or '')!r} has no image"
            elif mask is None:
                problem = f"image {posixpath.basename(image)!r} has no mask"
            key = (image or mask or stem)[len(self.root) :]
            out.append(ArchivePair(key, image, mask, problem=problem))
        return out
