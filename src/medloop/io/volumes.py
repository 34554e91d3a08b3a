"""3D volumes: NIfTI (``.nii``, ``.nii.gz``, nibabel) and NRRD (pynrrd), in and out.

A volume is read into an :class:`~medloop.domain.image.Image` with pixels
``(X, Y, Z, 1)`` reoriented to the closest canonical orientation (array axes point
~ right, anterior, superior: RAS+), its voxel spacing in mm and its affine. What the
file had (affine, axis order and flips) is kept in ``metadata["orientation"]`` so a
label volume can be written back exactly on the input's grid
(:func:`encode_label_volume`).

Every problem is an :class:`~medloop.errors.ImageReadError` (the image) or a
:class:`~medloop.errors.MaskError` (a label volume) naming the file: not a volume, a
4D file, no spacing, a degenerate affine, too many voxels, a label volume whose grid
differs from its image's, labels outside the project's.
"""

from __future__ import annotations

import gzip
import io
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medloop.domain.image import Image
from medloop.errors import ImageReadError, MaskError
from medloop.io._common import decode_guard, normalize_dtype

__all__ = [
    "DEFAULT_MAX_VOXELS",
    "VolumeFormat",
    "decode_label_volume",
    "decode_volume",
    "encode_label_volume",
    "encode_volume",
    "sniff_volume",
    "volume_image",
]

DEFAULT_MAX_VOXELS = 1_000_000_000
VolumeFormat = Literal["nifti", "nrrd"]
_NIFTI_MAGICS = (b"n+1\x00", b"ni1\x00", b"n+2\x00", b"ni2\x00")
_AFFINE_TOLERANCE_MM = 1e-3


def _peek(data: bytes) -> bytes:
    """The first 600 bytes of ``data``, gunzipped when it is gzip."""
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
                return gz.read(600)
        except (OSError, EOFError):
            return b""
    return data[:600]


def sniff_volume(data: bytes) -> VolumeFormat | None:
    """``nifti`` or ``nrrd`` when ``data`` (possibly gzipped) is one, else ``None``."""
    if data.startswith(b"NRRD000"):
        return "nrrd"
    head = _peek(data)
    if len(head) >= 348 and head[344:348] in _NIFTI_MAGICS[:2]:
        return "nifti"
    if len(head) >= 544 and head[4:8] in _NIFTI_MAGICS[2:]:
        return "nifti"
    return None


def _check_geometry(name: str, shape: tuple[int, ...], affine: np.ndarray, max_voxels: int) -> None:
    if len(shape) != 3:
        raise ImageReadError(f"{name}: a {len(shape)}D file; a volume must be 3D (X, Y, Z)")
    if min(shape) < 1:
        raise ImageReadError(f"{name}: volume has zero size {shape}")
    if int(np.prod(shape)) > max_voxels:
        raise ImageReadError(
            f"{name}: volume is {'x'.join(map(str, shape))} = {int(np.prod(shape)):,} voxels, "
            f"over the limit of {max_voxels:,}"
        )
    if not np.isfinite(affine).all() or abs(float(np.linalg.det(affine[:3, :3]))) < 1e-9:
        raise ImageReadError(f"{name}: degenerate affine (voxel axes do not span 3D space)")


