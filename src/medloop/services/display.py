"""What the viewer shows: analysis overlays, server-side windowing of any image, and
single slices of a volume analysis (any plane; see :mod:`medloop.services.volume_view`).

Browsers decode 8-bit PNG and JPEG themselves, but not 16-bit or float pixels, TIFF
or DICOM; for those the viewer asks for an 8-bit rendering in the window the user
sets (:func:`~medloop.io.display.render_window`), or in the image's own window.
"""

from __future__ import annotations

import zlib
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from medloop.domain.image import Image
from medloop.domain.records import AnalysisRecord, ImageRecord, ProjectRecord
from medloop.domain.viewer import VoxelHeader
from medloop.errors import InputError
from medloop.io import (
    decode_mask,
    default_window,
    encode_label_map_png,
    encode_png,
    pixel_range,
    render_overlay,
)
from medloop.io import render_window as render
from medloop.io.volumes import sniff_volume
from medloop.services.images import Images
from medloop.services.slice_interp import interpolate_between, parse_indices, read_slices
from medloop.services.uploads import read_upload
from medloop.services.viewer_copies import ViewerCopies
from medloop.services.volume_view import (
    KINDS,
    PLANES,
    VolumeCache,
    parse_window,
    plane_slice,
    slice_spacing,
)
from medloop.services.voxels import VoxelStream, grid_of, image_stream, label_stream
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

__all__ = ["Display", "Interpolated", "SliceImage", "WindowedImage"]


@dataclass(frozen=True)
class WindowedImage:
    """An 8-bit RGB PNG of an image, with the window used and the pixel range."""

    png: bytes
    center: float
    width: float
    pixel_min: float
    pixel_max: float
    dtype: str


@dataclass(frozen=True)
class SliceImage:
    """A PNG of one slice of a volume analysis.

    Attributes:
        png: 8-bit RGB (``image``, ``overlay``) or 8-bit gray, value = label (``mask``).
        count: slices of the volume in that plane (valid indices ``0..count-1``).
        spacing_mm: mm per ``(row, col)`` of the PNG.
        center, width: the window used (``None`` for ``mask``).
    """

    png: bytes
    count: int
    spacing_mm: tuple[float, float] | None
    center: float | None
    width: float | None


@dataclass(frozen=True)
class Interpolated:
    """Interpolated slices of one plane: their numbers, and their masks gzip'd (uint8 0/1,
    ``(len(indices), rows, cols)`` row-major, in the plane's display orientation)."""

    indices: list[int]
    gzip: bytes


