"""JSON shapes of running a server from the API: users and tokens, erasure.

Like :mod:`medloop.api.schemas`, mirrored by the client SDK (``medloop.client.admin_models``)
without importing it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from medloop.api.schemas import ImageOut, JobOut, _Strict

__all__ = [
    "ErasureIn",
    "ErasureOut",
    "ErasurePreviewIn",
    "ErasurePreviewOut",
    "ErasureRequestOut",
    "NewTokenOut",
    "NewUserOut",
    "TokenIn",
    "TokenOut",
    "UserIn",
    "UserOut",
    "UserPatch",
]


_NAME = r"^[^\x00-\x1f\x7f]+$"


class UserIn(_Strict):
    """``POST /api/v1/users``: a person or device, its role and scope, and its first token.

    ``expires_in_days`` left out: the kind's default (a person's tokens expire after the
    server's ``person_token_days``; a device's never); ``null``: never.
    """

    name: str = Field(min_length=1, max_length=200, pattern=_NAME)
    role: Literal["viewer", "annotator", "admin"]
    kind: Literal["person", "device"] = "person"
    project: str | None = Field(default=None, max_length=200)
    """The one project the user may see (id or name); left out: every project."""
    token_name: str = Field(default="initial", max_length=100)
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)


class UserPatch(_Strict):
    """``PATCH /api/v1/users/{user}``: role, project scope (``null``: every project), disabled."""

    role: Literal["viewer", "annotator", "admin"] | None = None
    project: str | None = Field(default=None, max_length=200)
    disabled: bool | None = None


class TokenIn(_Strict):
    """``POST /api/v1/users/{user}/tokens``: another token (``expires_in_days`` as in :class:`UserIn`)."""

    name: str = Field(default="", max_length=100)
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)


class UserOut(BaseModel):
    id: str
    name: str
    role: str
    kind: str
    project_id: str | None
    disabled: bool
    created_at: datetime
    last_used_at: datetime | None


class TokenOut(BaseModel):
    id: str
    user_id: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    created_by: str | None
    active: bool


class NewTokenOut(TokenOut):
    """A token just made: ``token`` is its secret, shown this once (only its sha256 is kept)."""

    token: str


class NewUserOut(BaseModel):
    user: UserOut
    token: NewTokenOut


class ErasurePreviewIn(_Strict):
    """What to erase: a patient (Patient ID), a study (Study Instance UID) or one image (its id).

    A Patient ID or Study UID as it was before de-identification on ingest is found too.
    """

    scope: Literal["patient", "study", "image"]
    value: str = Field(min_length=1, max_length=255)


class ErasureIn(ErasurePreviewIn):
    """``POST .../erasures``: what to erase, and why (kept in the audit trail)."""

    reason: str = Field(min_length=1, max_length=2000)


class ErasurePreviewOut(BaseModel):
    scope: str
    counts: dict[str, int]
    """Rows that would be deleted: images, references, analyses, corrections."""
    images: list[ImageOut]
    """Some of the images (at most 20)."""
    versions: list[str]
    """Model versions that trained on any of it: they stay, marked as having seen erased data."""


class ErasureOut(BaseModel):
    id: str
    project_id: str
    scope: str
    value_sha256: str
    reason: str
    actor_name: str
    job_id: str | None
    state: str
    counts: dict[str, int]
    created_at: datetime
    finished_at: datetime | None


class ErasureRequestOut(BaseModel):
    erasure: ErasureOut
    job: JobOut