def _squeeze_4d(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.ndim == 4 and arr.shape[3] == 1:
        return arr[..., 0]
    if arr.ndim != 3:
        raise ImageReadError(
            f"{name}: a {arr.ndim}D file; medloop takes one 3D volume "
            "(split time series or multi-channel files first)"
        )
    return arr


def _nifti(data: bytes, name: str, max_voxels: int) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    with decode_guard(name, "NIfTI file"):
        raw: io.IOBase = io.BytesIO(data)
        if data[:2] == b"\x1f\x8b":  # inflated as it is read: no whole decompressed copy
            raw = gzip.GzipFile(fileobj=raw, mode="rb")
        fh = nib.FileHolder(fileobj=raw)
        img = nib.Nifti1Image.from_file_map({"header": fh, "image": fh})
        if img.header.get("magic") in (b"n+2", b"ni2"):  # pragma: no cover - NIfTI-2 is rare
            img = nib.Nifti2Image.from_file_map({"header": fh, "image": fh})
        shape = tuple(int(s) for s in img.shape)
        if len(shape) == 4 and shape[3] == 1:
            shape = shape[:3]
        if len(shape) != 3:
            _squeeze_4d(np.empty((0,) * len(shape)), name)  # names the 2D/4D problem
        affine = np.asarray(img.affine, dtype=np.float64)
        _check_geometry(name, shape, affine, max_voxels)
        zooms = img.header.get_zooms()[:3]
        if not all(np.isfinite(z) and z > 0 for z in zooms):
            raise ImageReadError(f"{name}: no voxel spacing (pixdim is {list(zooms)})")
        arr = _squeeze_4d(np.asanyarray(img.dataobj), name)
    return arr, affine


def _nrrd(data: bytes, name: str, max_voxels: int) -> tuple[np.ndarray, np.ndarray]:
    import nrrd

    with decode_guard(name, "NRRD file"), tempfile.NamedTemporaryFile(suffix=".nrrd") as tmp:
        tmp.write(data)
        tmp.flush()
        arr, header = nrrd.read(tmp.name)
        arr = _squeeze_4d(np.asarray(arr), name)
        directions = header.get("space directions")
        if directions is None:
            spacings = header.get("spacings")
            if spacings is None:
                raise ImageReadError(f"{name}: no voxel spacing (no space directions or spacings)")
            directions = np.diag(np.asarray(spacings, dtype=np.float64)[:3])
        directions = np.asarray(
            [
                d
                for d in np.asarray(directions, dtype=object)
                if d is not None and not np.all(np.isnan(np.asarray(d, dtype=np.float64)))
            ],
            dtype=np.float64,
        )
        if directions.shape != (3, 3):
            raise ImageReadError(f"{name}: cannot read its 3 space directions")
        affine = np.eye(4)
        affine[:3, :3] = directions.T
        affine[:3, 3] = np.asarray(header.get("space origin", np.zeros(3)), dtype=np.float64)
        if str(header.get("space", "")).lower() in ("left-posterior-superior", "lps"):
            affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine  # LPS -> RAS
        _check_geometry(name, tuple(arr.shape), affine, max_voxels)
    return arr, affine


def _canonical(
    arr: np.ndarray, affine: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Reorient to the closest RAS+ axes; returns data, its affine and how to undo it."""
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)
    out = nib.orientations.apply_orientation(arr, ornt)
    new_affine = affine @ nib.orientations.inv_ornt_aff(ornt, arr.shape)
    undo = {
        "affine": affine.tolist(),
        "shape": list(arr.shape),
        "ornt": ornt.tolist(),
    }
    return np.ascontiguousarray(out), new_affine, undo


def _voxels(arr: np.ndarray, name: str) -> np.ndarray:
    """A volume's voxels in the type an :class:`Image` holds: signed 8- and 16-bit
    integers (CT) as int16, half the memory of float32 and exact; the rest as
    :func:`~medloop.io._common.normalize_dtype` says."""
    if arr.dtype.kind == "i" and arr.dtype.itemsize <= 2:
        return arr.astype(np.int16, copy=False)
    return normalize_dtype(arr, name)


def decode_volume(
    data: bytes, *, name: str = "<bytes>", max_voxels: int = DEFAULT_MAX_VOXELS
) -> Image:
    """Decode a NIfTI or NRRD volume held in memory.

    Returns:
        An :class:`Image` with pixels ``(X, Y, Z, 1)`` in canonical (RAS+) orientation,
        ``spacing`` in mm along those axes and the matching ``affine``.

    Raises:
        ImageReadError: not a volume, 4D, no spacing, degenerate affine, too large, corrupt.
    """
    fmt = sniff_volume(data)
    if fmt is None:
        raise ImageReadError(f"{name}: not a NIfTI or NRRD volume")
    arr, affine = (_nifti if fmt == "nifti" else _nrrd)(data, name, max_voxels)
    return volume_image(arr, affine, fmt, {}, name)


def volume_image(
    arr: np.ndarray, affine: np.ndarray, fmt: str, metadata: dict[str, Any], name: str
) -> Image:
    """An :class:`Image` of the volume ``arr`` ``(X, Y, Z)`` with voxel-to-RAS ``affine``:
    reoriented to canonical RAS+, with its spacing in mm and ``metadata`` plus how to go
    back to the input grid (``orientation``) and its voxel type (``dtype``).

    Raises:
        ImageReadError: voxels of a type that is no number.
    """
    if arr.dtype.kind not in "biuf":
        raise ImageReadError(f"{name}: unsupported voxel type {arr.dtype}")
    dtype = str(arr.dtype)
    arr, affine, undo = _canonical(arr, affine)
    spacing = tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
    pixels = _voxels(arr, name)
    return Image(
        pixels=pixels[..., None],
        spacing=spacing,
        source_format=fmt,
        metadata={**metadata, "orientation": undo, "dtype": dtype},
        affine=affine,
    )


def encode_volume(image: Image) -> bytes:
    """A gzipped NIfTI of a gray volume as it is held (canonical grid and affine): what
    :func:`decode_volume` reads back into the same pixels, spacing and affine."""
    import nibabel as nib

    if not image.is_volume or image.channels != 1:
        raise ValueError(f"not a gray volume: pixels {image.pixels.shape}")
    img = nib.Nifti1Image(
        np.ascontiguousarray(image.pixels[..., 0]),
        image.affine if image.affine is not None else np.diag([*(image.spacing or (1.0,) * 3), 1]),
    )
    return gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)


def decode_label_volume(
    data: bytes, *, name: str, num_foreground: int, image: Image | None = None
) -> np.ndarray:
    """Decode a label volume (NIfTI or NRRD) and check it against its image and the labels.

    Returns:
        uint8 ``(X, Y, Z)`` label map with values ``0..K``, on the image's canonical grid.

    Raises:
        MaskError: its grid (shape or affine) differs from the image's, its values are
            not integers or lie outside ``0..K``.
        ImageReadError: the file is not a readable volume.
    """
    vol = decode_volume(data, name=name)
    labels = vol.pixels[..., 0]
    if image is not None:
        if vol.shape != image.shape:
            raise MaskError(f"{name}: label volume is {vol.shape} but the image is {image.shape}")
        if (
            image.affine is not None
            and vol.affine is not None
            and not np.allclose(vol.affine, image.affine, atol=_AFFINE_TOLERANCE_MM)
        ):
            raise MaskError(
                f"{name}: label volume's affine differs from the image's (another grid)"
            )
    if labels.dtype.kind == "f" and not (
        np.all(np.isfinite(labels)) and np.all(labels == np.round(labels))
    ):
        raise MaskError(f"{name}: label values must be whole numbers")
    values = np.unique(labels)
    bad = [int(v) for v in values if v < 0 or v > num_foreground]
    if bad:
        raise MaskError(f"{name}: labels {bad[:10]} are outside the project's 0..{num_foreground}")
    return np.ascontiguousarray(labels.astype(np.uint8))


def encode_label_volume(labels: np.ndarray, image: Image) -> bytes:
    """A gzipped NIfTI of ``labels`` (canonical grid of ``image``) on the input file's own grid.

    The label map is reoriented back to the input's axis order and written with its
    original affine, so viewers overlay it on the input volume as it was sent.
    """
    import nibabel as nib

    if labels.shape != image.shape:
        raise ValueError(f"labels {labels.shape} do not match the volume {image.shape}")
    undo = image.metadata.get("orientation")
    arr = labels.astype(np.uint8)
    affine = image.affine if image.affine is not None else np.eye(4)
    if undo is not None:
        ornt = np.asarray(undo["ornt"])
        back = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt(("R", "A", "S")), ornt)
        arr = nib.orientations.apply_orientation(arr, back)
        affine = np.asarray(undo["affine"])
    img = nib.Nifti1Image(np.ascontiguousarray(arr), affine)
    img.set_data_dtype(np.uint8)
    img.header["descrip"] = b"medloop label map"
    buf = io.BytesIO()
    file_map = nib.Nifti1Image.make_file_map({"image": buf, "header": buf})
    img.to_file_map(file_map)
    return gzip.compress(buf.getvalue(), compresslevel=6, mtime=0)


def read_volume(path: str | Path, *, max_voxels: int = DEFAULT_MAX_VOXELS) -> Image:
    """:func:`decode_volume` of a file."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ImageReadError(f"{path}: cannot read file ({err.strerror or err})") from err
    return decode_volume(data, name=str(path), max_voxels=max_voxels)
