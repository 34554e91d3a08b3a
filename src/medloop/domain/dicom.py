"""A project's DICOM settings: its DICOMweb server and de-identification on ingest (plain pydantic).

Kept in ``projects.dicom`` as JSON. Secrets (the PACS password or token, the
de-identification key) are stored there and never sent back: :meth:`DicomSettings.public`
masks them.

::

    {"dicomweb": {"url": "http://pacs:8042/dicom-web", "auth": {"kind": "basic",
                  "username": "medloop", "password": "..."}, "poll_interval_s": 60},
     "deidentify": {"enabled": true, "key": "<hex>"}}
"""

from __future__ import annotations

import secrets
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from medloop.errors import ConfigError

__all__ = ["DeidentifySettings", "DicomSettings", "DicomwebAuth", "DicomwebSettings"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DicomwebAuth(_Strict):
    """How medloop authenticates to the DICOMweb server."""

    kind: Literal["none", "basic", "bearer"] = "none"
    username: str | None = Field(default=None, max_length=200)
    password: str | None = Field(default=None, max_length=1000)
    token: str | None = Field(default=None, max_length=4000)


class DicomwebSettings(_Strict):
    """A DICOMweb server (QIDO-RS, WADO-RS, STOW-RS) to analyse new instances from."""

    url: str = Field(min_length=1, max_length=1000)
    enabled: bool = True
    auth: DicomwebAuth = Field(default_factory=DicomwebAuth)
    poll_interval_s: float = Field(default=60.0, ge=1.0, le=86_400.0)
    batch_size: int = Field(default=20, ge=1, le=1000)
    """Instances fetched and analysed per sync run."""
    modalities: list[str] = Field(default_factory=list, max_length=50)
    """Only analyse these modalities (empty: all images)."""
    study_date_from: str | None = Field(default=None, pattern=r"^\d{8}$")
    """Only look at studies from this date on (``YYYYMMDD``), to keep QIDO queries small."""
    store_seg: bool = True
    """Store each result back as DICOM SEG (STOW-RS)."""
    timeout_s: float = Field(default=30.0, gt=0.0, le=600.0)
    max_attempts: int = Field(default=8, ge=1, le=100)
    """Failures (other than the PACS being unreachable) before an instance is given up."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")


class DeidentifySettings(_Strict):
    """De-identification of DICOM uploads before anything is stored."""

    enabled: bool = False
    key: str = Field(default="", max_length=128)
    """Secret that makes pseudonyms consistent within the project (generated once)."""


class DicomSettings(_Strict):
    """Everything in ``projects.dicom``."""

    dicomweb: DicomwebSettings | None = None
    deidentify: DeidentifySettings = Field(default_factory=DeidentifySettings)

    @classmethod
    def load(cls, raw: dict[str, Any] | None) -> DicomSettings:
        """Parse stored settings.

        Raises:
            ConfigError: they are invalid.
        """
        try:
            return cls.model_validate(raw or {})
        except ValidationError as err:
            raise ConfigError(f"invalid DICOM settings: {err.errors()[0]['msg']}") from err

    def with_key(self) -> DicomSettings:
        """These settings with a de-identification key, made now if there is none."""
        if self.deidentify.key:
            return self
        deid = self.deidentify.model_copy(update={"key": secrets.token_hex(32)})
        return self.model_copy(update={"deidentify": deid})

    def merged_secrets(self, old: DicomSettings) -> DicomSettings:
        """These settings, keeping ``old``'s password, token and key where none is given."""
        out = self
        if self.dicomweb is not None and old.dicomweb is not None:
            auth, old_auth = self.dicomweb.auth, old.dicomweb.auth
            keep = {
                k: getattr(old_auth, k)
                for k in ("password", "token")
                if getattr(auth, k) is None and auth.kind == old_auth.kind
            }
            if keep:
                dicomweb = self.dicomweb.model_copy(update={"auth": auth.model_copy(update=keep)})
                out = out.model_copy(update={"dicomweb": dicomweb})
        if not out.deidentify.key and old.deidentify.key:
            out = out.model_copy(
                update={"deidentify": out.deidentify.model_copy(update={"key": old.deidentify.key})}
            )
        return out

    def public(self) -> dict[str, Any]:
        """The settings without secrets (what the API shows)."""
        data = self.model_dump()
        if data.get("dicomweb"):
            auth = data["dicomweb"]["auth"]
            for secret in ("password", "token"):
                auth[f"has_{secret}"] = bool(auth.pop(secret))
        data["deidentify"].pop("key", None)
        return data