class Display:
    """Renderings for the browser.

    Args:
        db: the database.
        blobs: where label maps are.
        images: decodes the stored images.
        viewer: the viewer's prepared copies of volumes and their label maps.
        cache: the volumes kept decoded between slice requests (default 256 MiB).
    """

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        images: Images,
        viewer: ViewerCopies,
        cache: VolumeCache | None = None,
    ) -> None:
        self.db, self.blobs, self.images, self.viewer = db, blobs, images, viewer
        self.cache = VolumeCache() if cache is None else cache

    def overlay(self, project: ProjectRecord, analysis_id: str) -> bytes:
        """The analysed frame with its label map in the labels' colours, as a PNG."""
        with self.db.read() as s:
            analysis = repo.get_analysis(s, analysis_id, project.id)
            image = repo.get_image(s, analysis.image_id, project.id)
        labels = project.settings.label_set
        data = self.blobs.read_bytes(analysis.label_blob_key, analysis.label_sha256)
        if sniff_volume(data) is not None:
            raise InputError(
                f"analysis {analysis_id} is of a volume: ask for its slices "
                "(/slice?plane=axial&index=N&kind=overlay)"
            )
        label_map = decode_mask(data, name="label map", num_foreground=labels.num_foreground)
        pixels = self.images.pixels(image, analysis.frame)
        return encode_png(render_overlay(pixels, label_map, [lab.color for lab in labels.labels]))

    def window(
        self, project_id: str, image_id: str, center: float | None, width: float | None
    ) -> WindowedImage:
        """The image windowed with ``center``/``width`` (each default: the image's own).

        Raises:
            InputError: a window that is not finite or has no width.
        """
        image = self.images.pixels(self.images.get(project_id, image_id))
        own_center, own_width = default_window(image)
        c = own_center if center is None else center
        w = own_width if width is None else width
        try:
            png = encode_png(render(image, c, w))
        except ValueError as err:
            raise InputError(str(err)) from err
        low, high = pixel_range(image)
        return WindowedImage(png, c, w, low, high, str(image.pixels.dtype))

    def slice(
        self,
        project: ProjectRecord,
        analysis_id: str,
        plane: str,
        index: int,
        kind: str = "overlay",
        window: str | None = None,
    ) -> SliceImage:
        """Slice ``index`` of a volume analysis in ``plane`` as a PNG: the windowed image,
        the image with the labels in their colours (``overlay``), or the label map.

        ``window``: see :func:`~medloop.services.volume_view.parse_window` (default: the
        volume's own window, the same for every slice).

        Raises:
            InputError: a 2D analysis, an unknown plane or kind, an index out of range,
                a bad window.
        """
        if kind not in KINDS:
            raise InputError(f"unknown kind {kind!r}: use image, overlay or mask")
        with self.db.read() as s:
            analysis = repo.get_analysis(s, analysis_id, project.id)
            image = repo.get_image(s, analysis.image_id, project.id)
        volume, auto = self.cache.get(
            ("image", image.sha256), lambda: self._volume(image), lambda v: v[0].pixels.nbytes
        )
        if not volume.is_volume:
            raise InputError(
                f"analysis {analysis_id} is of a 2D image: it has no slices (use /overlay)"
            )
        spacing = slice_spacing(volume.spacing, plane)
        cut = plane_slice(volume.pixels, plane, index)
        count = volume.shape[PLANES[plane]]
        if kind == "mask":
            labels = plane_slice(self._labels(project, analysis, volume), plane, index)
            return SliceImage(encode_label_map_png(labels), count, spacing, None, None)
        center, width = parse_window(window, auto)
        shown = Image(pixels=render(Image(pixels=cut), center, width))
        if kind == "overlay":
            labels = plane_slice(self._labels(project, analysis, volume), plane, index)
            colors = [lab.color for lab in project.settings.label_set.labels]
            return SliceImage(
                encode_png(render_overlay(shown, labels, colors)), count, spacing, center, width
            )
        return SliceImage(encode_png(shown.pixels), count, spacing, center, width)

    def voxels(self, project: ProjectRecord, analysis_id: str, kind: str) -> VoxelStream:
        """A volume analysis's image (``kind`` ``image``) or label volume (``labels``), whole,
        gzip-compressed in viewer order (see :mod:`medloop.services.voxels`).

        Each is sent from the copy prepared when the volume was analysed
        (:mod:`medloop.services.viewer_copies`); a volume analysed before has its copy made
        here, while it is sent, and kept for the next open.

        Raises:
            InputError: a 2D analysis, a volume with channels, or an unknown kind.
        """
        if kind not in ("image", "labels"):
            raise InputError(f"unknown kind {kind!r}: use image or labels")
        analysis, image = self._records(project, analysis_id)
        if kind == "image":
            ready = self.viewer.image(image) or self.cache.peek(("voxels", image.sha256))
            return ready if ready is not None else self._image_voxels(image, analysis_id)
        stored = self.viewer.labels(image, analysis)
        return stored if stored is not None else self._label_voxels(project, analysis, image)

    def _image_voxels(self, image: ImageRecord, analysis_id: str) -> VoxelStream:
        """Decode the stored volume (its geometry is kept) and stream its voxels, compressed
        while they are sent; the whole compressed stream is kept once it has all been sent,
        as the image's viewer copy (in memory if that fails)."""
        volume, auto = self._volume(image)
        if not volume.is_volume:
            raise InputError(f"analysis {analysis_id} is of a 2D image: it has no voxels")
        if volume.channels != 1:
            raise InputError(f"the viewer shows single-channel volumes, got {volume.channels}")
        self.cache.get(("geometry", image.sha256), lambda: (_geometry_of(volume), auto), _tiny)
        made = image_stream(volume)

        def stream() -> Iterator[bytes]:
            sent = yield from _sent(made.chunks)
            whole = VoxelStream(made.header, sent)
            if not self.viewer.keep_quietly(image.id, whole):
                size = sum(map(len, sent))
                self.cache.get(("voxels", image.sha256), lambda: whole, lambda _: size)

        return VoxelStream(made.header, stream())

    def _label_voxels(
        self, project: ProjectRecord, analysis: AnalysisRecord, image: ImageRecord
    ) -> VoxelStream:
        """Decode the analysis's label volume and stream it, compressed while it is sent;
        once all sent, it is kept as the analysis's viewer copy."""
        geometry, _ = self._geometry(image, analysis.id)
        header = VoxelHeader(_shape3(geometry), _mm(geometry), "uint8")
        made = label_stream(self._labels(project, analysis, geometry), header)

        def stream() -> Iterator[bytes]:
            sent = yield from _sent(made.chunks)
            self.viewer.keep_quietly(image.id, None, analysis.id, VoxelStream(made.header, sent))

        return VoxelStream(made.header, stream())

    def interpolate(
        self,
        project: ProjectRecord,
        analysis_id: str,
        plane: str,
        indices: str,
        chunks: Iterable[bytes],
    ) -> Interpolated:
        """Shape-based interpolation between edited slices of ``plane`` (see
        :mod:`medloop.services.slice_interp`): ``chunks`` bring their masks gzip'd (uint8,
        ``(n, rows, cols)`` in display orientation, ``n`` = the number of ``indices``).

        Raises:
            InputError: a 2D analysis, an unknown plane, bad indices or slices.
            UploadTooLarge: more bytes than ``n`` slices can take, even incompressible.
        """
        volume, _ = self._geometry(self._records(project, analysis_id)[1], analysis_id)
        count = int(volume.shape[PLANES[plane]]) if plane in PLANES else 0
        if not count:
            raise InputError(f"unknown plane {plane!r}: use axial, coronal or sagittal")
        numbers = parse_indices(indices, count)
        rows, cols = plane_slice(volume.pixels, plane, 0).shape[:2]
        raw = len(numbers) * rows * cols
        data = read_upload(chunks, raw + raw // 100 + 1024)  # gzip's worst case, and more
        filled = interpolate_between(read_slices(data, len(numbers), rows, cols), numbers)
        order = sorted(filled)
        stack = np.stack([filled[k] for k in order]) if order else np.zeros((0, rows, cols))
        return Interpolated(order, zlib.compress(stack.astype(np.uint8).tobytes(), 1, wbits=31))

    def _records(
        self, project: ProjectRecord, analysis_id: str
    ) -> tuple[AnalysisRecord, ImageRecord]:
        """The analysis and its image (``NotFoundError`` when not in the project)."""
        with self.db.read() as s:
            analysis = repo.get_analysis(s, analysis_id, project.id)
            return analysis, repo.get_image(s, analysis.image_id, project.id)

    def _geometry(self, image: ImageRecord, analysis_id: str) -> tuple[Image, tuple[float, float]]:
        """A stored volume's geometry (shape, spacing, affine; no voxels) and own window:
        its viewer header's, else decoded once.

        Raises:
            InputError: the image is 2D.
        """
        head = image.viewer_header
        if head is not None and head.center is not None and head.width is not None:
            return grid_of(head), (head.center, head.width)

        def load() -> tuple[Image, tuple[float, float]]:
            volume, auto = self._volume(image)
            return _geometry_of(volume), auto

        geometry, auto = self.cache.get(("geometry", image.sha256), load, _tiny)
        if not geometry.is_volume:
            raise InputError(f"analysis {analysis_id} is of a 2D image: it has no voxels")
        return geometry, auto

    def _volume(self, image: ImageRecord) -> tuple[Image, tuple[float, float]]:
        """A stored image's pixels and its own window ``(center, width)``."""
        pixels = self.images.pixels(image)
        return pixels, default_window(pixels)

    def _labels(
        self, project: ProjectRecord, analysis: AnalysisRecord, volume: Image
    ) -> np.ndarray:
        """The analysis's label volume on ``volume``'s canonical grid, uint8 ``(X, Y, Z)``."""

        def load() -> np.ndarray:
            return decode_mask(
                self.blobs.read_bytes(analysis.label_blob_key, analysis.label_sha256),
                name="label volume",
                num_foreground=project.settings.label_set.num_foreground,
                image=volume,
            )

        key = ("labels", analysis.label_sha256, volume.shape)
        return self.cache.get(key, load, lambda a: a.nbytes)


def _sent(chunks: Iterable[bytes]) -> Generator[bytes, None, list[bytes]]:
    """Yield ``chunks``; returns them all, once sent."""
    sent: list[bytes] = []
    for chunk in chunks:
        sent.append(chunk)
        yield chunk
    return sent


def _geometry_of(volume: Image) -> Image:
    """``volume`` without its voxels: zero-stride pixels of the same shape (no memory)."""
    pixels = np.broadcast_to(np.zeros((1,) * volume.pixels.ndim, np.float32), volume.pixels.shape)
    return Image(pixels, volume.spacing, volume.source_format, volume.metadata, volume.affine)


def _tiny(_: object) -> int:
    """What a geometry costs the cache (its arrays are a few bytes)."""
    return 4096


def _shape3(volume: Image) -> tuple[int, int, int]:
    return (int(volume.shape[0]), int(volume.shape[1]), int(volume.shape[2]))


def _mm(volume: Image) -> tuple[float, float, float] | None:
    s = volume.spacing
    return (float(s[0]), float(s[1]), float(s[2])) if s is not None else None
