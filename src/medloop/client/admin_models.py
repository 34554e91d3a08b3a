"""The JSON shapes of running a server from the API: users and tokens, reference data in
bulk, training curves, erasure. Mirrors ``medloop.api.schemas`` without importing it;
answers are parsed leniently (``extra="ignore"``), inputs carry no defaults of their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from medloop.client.models import ApiModel, ImageOut, JobOut, ReferenceOut

__all__ = [
    "CurveOut",
    "ErasureOut",
    "ErasurePreviewOut",
    "ErasureRequestOut",
    "ImportOut",
    "NewTokenOut",
    "NewUserOut",
    "ReferenceItemOut",
    "ReferenceSummaryOut",
    "TokenOut",
    "UserOut",
]


class ReferenceItemOut(ReferenceOut):
    """A reference pair as listed: its image's name and size, and the model versions that
    trained on it (such a pair can only be erased, not deleted). Servers before the Data
    page sent only the pair's fields: the others are then ``None``."""

    filename: str | None = None
    width: int | None = None
    height: int | None = None
    created_at: datetime | None = None
    trained_by: list[str] = Field(default_factory=list)


class ReferenceSummaryOut(ApiModel):
    """How many reference pairs, by split, by group (``""``: none) and by both."""

    total: int
    splits: dict[str, int] = Field(default_factory=dict)
    groups: dict[str, int] = Field(default_factory=dict)
    cells: list[dict[str, Any]] = Field(default_factory=list)


class ImportOut(ApiModel):
    """A queued reference import: its job, and how many pairs the zip holds. The job's
    ``result`` has ``added``, ``present``, ``failed`` and ``errors`` (each refused pair
    with its ``reason``)."""

    job: JobOut
    pairs: int


class CurveOut(ApiModel):
    """A learning job's curve: ``points`` of ``{"step", "metric", "value"}`` with ``metric``
    ``loss`` or ``val_dice``; pass ``last`` as ``after`` to get only newer points."""

    points: list[dict[str, Any]] = Field(default_factory=list)
    last: int = 0


class UserOut(ApiModel):
    """A person or device: role, project scope (``None``: every project), last use."""

    id: str
    name: str
    role: str
    kind: str
    project_id: str | None = None
    disabled: bool = False
    created_at: datetime
    last_used_at: datetime | None = None


class TokenOut(ApiModel):
    """One of a user's tokens (never its secret); ``active``: neither revoked nor expired."""

    id: str
    user_id: str
    name: str = ""
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    created_by: str | None = None
    active: bool


class NewTokenOut(TokenOut):
    """A token just made: ``token`` is the secret, shown this once."""

    token: str


class NewUserOut(ApiModel):
    user: UserOut
    token: NewTokenOut


class ErasurePreviewOut(ApiModel):
    """What an erasure would remove: row counts by kind, some images, and the model
    versions that trained on the data (they stay, marked as having seen erased data)."""

    scope: str
    counts: dict[str, int] = Field(default_factory=dict)
    images: list[ImageOut] = Field(default_factory=list)
    versions: list[str] = Field(default_factory=list)


class ErasureOut(ApiModel):
    """An erasure: who asked, why, its state and what it removed (the identifier is kept
    only as its sha256)."""

    id: str
    project_id: str
    scope: str
    value_sha256: str
    reason: str
    actor_name: str
    job_id: str | None = None
    state: str
    counts: dict[str, int] = Field(default_factory=dict)
    created_at: datetime
    finished_at: datetime | None = None


class ErasureRequestOut(ApiModel):
    erasure: ErasureOut
    job: JobOut
