"""A project's DICOM settings: its DICOMweb server and de-identification on ingest (plain pydantic).

Kept in ``projects.dicom`` as JSON. The secrets (the PACS password or token, the
de-identification key) are stored only sealed by a :class:`~medloop.domain.secrets.SecretBox`,
together, in ``sealed``; they are never sent back (:meth:`DicomSettings.public` masks
them). Credentials in the URL are refused: they belong in ``auth``.

::

    {"dicomweb": {"url": "http://pacs:8042/dicom-web", "auth": {"kind": "basic",
                  "username": "medloop"}, "poll_interval_s": 60},
     "deidentify": {"enabled": true},
     "sealed": "gAAAAAB..."}       # {"password": ..., "token": ..., "key": ...}, encrypted
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from medloop.domain.secrets import SecretBox
from medloop.errors import ConfigError

__all__ = [
    "DeidentifySettings",
    "DicomSettings",
    "DicomwebAuth",
    "DicomwebSettings",
    "dicomweb_host_allowed",
    "require_allowed_host",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
    except ValueError:
        port = 0
    return host, port


def require_allowed_host(url: str, allowed: Iterable[str]) -> None:
    """Raise ``ConfigError`` unless :func:`dicomweb_host_allowed`."""
    allowed = list(allowed)
    if not dicomweb_host_allowed(url, allowed):
        raise ConfigError(
            f"the server does not allow DICOMweb host {urlsplit(url).netloc.rpartition('@')[2]!r}"
            f" (allowed: {', '.join(allowed) or 'none'}); its operator adds it with --dicomweb-host"
        )


def _same_server(a: str, b: str) -> bool:
    return urlsplit(a).scheme == urlsplit(b).scheme and _host_port(a) == _host_port(b)


def dicomweb_host_allowed(url: str, allowed: Iterable[str]) -> bool:
    """Whether ``url`` points at a host the server operator allows.

    Each entry is ``host`` (any port), ``host:port``, or ``*`` (any host). Host names
    are compared as written (no DNS lookup), case-insensitively.
    """
    host, port = _host_port(url)
    for entry in allowed:
        entry = entry.strip().lower()
        if entry == "*":
            return True
        if entry.startswith("["):  # [::1]:8042
            name, _, rest = entry[1:].partition("]")
            entry_port = rest.lstrip(":")
        elif entry.count(":") == 1:
            name, _, entry_port = entry.partition(":")
        else:
            name, entry_port = entry, ""
        if name == host and (not entry_port or entry_port == str(port)):
            return True
    return False


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
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL, got {_without_userinfo(value)!r}")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "must not hold credentials (user:password@): give them in auth "
                '({"kind": "basic", "username", "password"} or {"kind": "bearer", "token"})'
            )
        return value.rstrip("/")


def _without_userinfo(url: str) -> str:
    """``url`` without ``user:password@``."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc))


def _legacy_url_credentials(raw: dict[str, Any]) -> dict[str, Any]:
    """Settings stored before URLs with credentials were refused: move them into ``auth``."""
    web = raw.get("dicomweb")
    if not isinstance(web, dict) or not isinstance(web.get("url"), str):
        return raw
    parts = urlsplit(web["url"])
    if "@" not in parts.netloc:
        return raw
    web = {**web, "url": _without_userinfo(web["url"])}
    auth = dict(web.get("auth") or {})
    if auth.get("kind", "none") == "none" and parts.username:
        auth.update(kind="basic", username=parts.username, password=parts.password or "")
    web["auth"] = auth
    return {**raw, "dicomweb": web}


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
    def load(cls, raw: dict[str, Any] | None, box: SecretBox | None) -> DicomSettings:
        """Parse stored settings, opening their secrets with ``box``.

        With ``box=None`` the secrets are left out (for readers that need none, e.g. the
        poll interval). Settings stored before secrets were sealed, or with credentials
        in the URL, are read as well (:meth:`stored` writes them the current way).

        Raises:
            ConfigError: they are invalid, or sealed with a key the box does not hold.
        """
        data = _legacy_url_credentials(dict(raw or {}))
        sealed = data.pop("sealed", None)
        if sealed is not None and box is not None:
            opened = json.loads(box.open(str(sealed)))
            web = data.get("dicomweb")
            if isinstance(web, dict):
                auth = dict(web.get("auth") or {})
                for name in ("password", "token"):
                    if opened.get(name) is not None:
                        auth[name] = opened[name]
                data["dicomweb"] = {**web, "auth": auth}
            if opened.get("key"):
                data["deidentify"] = {**dict(data.get("deidentify") or {}), "key": opened["key"]}
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise ConfigError(f"invalid DICOM settings: {err.errors()[0]['msg']}") from err

    def stored(self, box: SecretBox) -> dict[str, Any]:
        """The JSON to store: the settings with their secrets sealed by ``box``, in ``sealed``."""
        data = self.model_dump()
        hidden: dict[str, str] = {}
        if data.get("dicomweb"):
            auth = data["dicomweb"]["auth"]
            for name in ("password", "token"):
                value = auth.pop(name)
                if value is not None:
                    hidden[name] = value
        key = data["deidentify"].pop("key")
        if key:
            hidden["key"] = key
        if hidden:
            data["sealed"] = box.seal(json.dumps(hidden, sort_keys=True))
        return data

    @staticmethod
    def needs_sealing(raw: dict[str, Any] | None) -> bool:
        """Whether stored settings still hold a secret in plain text (or a URL with credentials)."""
        data = raw or {}
        web = data.get("dicomweb") or {}
        auth = web.get("auth") or {}
        return bool(
            auth.get("password")
            or auth.get("token")
            or (data.get("deidentify") or {}).get("key")
            or "@" in urlsplit(str(web.get("url", ""))).netloc
        )

    def with_key(self) -> DicomSettings:
        """These settings with a de-identification key, made now if there is none."""
        if self.deidentify.key:
            return self
        deid = self.deidentify.model_copy(update={"key": secrets.token_hex(32)})
        return self.model_copy(update={"deidentify": deid})

    def merged_secrets(self, old: DicomSettings) -> DicomSettings:
        """These settings, keeping ``old``'s password, token and key where none is given.

        A password or token is kept only for the same server (scheme, host and port):
        pointing the project at another host never sends it the stored credentials.
        """
        out = self
        if (
            self.dicomweb is not None
            and old.dicomweb is not None
            and _same_server(self.dicomweb.url, old.dicomweb.url)
        ):
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
