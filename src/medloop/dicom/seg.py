"""DICOM SEG: label maps out (built with highdicom), corrected SEGs back in.

Writing: :func:`build_seg` turns the label maps of one source instance (one per
analysed frame) into a BINARY Segmentation that references the source, carries one
segment per project label (label name, colour, a ``99MEDLOOP`` type code) and names
the algorithm (medloop, model version) in each segment's Algorithm Identification.

Reading corrected SEGs back is :mod:`medloop.dicom.seg_read`.
"""

from __future__ import annotations

import copy
import hashlib
import warnings
from collections.abc import Mapping, Sequence
from io import BytesIO
from typing import TYPE_CHECKING

import numpy as np
from pydicom.dataset import Dataset

from medloop.domain.labels import LabelSet
from medloop.errors import MaskError

if TYPE_CHECKING:
    from highdicom.seg import SegmentDescription

__all__ = [
    "LABEL_SCHEME",
    "SEG_SOP_CLASS_UIDS",
    "build_seg",
    "deterministic_uid",
    "encode_dataset",
    "is_seg",
    "one_frame_per_seg",
    "segment_descriptions",
    "segmentation",
]

LABEL_SCHEME = "99MEDLOOP"
"""Private coding scheme of the segment type codes: value ``L<label value>``."""

SEG_SOP_CLASS_UIDS = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation Storage
        "1.2.840.10008.5.1.4.1.1.66.7",  # Label Map Segmentation Storage
    }
)

MANUFACTURER = "medloop"


