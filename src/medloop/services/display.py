"""What the viewer shows: analysis overlays and server-side windowing of any image.

Browsers decode 8-bit PNG and JPEG themselves, but not 16-bit or float pixels, TIFF
or DICOM; for those the viewer asks for an 8-bit rendering in the window the user
sets (:func:`~medloop.io.display.render_window`), or in the image's own window.
"""

from __future__ import annotations

from dataclasses import dataclass

from medloop.domain.records import ProjectRecord
from medloop.errors import InputError
from medloop.io import decode_mask, default_window, encode_png, pixel_range, render_overlay
from medloop.io import render_window as render
from medloop.services.images import Images
from medloop.storage import repositories as repo
from medloop.storage.blobs import BlobStore
from medloop.storage.database import Database

__all__ = ["Display", "WindowedImage"]


@dataclass(frozen=True)
class WindowedImage:
    """An 8-bit RGB PNG of an image, with the window used and the pixel range."""

    png: bytes
    center: float
    width: float
    pixel_min: float
    pixel_max: float
    dtype: str


class Display:
    """Renderings for the browser.

    Args:
        db: the database.
        blobs: where label maps are.
        images: decodes the stored images.
    """

    def __init__(self, db: Database, blobs: BlobStore, images: Images) -> None:
        self.db, self.blobs, self.images = db, blobs, images

    def overlay(self, project: ProjectRecord, analysis_id: str) -> bytes:
        """The analysed frame with its label map in the labels' colours, as a PNG."""
        with self.db.read() as s:
            analysis = repo.get_analysis(s, analysis_id, project.id)
            image = repo.get_image(s, analysis.image_id, project.id)
        labels = project.settings.label_set
        label_map = decode_mask(
            self.blobs.read_bytes(analysis.label_blob_key, analysis.label_sha256),
            name="label map",
            num_foreground=labels.num_foreground,
        )
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
