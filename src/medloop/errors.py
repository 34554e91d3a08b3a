"""The domain exception tree. No HTTP codes here; interfaces map these to theirs.

::

    MedloopError
     ├── InputError                 the caller's data is wrong (maps to 4xx / CLI exit 2)
     │    ├── ImageReadError        unreadable, truncated, unsupported or absurd image
     │    ├── MaskError             mask of the wrong size, mode or labels
     │    ├── DatasetError          unpaired files, empty dataset, bad manifest
     │    ├── ConfigError           invalid settings or options
     │    │    └── InvalidSettings  settings or options that do not validate (API: 422)
     │    ├── UploadTooLarge        an upload over the size limit (nothing stored)
     │    ├── TooManyFrames         an upload with more frames or slices than the project allows
     │    └── GuidanceError         clicks or a box that do not fit the image or the labels
     ├── RegistryError              model registry problems
     │    ├── VersionNotFound       no such model version
     │    └── NoProductionModel     nothing is promoted yet
     ├── TrainingError              training could not run (e.g. nothing to train on)
 │    └── TrainingInterrupted   stopped before the end; started again, it resumes
     ├── NotFoundError              no such resource (or not visible to the caller)
     ├── ConflictError              the resource's state forbids the request
     ├── PermissionDeniedError      the caller's role does not allow it
     ├── TooMuchWork                the caller has too much work waiting; try again later
     └── BlobCorrupt                a stored blob is missing or its bytes changed (server-side)
"""

from __future__ import annotations

__all__ = [
    "BlobCorrupt",
    "ConfigError",
    "ConflictError",
    "DatasetError",
    "GuidanceError",
    "ImageReadError",
    "InputError",
    "InvalidSettings",
    "MaskError",
    "MedloopError",
    "NoProductionModel",
    "NotFoundError",
    "PermissionDeniedError",
    "RegistryError",
    "TooManyFrames",
    "TooMuchWork",
    "TrainingError",
    "TrainingInterrupted",
    "UploadTooLarge",
    "VersionNotFound",
]


class MedloopError(Exception):
    """Base class of every error medloop raises on purpose."""


class InputError(MedloopError):
    """The caller's input is wrong; the message says what to fix."""


class ImageReadError(InputError):
    """An image could not be read (not an image, truncated, unsupported, too large)."""


class MaskError(InputError):
    """A mask does not fit its image or the project's labels."""


class DatasetError(InputError):
    """A dataset folder or manifest is malformed (unpaired files, empty, bad columns)."""


class ConfigError(InputError):
    """A configuration value is invalid."""


class InvalidSettings(ConfigError):
    """Settings or options that do not validate (each bad field named); the API answers 422,
    as it does for a request body that does not validate."""


class UploadTooLarge(InputError):
    """An upload is larger than the configured limit; nothing was stored."""


class TooManyFrames(InputError):
    """An image with more frames or slices than one request may bring; nothing was stored."""


class GuidanceError(InputError):
    """Clicks or a box that do not fit the image or the project's labels; nothing was stored."""


class RegistryError(MedloopError):
    """The model registry cannot do what was asked."""


class VersionNotFound(RegistryError):
    """The requested model version does not exist."""


class NoProductionModel(RegistryError):
    """No model version has been promoted to production yet."""


class TrainingError(MedloopError):
    """Training or fine-tuning cannot run."""


class TrainingInterrupted(TrainingError):
    """A training run was stopped before its last step; its checkpoint is kept for a resume."""


class NotFoundError(MedloopError):
    """A resource (project, image, analysis, job, ...) does not exist or is not visible."""


class ConflictError(MedloopError):
    """The request conflicts with the resource's state (e.g. cancelling a finished job)."""


class PermissionDeniedError(MedloopError):
    """The caller's role does not allow this action."""


class TooMuchWork(MedloopError):
    """The caller already has as much work waiting or running as one caller may."""


class BlobCorrupt(MedloopError):
    """A stored blob is missing or its bytes no longer match its sha256."""
