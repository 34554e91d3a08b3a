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

from medloop.client.admin_models import (
    CurveOut,
    ErasureOut,
    ErasurePreviewOut,
    ErasureRequestOut,
    ImportOut,
    NewTokenOut,
    NewUserOut,
    ReferenceItemOut,
    ReferenceSummaryOut,
    TokenOut,
    UserOut,
)
from medloop.client.client import DEFAULT, FileInput, MedloopClient
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
    AgreementOut,
    AnalysisOut,
    AuditEventOut,
    CorrectionOut,
    EffortOut,
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
from medloop.client.refine_models import ChangedBlock, Click, LabelDiceOut, RefineOut
from medloop.client.volume_models import SliceOut

__all__ = [
    "DEFAULT",
    "AcceptanceRule",
    "AgreementOut",
    "AnalysisOut",
    "ApiError",
    "AuditEventOut",
    "BadRequest",
    "ChangedBlock",
    "Click",
    "Conflict",
    "CorrectionOut",
    "CurveOut",
    "EffortOut",
    "ErasureOut",
    "ErasurePreviewOut",
    "ErasureRequestOut",
    "FileInput",
    "Forbidden",
    "Health",
    "ImageOut",
    "ImportOut",
    "InvalidArgument",
    "JobIn",
    "JobKind",
    "JobOut",
    "JobState",
    "JobTimeout",
    "Label",
    "LabelDiceOut",
    "Learning",
    "Me",
    "MeasurementOut",
    "MedloopClient",
    "MedloopClientError",
    "ModelVersionOut",
    "NewTokenOut",
    "NewUserOut",
    "NotFound",
    "Page",
    "ProjectIn",
    "ProjectOut",
    "ReferenceItemOut",
    "ReferenceOut",
    "ReferenceSummaryOut",
    "RefineOut",
    "ReviewItemOut",
    "ServerError",
    "SliceOut",
    "TokenOut",
    "TooManyRequests",
    "Training",
    "TransportError",
    "Unauthorized",
    "UnexpectedResponse",
    "UserOut",
]