def deterministic_uid(*parts: str) -> str:
    """A ``2.25.`` UID derived from ``parts``: the same parts always give the same UID.

    A SEG rebuilt for a retry keeps its SOP Instance UID, so storing it twice in a
    PACS replaces instead of duplicating.
    """
    digest = hashlib.sha256("\x00".join(("medloop", *parts)).encode("utf-8")).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def _rgb(color: str) -> tuple[int, int, int]:
    value = color.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def segment_descriptions(labels: LabelSet, model_version: str) -> list[SegmentDescription]:
    """One segment per project label (numbered by its value), made by medloop ``model_version``."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algorithm = hd.AlgorithmIdentificationSequence(
        name="medloop",
        family=codes.cid7162.ArtificialIntelligence,
        version=model_version,
        source="medloop",
    )
    return [
        hd.seg.SegmentDescription(
            segment_number=label.value,
            segment_label=label.name,
            segmented_property_category=codes.cid7150.Tissue,
            segmented_property_type=hd.sr.CodedConcept(
                value=f"L{label.value}", scheme_designator=LABEL_SCHEME, meaning=label.name[:64]
            ),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            display_color=hd.color.CIELabColor.from_rgb(*_rgb(label.color)),
        )
        for label in labels.labels
    ]


def one_frame_per_seg(source: Dataset) -> bool:
    """Whether each frame of ``source`` needs a SEG of its own.

    One SEG covers several frames only when each frame has its own position
    (enhanced multi-frame images). A multi-frame image without per-frame geometry
    (an ultrasound cine loop, a legacy image with ``NumberOfFrames``) gets one SEG
    per frame.
    """
    frames = int(source.get("NumberOfFrames") or 1)
    if frames == 1:
        return False
    per_frame = source.get("PerFrameFunctionalGroupsSequence") or []
    positioned = len(per_frame) == frames and all(
        "PlanePositionSequence" in item for item in per_frame
    )
    return not positioned


def _one_frame_view(source: Dataset, frame: int) -> Dataset:
    """``source`` as if it had only ``frame`` (its own elements: the source is not touched)."""
    skip = {"NumberOfFrames", "PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"}
    view = Dataset()
    for elem in source:
        if elem.keyword not in skip and elem.tag != 0x7FE00010:
            view.add(copy.deepcopy(elem))
    if hasattr(source, "file_meta"):
        view.file_meta = copy.deepcopy(source.file_meta)
    view.NumberOfFrames = 1
    per_frame = source.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame < len(per_frame):
        view.PerFrameFunctionalGroupsSequence = [copy.deepcopy(per_frame[frame])]
    shared = source.get("SharedFunctionalGroupsSequence")
    view.SharedFunctionalGroupsSequence = [copy.deepcopy(shared[0]) if shared else Dataset()]
    item = view.SharedFunctionalGroupsSequence[0]
    measures = item.get("PixelMeasuresSequence")
    if not measures or "PixelSpacing" not in measures[0]:
        # highdicom writes and reads back a spacing and thickness for a multi-frame
        # source; without them the image is in pixel units: 1 per pixel says so.
        pixel = Dataset()
        pixel.PixelSpacing = list(source.get("PixelSpacing") or [1, 1])
        pixel.SliceThickness = source.get("SliceThickness") or 1
        item.PixelMeasuresSequence = [pixel]
    return view


def _point_at_frame(seg: Dataset, frame: int) -> None:
    """Make every derivation reference of a one-frame SEG name source frame ``frame``."""
    for item in seg.get("PerFrameFunctionalGroupsSequence") or []:
        for derivation in item.get("DerivationImageSequence") or []:
            sources = [copy.deepcopy(src) for src in derivation.get("SourceImageSequence") or []]
            for src in sources:  # copies: highdicom shares items with other sequences
                src.ReferencedFrameNumber = frame + 1
            derivation.SourceImageSequence = sources


def build_seg(
    source: Dataset,
    label_maps: Mapping[int, np.ndarray],
    labels: LabelSet,
    *,
    model_version: str,
    sop_instance_uid: str,
    series_instance_uid: str,
    series_number: int = 9901,
    instance_number: int = 1,
    software_version: str = "",
) -> Dataset:
    """A DICOM SEG of one source instance.

    Args:
        source: the source instance's dataset (pixel data not needed).
        label_maps: ``{frame: (H, W) label map}`` with values ``0..K``; frames from 0.
            Frames of a multi-frame source left out are written as empty.
        labels: the project's labels: one segment per label, numbered by its value.
        model_version: the model version that made the label maps.
        sop_instance_uid: the SEG's SOP Instance UID (see :func:`deterministic_uid`).
        series_instance_uid: the SEG's series.
        series_number: the SEG series' number.
        instance_number: the SEG's number in its series.
        software_version: medloop's version, for the equipment module.

    Returns:
        The Segmentation dataset (BINARY, explicit VR little endian).

    Raises:
        MaskError: no label map, a frame outside the source, a shape or label that
            does not fit, or several frames of a source that needs
            :func:`one_frame_per_seg`.
    """
    frames = int(source.get("NumberOfFrames") or 1)
    args = (labels, model_version, sop_instance_uid, series_instance_uid)
    numbers = (series_number, instance_number, software_version)
    if not one_frame_per_seg(source):
        return _build(source, label_maps, *args, *numbers)
    if len(label_maps) != 1:
        raise MaskError("this multi-frame source has no patient geometry: build one SEG per frame")
    ((frame, label_map),) = label_maps.items()
    if not 0 <= frame < frames:
        raise MaskError(f"frame {frame} is outside the source's {frames} frame(s)")
    seg = _build(_one_frame_view(source, frame), {0: label_map}, *args, *numbers)
    _point_at_frame(seg, frame)
    return seg


def _build(
    source: Dataset,
    label_maps: Mapping[int, np.ndarray],
    labels: LabelSet,
    model_version: str,
    sop_instance_uid: str,
    series_instance_uid: str,
    series_number: int,
    instance_number: int,
    software_version: str,
) -> Dataset:
    frames = int(source.get("NumberOfFrames") or 1)
    shape = (int(source.Rows), int(source.Columns))
    if not label_maps:
        raise MaskError("a SEG needs at least one label map")
    stack = np.zeros((frames, *shape), dtype=np.uint8)
    for frame, label_map in label_maps.items():
        if not 0 <= frame < frames:
            raise MaskError(f"frame {frame} is outside the source's {frames} frame(s)")
        if label_map.shape != shape:
            raise MaskError(f"label map is {label_map.shape}, the source image is {shape}")
        if label_map.size and int(label_map.max()) > labels.max_value:
            raise MaskError(f"label {int(label_map.max())} is not one of the project's labels")
        stack[frame] = label_map
    return segmentation(
        [source],
        stack if frames > 1 else stack[0],
        labels,
        model_version=model_version,
        sop_instance_uid=sop_instance_uid,
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        instance_number=instance_number,
        software_version=software_version,
    )


def segmentation(
    sources: Sequence[Dataset],
    pixel_array: np.ndarray,
    labels: LabelSet,
    *,
    model_version: str,
    sop_instance_uid: str,
    series_instance_uid: str,
    series_number: int,
    instance_number: int,
    software_version: str,
    omit_empty_frames: bool = False,
) -> Dataset:
    """A BINARY highdicom Segmentation of ``sources`` with medloop's segments and identity.

    Args:
        sources: the source datasets (pixel data not needed).
        pixel_array: label values ``0..K``: ``(rows, columns)`` for one single-frame
            source, else ``(frames, rows, columns)``, frame ``i`` on the ``i``-th source
            frame (of one multi-frame source, or of the single-frame sources in order).
        omit_empty_frames: leave frames without any segment out (every source is still
            referenced).
    """
    import highdicom as hd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg = hd.seg.Segmentation(
            source_images=list(sources),
            pixel_array=pixel_array,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=segment_descriptions(labels, model_version),
            series_instance_uid=series_instance_uid,
            series_number=series_number,
            sop_instance_uid=sop_instance_uid,
            instance_number=instance_number,
            manufacturer=MANUFACTURER,
            manufacturer_model_name="medloop segmentation",
            software_versions=software_version or model_version,
            device_serial_number="0",
            content_label="MEDLOOP",
            content_description=f"medloop {model_version}"[:64],
            series_description=f"medloop {model_version}"[:64],
            omit_empty_frames=omit_empty_frames,
        )
    thickness = sources[0].get("SliceThickness") or 1
    for shared in seg.get("SharedFunctionalGroupsSequence") or []:
        for item in shared.get("PixelMeasuresSequence") or []:
            if "SliceThickness" not in item:  # readers (highdicom too) require it
                item.SliceThickness = thickness
    return seg


def encode_dataset(ds: Dataset) -> bytes:
    """A dataset as DICOM file bytes (preamble, meta and all)."""
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def is_seg(ds: Dataset) -> bool:
    """Whether a dataset is a DICOM Segmentation."""
    return str(ds.get("SOPClassUID", "")) in SEG_SOP_CLASS_UIDS
