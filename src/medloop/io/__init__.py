"""Reading and writing images, masks and datasets; no torch here (keep imports light)."""

from medloop.io._dicom import dicom_patient_id
from medloop.io.datasets import Dataset, Sample, check_pairs, load_dataset
from medloop.io.display import default_window, pixel_range, render_window, to_display_rgb
from medloop.io.images import DEFAULT_MAX_PIXELS, decode_image, dicom_frames, read_image
from medloop.io.masks import (
    decode_mask,
    encode_label_map_png,
    encode_png,
    mask_from_array,
    read_mask,
    render_overlay,
    write_label_map_png,
    write_overlay_png,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "Dataset",
    "Sample",
    "check_pairs",
    "decode_image",
    "decode_mask",
    "default_window",
    "dicom_frames",
    "dicom_patient_id",
    "encode_label_map_png",
    "encode_png",
    "load_dataset",
    "mask_from_array",
    "pixel_range",
    "read_image",
    "read_mask",
    "render_overlay",
    "render_window",
    "to_display_rgb",
    "write_label_map_png",
    "write_overlay_png",
]
