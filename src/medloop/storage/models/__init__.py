"""The database tables (SQLAlchemy 2.0 declarative). Alembic migrations create them.

Ids are 32-character hex strings (``uuid4().hex``), except the integer sequences of
the audit log and the model events. Every timestamp is timezone-aware UTC (stored
naive-UTC on SQLite). Rows never leave :mod:`medloop.storage`: repositories turn them
into the records of :mod:`medloop.domain.records`.
"""

from medloop.domain.jobs import FINISHED_STATES, JOB_KINDS, JOB_STATES, LEARNING_KINDS
from medloop.storage.models.base import Base, UTCDateTime, new_id, utcnow
from medloop.storage.models.core import (
    OUTCOMES,
    ROLES,
    SPLITS,
    USER_KINDS,
    Analysis,
    ApiToken,
    AuditEvent,
    Correction,
    Image,
    Project,
    ReferencePair,
    User,
)
from medloop.storage.models.dicom import (
    DICOM_INSTANCE_KINDS,
    DICOM_INSTANCE_STATES,
    DicomInstance,
    Pseudonym,
)
from medloop.storage.models.erasure import (
    ERASED_KINDS,
    ERASURE_SCOPES,
    ERASURE_STATES,
    ErasedItem,
    Erasure,
)
from medloop.storage.models.jobs import CURVE_METRICS, Job, JobCurvePoint
from medloop.storage.models.versions import (
    MODEL_EVENTS,
    VERSION_STATUSES,
    ModelEvent,
    ModelFile,
    ModelVersion,
    TrainingCheckpoint,
)

__all__ = [
    "CURVE_METRICS",
    "DICOM_INSTANCE_KINDS",
    "DICOM_INSTANCE_STATES",
    "ERASED_KINDS",
    "ERASURE_SCOPES",
    "ERASURE_STATES",
    "FINISHED_STATES",
    "JOB_KINDS",
    "JOB_STATES",
    "LEARNING_KINDS",
    "MODEL_EVENTS",
    "OUTCOMES",
    "ROLES",
    "SPLITS",
    "USER_KINDS",
    "VERSION_STATUSES",
    "Analysis",
    "ApiToken",
    "AuditEvent",
    "Base",
    "Correction",
    "DicomInstance",
    "ErasedItem",
    "Erasure",
    "Image",
    "Job",
    "JobCurvePoint",
    "ModelEvent",
    "ModelFile",
    "ModelVersion",
    "Project",
    "Pseudonym",
    "ReferencePair",
    "TrainingCheckpoint",
    "UTCDateTime",
    "User",
    "new_id",
    "utcnow",
]
