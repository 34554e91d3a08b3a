"""The one settings object. Read once by an entry point (``Settings()``) and passed down.

Values come from arguments, then ``MEDLOOP_*`` environment variables, then defaults.
Nothing else in medloop reads the environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Server and worker settings.

    Attributes:
        data_dir: where the database (SQLite by default) and the blobs (images, masks, model
            weights) live.
        database_url: SQLAlchemy URL; default ``sqlite:///<data_dir>/medloop.db``.
        host, port: where ``medloop serve`` listens.
        behind_proxy: allow a non-loopback host without TLS (TLS ends at a proxy).
        tls_certfile, tls_keyfile: serve HTTPS directly.
        max_upload_bytes: uploads over this answer 413, read in chunks, never whole.
        max_image_pixels: images with more pixels are refused before decoding.
        analysis_threads: threads that load images and store results for the API; the
            model itself runs in one thread that batches whatever analyses wait together.
        device: ``cpu``, ``cuda`` or ``None`` (auto).
        job_heartbeat_s: how often a running job proves it is alive.
        job_stale_s: a running job without a heartbeat for this long is taken as dead.
        worker_enabled: run the durable job worker inside the server process.
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
    behind_proxy: bool = False
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    max_upload_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = 100_000_000
    analysis_threads: int = 8
    device: str | None = None
    job_heartbeat_s: float = 5.0
    job_stale_s: float = 60.0
    worker_enabled: bool = True
    person_token_days: float = Field(default=90.0, ge=0.0, le=3650.0)
    max_import_bytes: int = Field(default=2 * 1024 * 1024 * 1024, ge=1024)

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if self.database_url is None:
            self.database_url = f"sqlite:///{(self.data_dir / 'medloop.db').resolve()}"
        return self

    @property
    def db_url(self) -> str:
        assert self.database_url is not None
        return self.database_url

    @property
    def is_loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")
