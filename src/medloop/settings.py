"""The one settings object. Read once by an entry point (``Settings()``) and passed down.

Values come from arguments, then ``MEDLOOP_*`` environment variables, then defaults.
Nothing else in medloop reads the environment.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings"]


def _split(value: object) -> object:
    """``"a, b"`` -> ``["a", "b"]`` (lists from the command line pass through)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Server and worker settings.

    Attributes:
        data_dir: where the database (SQLite by default), the blobs (images, masks, model
            weights) and the secret key file live.
        database_url: SQLAlchemy URL; default ``sqlite:///<data_dir>/medloop.db``.
        host, port: where ``medloop serve`` listens.
        trusted_proxies: addresses or networks (``10.0.0.5``, ``10.0.0.0/24``) of the
            reverse proxies whose ``X-Forwarded-For`` / ``-Proto`` are believed. Any
            other peer's headers are ignored, so the client address in the audit trail
            cannot be forged. Non-empty also allows a non-loopback host without TLS.
        tls_certfile, tls_keyfile: serve HTTPS directly.
        max_upload_bytes: uploads over this answer 413, read in chunks, never whole.
        max_image_pixels: images with more pixels are refused before decoding.
        max_queued_analyses: analyses (a frame or slice each) one user may have waiting or
            running at once; beyond, 429.
        analysis_threads: threads that load images and store results for the API; the
            model itself runs in one thread that batches whatever analyses wait together.
        device: ``cpu``, ``cuda`` or ``None`` (auto).
        job_heartbeat_s: how often a running job proves it is alive.
        job_stale_s: a running job without a heartbeat for this long is taken as dead.
        worker_enabled: run the durable job worker inside the server process.
        secret_key: Fernet keys (comma-separated, the first encrypts) for the secrets
            stored in the database; default: the key file.
        secret_key_file: where the keys are kept when ``secret_key`` is not given
            (default ``<data_dir>/secret.key``, created with mode 0600).
        dicomweb_hosts: ``host`` or ``host:port`` of the DICOMweb servers projects may
            connect to (``*``: any). Empty: none, so an admin cannot make the server
            reach arbitrary hosts.
        auth_failures: failed authentications one client may make (``limits``
            notation), beyond which it gets 429 until the window has passed.
        auth_audit_rate: denied authentications of one client recorded in the audit
            trail (the rest are only counted in ``/metrics``).
        auth_audit_rate_total: the same for all clients together.
        header_timeout_s: a request's head (request line and headers) must arrive
            within this many seconds of the connection opening or of the previous
            response; otherwise the connection is closed.
        body_timeout_s: the longest wait for the next part of a request body (408).
        keepalive_timeout_s: an idle keep-alive connection is closed after this.
        max_connections: open connections beyond this are answered 503.
        api_docs: serve ``/docs`` (Swagger UI, bundled) and ``/openapi.json``.
        serving_runtime: ``auto`` (ONNX Runtime on a CPU, PyTorch on a GPU), ``onnx`` or
            ``torch``.
        job_resend_s: distributed mode: a queued job is sent to the broker again after
            this long (the broker may have lost it; a duplicate is never run twice).
        broker_url: a Redis URL (``redis://host:6379/0``) selects the distributed mode:
            jobs stay rows in the database and Celery carries their ids to
            ``medloop worker`` processes. Unset: everything runs in this process.
        person_token_days: days a person's new token lasts unless an admin chooses
            otherwise (0: no expiry); a device's tokens do not expire by default.
        max_import_bytes: largest zip of reference data (``POST .../reference/import``);
            each image or mask in it is held to ``max_upload_bytes``.
    """

    model_config = SettingsConfigDict(env_prefix="MEDLOOP_", extra="ignore")

    data_dir: Path = Field(default=Path("medloop-data"))
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    max_upload_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = 100_000_000
    max_queued_analyses: int = Field(default=1000, ge=1)
    analysis_threads: int = 8
    device: str | None = None
    job_heartbeat_s: float = 5.0
    job_stale_s: float = 60.0
    worker_enabled: bool = True
    secret_key: SecretStr | None = None
    secret_key_file: Path | None = None
    dicomweb_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    auth_failures: str = "20/minute"
    auth_audit_rate: str = "5/minute"
    auth_audit_rate_total: str = "60/minute"
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    keepalive_timeout_s: float = Field(default=5.0, gt=0)
    max_connections: int = Field(default=1000, ge=1)
    api_docs: bool = False
    serving_runtime: Literal["auto", "onnx", "torch"] = "auto"
    broker_url: str | None = None
    job_resend_s: float = 30.0
    person_token_days: float = Field(default=90.0, ge=0.0, le=3650.0)
    max_import_bytes: int = Field(default=2 * 1024 * 1024 * 1024, ge=1024)

    @field_validator("trusted_proxies", "dicomweb_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as err:
                raise ValueError(
                    f"trusted proxies are IP addresses or networks (10.0.0.5, 10.0.0.0/24), got {item!r}"
                ) from err
        return value

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if self.database_url is None:
            self.database_url = f"sqlite:///{(self.data_dir / 'medloop.db').resolve()}"
        if self.secret_key_file is None:
            self.secret_key_file = self.data_dir / "secret.key"
        return self

    @property
    def db_url(self) -> str:
        assert self.database_url is not None
        return self.database_url

    @property
    def key_file(self) -> Path:
        assert self.secret_key_file is not None
        return self.secret_key_file

    @property
    def behind_proxy(self) -> bool:
        """Whether TLS ends at a trusted reverse proxy."""
        return bool(self.trusted_proxies)

    @property
    def is_loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")
