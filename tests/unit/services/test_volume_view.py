"""Slices of a canonical (RAS+) volume in display orientation, their spacing, and windows."""

from __future__ import annotations

import numpy as np
import pytest

from medloop.errors import InputError
from medloop.services.volume_view import (
    WINDOW_PRESETS,
    label_file,
    parse_window,
    plane_slice,
    slice_spacing,
)


def _coords() -> np.ndarray:
    """(4, 5, 6, 3): each voxel holds its own (x, y, z) index."""
    return np.stack(np.meshgrid(*(np.arange(n) for n in (4, 5, 6)), indexing="ij"), axis=-1)


def test_planes_fix_their_axis_and_show_right_and_anterior_and_superior_first() -> None:
    vol = _coords()
    axial = plane_slice(vol, "axial", 2)
    assert axial.shape == (5, 4, 3) and (axial[..., 2] == 2).all()
    # top-left: the most anterior row, the patient's rightmost column
    assert tuple(axial[0, 0]) == (3, 4, 2) and tuple(axial[-1, -1]) == (0, 0, 2)
    coronal = plane_slice(vol, "coronal", 1)
    assert coronal.shape == (6, 4, 3) and (coronal[..., 1] == 1).all()
    assert tuple(coronal[0, 0]) == (3, 1, 5)  # superior at the top, right on the left
    sagittal = plane_slice(vol, "sagittal", 3)
    assert sagittal.shape == (6, 5, 3) and (sagittal[..., 0] == 3).all()
    assert tuple(sagittal[0, 0]) == (3, 4, 5)  # superior at the top, anterior on the left
    assert plane_slice(vol[..., 0], "axial", 0).shape == (5, 4)  # without channels too


@pytest.mark.parametrize(
    ("plane", "index", "message"),
    [
        ("axial", 6, "0..5"),
        ("coronal", -1, "0..4"),
        ("sagittal", 4, "0..3"),
        ("oblique", 0, "plane"),
    ],
)
def test_out_of_range_or_unknown_planes_are_refused(plane: str, index: int, message: str) -> None:
    with pytest.raises(InputError, match=message):
        plane_slice(_coords(), plane, index)


def test_slice_spacing_is_row_then_column() -> None:
    spacing = (0.5, 0.7, 3.0)
    assert slice_spacing(spacing, "axial") == (0.7, 0.5)
    assert slice_spacing(spacing, "coronal") == (3.0, 0.5)
    assert slice_spacing(spacing, "sagittal") == (3.0, 0.7)
    assert slice_spacing(None, "axial") is None


def test_windows_auto_presets_and_numbers() -> None:
    assert parse_window(None, (1.0, 2.0)) == (1.0, 2.0) == parse_window(" Auto ", (1.0, 2.0))
    assert parse_window("lung", (0, 1)) == WINDOW_PRESETS["lung"] == (-600.0, 1500.0)
    assert parse_window("40,400", (0, 1)) == (40.0, 400.0)
    for bad in ("wide", "40", "40,0", "40,-5", "nan,10", "1,2,3"):
        with pytest.raises(InputError, match="window"):
            parse_window(bad, (0, 1))


def test_label_files_are_named_by_their_content() -> None:
    import gzip

    import nibabel as nib

    vol = gzip.compress(nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), np.eye(4)).to_bytes())
    assert label_file(vol, "a").media_type == "application/gzip"
    assert label_file(vol, "a").filename == "a.labels.nii.gz"
    png = label_file(b"\x89PNG\r\n\x1a\n...", "b")
    assert (png.media_type, png.filename) == ("image/png", "b.labels.png")


def test_the_volume_cache_keeps_what_fits_and_drops_the_least_recently_used() -> None:
    from medloop.services.volume_view import VolumeCache

    cache = VolumeCache(max_bytes=100)
    loads: list[str] = []

    def get(key: str, size: int) -> str:
        def load() -> str:
            loads.append(key)
            return key.upper()

        return cache.get(key, load, lambda _: size)

    assert get("a", 40) == "A" and get("b", 40) == "B" and get("a", 40) == "A"
    assert loads == ["a", "b"] and cache.held_bytes == 80
    get("c", 40)  # over 100: "b", the least recently used, goes
    assert cache.held_bytes == 80
    get("a", 40)
    get("b", 40)
    assert loads == ["a", "b", "c", "b"]
    assert get("huge", 101) == "HUGE" and get("huge", 101) == "HUGE"  # never kept
    assert loads[-2:] == ["huge", "huge"] and cache.held_bytes <= 100
