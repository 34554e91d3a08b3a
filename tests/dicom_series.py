"""Write a volume as a DICOM series (one MR instance per slice, real geometry) for tests."""

from __future__ import annotations

import io
import random

import numpy as np

HIPPOCAMPUS = "/work/shared/data/msd_hippocampus"


def series_files(
    arr: np.ndarray,
    affine: np.ndarray,
    *,
    series_uid: str = "1.2.826.0.1.3680043.8.498.1",
    shuffle: int | None = 0,
) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of one instance per ``arr[:, :, k]`` (``arr`` is ``(X, Y, Z)`` with the
    voxel-to-RAS ``affine``), in a shuffled order (``shuffle``: the seed; ``None``: in order).

    Each instance's pixel rows run along the volume's second axis and its columns along
    the first, with Image Orientation / Position (Patient) in LPS as DICOM has them.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

    to_lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    lps = to_lps @ affine
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    row_dir, col_dir = lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]
    out = []
    for k in range(arr.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = f"{series_uid}.{k + 1}"
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = f"{series_uid}.0", series_uid
        ds.Modality, ds.PatientID, ds.InstanceNumber = "MR", "TEST", k + 1
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row_dir, *col_dir)]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in (lps @ [0, 0, k, 1])[:3]]
        ds.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[0]:.6f}"]
        ds.SliceThickness = f"{spacing[2]:.6f}"
        pixels = np.ascontiguousarray(arr[:, :, k].T.astype(np.int16))
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = pixels.tobytes()
        buf = io.BytesIO()
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
        out.append((f"IM{k:04d}.dcm", buf.getvalue()))
    if shuffle is not None:
        random.Random(shuffle).shuffle(out)
    return out


def hippocampus(case: str = "001") -> tuple[np.ndarray, np.ndarray]:
    """A hippocampus volume (read-only shared data) as int16 ``(X, Y, Z)`` and its affine."""
    import nibabel as nib

    img = nib.load(f"{HIPPOCAMPUS}/images/hippocampus_{case}.nii.gz")
    return np.asarray(img.dataobj).astype(np.int16), np.asarray(img.affine)


def enhanced_file(arr: np.ndarray, affine: np.ndarray, *, seed: int | None = 0) -> bytes:
    """One enhanced MR multi-frame file of ``arr`` (``(X, Y, Z)``, voxel-to-RAS ``affine``):
    a frame per ``arr[:, :, k]`` in a shuffled order (``seed``), each frame's position in
    its functional groups, the orientation and pixel spacing shared."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian

    enhanced_mr = "1.2.840.10008.5.1.4.1.1.4.1"
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    order = list(range(arr.shape[2]))
    if seed is not None:
        random.Random(seed).shuffle(order)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = enhanced_mr, "1.2.3.9.1"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = enhanced_mr, "1.2.3.9.1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = "1.2.3.9", "1.2.3.9.0", "MR"
    shared = Dataset()
    measures, plane = Dataset(), Dataset()
    measures.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[0]:.6f}"]
    measures.SliceThickness = f"{spacing[2]:.6f}"
    cosines = (*(lps[:3, 0] / spacing[0]), *(lps[:3, 1] / spacing[1]))
    plane.ImageOrientationPatient = [f"{v:.6f}" for v in cosines]
    shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = (
        Sequence([measures]),
        Sequence([plane]),
    )
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for k in order:
        item, where = Dataset(), Dataset()
        where.ImagePositionPatient = [f"{v:.6f}" for v in (lps @ [0, 0, k, 1])[:3]]
        item.PlanePositionSequence = Sequence([where])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    frames = np.stack([arr[:, :, k].T for k in order]).astype(np.int16)
    ds.NumberOfFrames = len(order)
    ds.Rows, ds.Columns = frames.shape[1:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PixelData = np.ascontiguousarray(frames).tobytes()
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()
