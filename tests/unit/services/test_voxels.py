"""Whole volumes for the viewer: the gzip stream's layout and the label volume read back;
shape-based interpolation between edited slices."""

from __future__ import annotations

import gzip
import zlib

import numpy as np
import pytest

from medloop.errors import InputError, MaskError
from medloop.services.slice_interp import (
    interpolate_between,
    parse_indices,
    read_slices,
    signed_distance,
)
from medloop.services.voxels import gzip_slabs, read_label_voxels, voxel_dtype


def test_the_stream_is_one_gzip_of_x_fastest_voxels() -> None:
    vol = np.arange(5 * 6 * 19, dtype=np.int32).reshape(5, 6, 19) - 300
    raw = gzip.decompress(b"".join(gzip_slabs(vol, voxel_dtype(vol))))
    flat = np.frombuffer(raw, "<i2")
    assert flat.size == vol.size
    x, y, z = 3, 4, 17
    assert flat[x + 5 * (y + 6 * z)] == vol[x, y, z]


def test_voxel_types() -> None:
    assert voxel_dtype(np.zeros((2, 2, 2), np.uint8)) == np.dtype("<i2")
    widened = np.full((2, 2, 2), -1024.0, np.float32)  # an int16 file's voxels, widened
    assert voxel_dtype(widened, "int16") == np.dtype("<i2")
    assert voxel_dtype(widened) == np.dtype("<f4")
    assert voxel_dtype(np.full((2, 2, 2), 7e4, np.float32), "uint32") == np.dtype("<f4")
    assert voxel_dtype(np.full((2, 2, 2), -1024, np.int32)) == np.dtype("<i2")
    assert voxel_dtype(np.full((2, 2, 2), 40000, np.int32)) == np.dtype("<f4")
    assert voxel_dtype(np.zeros((2, 2, 2), np.float64)) == np.dtype("<f4")


def test_a_label_volume_reads_back_on_the_canonical_grid() -> None:
    labels = np.random.default_rng(0).integers(0, 3, (4, 5, 6)).astype(np.uint8)
    data = b"".join(gzip_slabs(labels, np.dtype(np.uint8)))
    assert np.array_equal(read_label_voxels(data, (4, 5, 6), 2), labels)
    with pytest.raises(MaskError, match="label 2"):
        read_label_voxels(data, (4, 5, 6), 1)
    short = zlib.compress(bytes(100), wbits=31)
    with pytest.raises(MaskError, match=r"must hold 120 voxels .* got 100 bytes"):
        read_label_voxels(short, (4, 5, 6), 2)
    with pytest.raises(MaskError, match="must hold 60 voxels"):
        read_label_voxels(data, (3, 5, 4), 2)
    with pytest.raises(MaskError, match="not gzip"):
        read_label_voxels(b"plain bytes", (4, 5, 6), 2)


def _disc(r: float, centre: tuple[float, float] = (16, 16)) -> np.ndarray:
    yy, xx = np.mgrid[:32, :32]
    return np.asarray((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= r * r)


def test_interpolation_morphs_one_outline_into_the_other() -> None:
    filled = interpolate_between(np.stack([_disc(4), _disc(12)]), [10, 14])
    assert sorted(filled) == [11, 12, 13]
    areas = [int(filled[k].sum()) for k in (11, 12, 13)]
    assert int(_disc(4).sum()) < areas[0] < areas[1] < areas[2] < int(_disc(12).sum())
    assert abs(areas[1] - int(_disc(8).sum())) <= 8  # half-way: about the mean radius
    # an empty end shrinks the shape away; the order of the indices does not matter
    gone = interpolate_between(np.stack([np.zeros((32, 32), bool), _disc(6)]), [8, 4])
    sizes = [int(gone[k].sum()) for k in (5, 6, 7)]
    assert sizes[0] > sizes[1] > sizes[2] and sizes[0] <= int(_disc(6).sum())
    assert signed_distance(_disc(3))[16, 16] > 0 > signed_distance(_disc(3))[0, 0]


def test_indices_and_slices_are_checked() -> None:
    assert parse_indices("3, 10,17", 20) == [3, 10, 17]
    for text, message in [("3", "two distinct"), ("3,3", "two distinct"), ("a,b", "comma")]:
        with pytest.raises(InputError, match=message):
            parse_indices(text, 20)
    with pytest.raises(InputError, match="out of range"):
        parse_indices("3,20", 20)
    masks = gzip.compress(np.ones((2, 3, 4), np.uint8).tobytes())
    assert read_slices(masks, 2, 3, 4).all()
    with pytest.raises(InputError, match="30 bytes, got 24"):
        read_slices(masks, 2, 3, 5)
