"""DICOM beyond reading pixels: SEG out and back in, DICOMweb sync, de-identification.

Modules import highdicom, dicomweb-client and dicom-anonymizer lazily where they can,
so importing :mod:`medloop.dicom` stays light.
"""
