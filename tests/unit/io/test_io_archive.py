"""A dataset sent as a zip: its two forms, one top folder, per-pair problems, whole-archive errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from medloop.errors import DatasetError
from medloop.io.archive import DatasetArchive, MemberError


def _zip(path: Path, files: dict[str, bytes], encrypted: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    if encrypted:
        _mark_encrypted(path, encrypted)
    return path


def _mark_encrypted(path: Path, names: tuple[str, ...]) -> None:
    """Set the "encrypted" flag of members (zipfile cannot write encrypted archives)."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        infos = [i for i in zf.infolist() if i.filename in names]
    for info in infos:
        raw[info.header_offset + 6] |= 0x1  # the local header's flag
        central = raw.find(b"PK\x01\x02")
        while central != -1:
            name_len = int.from_bytes(raw[central + 28 : central + 30], "little")
            if raw[central + 46 : central + 46 + name_len].decode() == info.filename:
                raw[central + 8] |= 0x1  # the central directory's flag
                break
            central = raw.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(raw))


def _problems(archive: DatasetArchive) -> dict[str, str]:
    return {p.key: p.problem for p in archive.pairs if p.problem is not None}


def test_folders_paired_by_stem_inside_one_top_folder(tmp_path: Path) -> None:
    files = {
        "set/images/a.png": b"A",
        "set/masks/a.tif": b"a",
        "set/images/b.png": b"B",
        "set/masks/c.png": b"c",
        "set/images/d.png": b"D",
        "set/images/d.jpg": b"D2",
        "set/masks/d.png": b"d",
        "set/images/.DS_Store": b"x",
        "set/images/notes.txt": b"x",
        "__MACOSX/set/images/._a.png": b"junk",
    }
    with DatasetArchive.open(_zip(tmp_path / "x.zip", files), 1 << 20) as archive:
        assert archive.root == "set/"
        assert [p.key for p in archive.pairs] == [
            "images/a.png",
            "images/b.png",
            "images/d.jpg",
            "masks/c.png",
        ]
        good = archive.pairs[0]
        assert (good.image, good.mask, good.problem) == (
            "set/images/a.png",
            "set/masks/a.tif",
            None,
        )
        assert archive.read(good.image) == b"A"
        problems = _problems(archive)
        assert "b.png" in problems["images/b.png"] and "no mask" in problems["images/b.png"]
        assert "no image" in problems["masks/c.png"]
        assert "share the name stem 'd'" in problems["images/d.jpg"]


def test_a_manifest_with_splits_groups_and_bad_rows(tmp_path: Path) -> None:
    manifest = (
        "image,mask,split,group\n"
        "images/1.png,masks/1.png,train,stain A\n"
        "images/2.png,masks/2.png,holdout,\n"
        "images/3.png,masks/missing.png,val,\n"
        "../outside.png,masks/1.png,train,\n"
        ",masks/1.png,train,\n"
        "images/1.png,masks/1.png,val,\n"
    )
    files = {
        "manifest.csv": manifest.encode(),
        "images/1.png": b"1",
        "masks/1.png": b"m1",
        "images/2.png": b"2",
        "masks/2.png": b"m2",
        "images/3.png": b"3",
    }
    with DatasetArchive.open(_zip(tmp_path / "m.zip", files), 1 << 20) as archive:
        assert archive.root == ""
        first = next(p for p in archive.pairs if p.key == "images/1.png" and p.problem is None)
        assert (first.split, first.group) == ("train", "stain A")
        problems = [p.problem or "" for p in archive.pairs if p.problem]
        assert any("line 3" in x and "holdout" in x for x in problems)
        assert any("line 4" in x and "missing.png" in x for x in problems)
        assert any("outside.png" in x for x in problems)  # never reaches outside the root
        assert any("line 6" in x and "empty image path" in x for x in problems)
        assert any("more than once" in x for x in problems)
        assert len(archive.pairs) == 6


def test_members_are_read_with_limits(tmp_path: Path) -> None:
    files = {
        "images/a.png": b"x" * 100,
        "masks/a.png": b"m",
        "images/b.png": b"B",
        "masks/b.png": b"secret",
    }
    path = _zip(tmp_path / "e.zip", files, encrypted=("masks/b.png",))
    with DatasetArchive.open(path, 50) as archive:
        with pytest.raises(MemberError, match="larger than the limit of 50"):
            archive.read("images/a.png")
        with pytest.raises(MemberError, match="encrypted"):
            archive.read("masks/b.png")
        with pytest.raises(MemberError, match="not in the archive"):
            archive.read("images/zzz.png")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a zip at all", "not a zip"),
        (None, "expected manifest.csv"),
        ({"manifest.csv": b""}, "empty manifest"),
        ({"manifest.csv": b"picture,label\n"}, "missing column"),
        ({"images/readme.txt": b"x", "masks/": b""}, "no image/mask pairs"),
    ],
)
def test_what_is_not_a_dataset_is_refused(tmp_path: Path, data: object, message: str) -> None:
    path = tmp_path / "bad.zip"
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        _zip(path, data if isinstance(data, dict) else {"a/readme.txt": b"x", "b/x.png": b"x"})
    with pytest.raises(DatasetError, match=message):
        DatasetArchive.open(path, 1 << 20)
