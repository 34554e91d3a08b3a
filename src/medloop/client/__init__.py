"""``medloop.client``: the device-side SDK for a medloop server (httpx + pydantic, no torch).

Example::

    from medloop.client import MedloopClient, NotFound

    with MedloopClient("https://medloop.example.org", token="...") as c:
        a = c.analyze("knee", file="scan.png")
        print(a.model_version, a.uncertainty, [(m.name, m.area_px) for m in a.measurements])
        fix = c.correct("knee", a.id, "corrected.png")
        print(fix.dice_vs_prediction, fix.corrections_until_finetune)

Importing this package loads httpx and pydantic only: never torch, numpy, FastAPI,
SQLAlchemy or the rest of medloop (a test checks).
"""

from medloop.client.client import FileInput, MedloopClient
from medloop.client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    InvalidArgument,
    JobTimeout,
    MedloopClientError,
    NotFound,
    ServerError,
    TooManyRequests,
    TransportError,
    Unauthorized,
    UnexpectedResponse,
)
from medloop.client.models import (
    AcceptanceRule,
    AnalysisOut,
    AuditEventOut,
    CorrectionOut,
    Health,
    ImageOut,
    JobIn,
    JobKind,
    JobOut,
    JobState,
    Label,
    Learning,
    Me,
    MeasurementOut,
    ModelVersionOut,
    Page,
    ProjectIn,
    ProjectOut,
    ReferenceOut,
    ReviewItemOut,
    Training,
)

__all__ = [
    "AcceptanceRule",
    "AnalysisOut",
    "ApiError",
    "AuditEventOut",
    "BadRequest",
    "Conflict",
    "CorrectionOut",
    "FileInput",
    "Forbidden",
    "Health",
    "ImageOut",
    "InvalidArgument",
    "JobIn",
    "JobKind",
    "JobOut",
    "JobState",
    "JobTimeout",
    "Label",
    "Learning",
    "Me",
    "MeasurementOut",
    "MedloopClient",
    "MedloopClientError",
    "ModelVersionOut",
    "NotFound",
    "Page",
    "ProjectIn",
    "ProjectOut",
    "ReferenceOut",
    "ReviewItemOut",
    "ServerError",
    "TooManyRequests",
    "Training",
    "TransportError",
    "Unauthorized",
    "UnexpectedResponse",
]
