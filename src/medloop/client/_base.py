"""The SDK's plumbing: the HTTP session, errors from answers, file parts, path segments.

:class:`ClientBase` holds what every group of endpoints uses; the groups
(:mod:`._projects`, :mod:`._analyses`, :mod:`._versions`, :mod:`._admin`) build on it and
:class:`~medloop.client.client.MedloopClient` joins them.
"""

from __future__ import annotations

import mimetypes
import os
import ssl
import warnings
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Self, TypeAlias, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from medloop import __version__
from medloop.client.errors import (
    ApiError,
    InvalidArgument,
    TransportError,
    UnexpectedResponse,
    _describe,
    error_for_status,
)
from medloop.client.models import (
    ApiModel,
)

__all__ = ["API", "DEFAULT", "ClientBase", "FileInput"]

DEFAULT: Literal["default"] = "default"
"""A token's expiry left to the server: a person's default lifetime, a device's none."""

FileInput: TypeAlias = str | os.PathLike[str] | bytes | IO[bytes]
"""A file to upload: a path (``str`` or ``Path``, streamed from disk), bytes, or an open binary file."""

M = TypeVar("M", bound=BaseModel)

API = "/api/v1"
_MAGIC: tuple[tuple[int, bytes, str, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (0, b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (0, b"II*\x00", "image/tiff", ".tif"),
    (0, b"MM\x00*", "image/tiff", ".tif"),
    (0, b"GIF87a", "image/gif", ".gif"),
    (0, b"GIF89a", "image/gif", ".gif"),
    (0, b"BM", "image/bmp", ".bmp"),
    (128, b"DICM", "application/dicom", ".dcm"),
)
_EXTRA_TYPES = {".dcm": "application/dicom", ".dicom": "application/dicom"}
_CHUNK = 1 << 16


def _pair(text: str | None) -> tuple[float, float] | None:
    """``(a, b)`` from a header ``"a,b"``, or None."""
    if not text:
        return None
    a, b = (float(v) for v in text.split(","))
    return a, b


def _sniff(head: bytes) -> tuple[str, str] | None:
    """``(content type, extension)`` from the first bytes of a file, or None."""
    for offset, magic, ctype, ext in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return ctype, ext
    return None


def _seg(value: object, what: str) -> str:
    """One path segment, percent-encoded; refuses empty, ``.`` and ``..``."""
    text = str(value)
    if text in ("", ".", "..") or "\x00" in text:
        raise InvalidArgument(f"{what} {text!r} is not a valid id")
    return quote(text, safe="")


def _set(value: Mapping[str, Any] | ApiModel | None) -> dict[str, Any] | None:
    """Only the fields the caller set (``None`` stays ``None``: not sent)."""
    if value is None:
        return None
    if isinstance(value, ApiModel):
        return value.model_dump(exclude_none=True)
    return dict(value)


def _limits(limit: int | None, offset: int | None) -> dict[str, int]:
    params: dict[str, int] = {}
    if limit is not None:
        if limit < 1:
            raise InvalidArgument(f"limit must be at least 1, got {limit}")
        params["limit"] = limit
    if offset is not None:
        if offset < 0:
            raise InvalidArgument(f"offset must be at least 0, got {offset}")
        params["offset"] = offset
    return params


class ClientBase:
    """Connection, authentication and parsing for one medloop server (see
    :class:`~medloop.client.client.MedloopClient` for the arguments)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        http_client: httpx.Client | None = None,
        verify: bool | str | ssl.SSLContext = True,
    ) -> None:
        base = base_url.strip().rstrip("/")
        if base and not base.lower().startswith(("http://", "https://")):
            raise InvalidArgument(
                f"server URL must start with http:// or https://, got {base_url!r}"
            )
        if not base and http_client is None:
            raise InvalidArgument("a server URL is needed (e.g. https://medloop.example.org)")
        self.base_url = base
        self._token = token.strip() if token else None
        if self._token is not None and any(c in self._token for c in "\r\n\x00"):
            raise InvalidArgument("the token holds a line break or NUL")
        self._owns_http = http_client is None
        if http_client is None:
            http_client = httpx.Client(
                timeout=httpx.Timeout(timeout),
                verify=self._ssl_verify(verify),
                follow_redirects=False,
                headers={"User-Agent": f"medloop-client/{__version__}"},
            )
        self._http = http_client

    @staticmethod
    def _ssl_verify(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
        if isinstance(verify, ssl.SSLContext):
            return verify
        if verify is False:
            warnings.warn(
                "TLS certificate verification is OFF: anyone on the network path can read the "
                "token and the images; pass a CA bundle path as verify= instead",
                RuntimeWarning,
                stacklevel=3,
            )
            return False
        if verify is True:
            return True
        if not Path(verify).is_file():
            raise InvalidArgument(f"CA bundle {verify} does not exist")
        return ssl.create_default_context(cafile=verify)

    def __repr__(self) -> str:  # never shows the token
        return f"MedloopClient({self.base_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (not an ``http_client`` you passed in)."""
        if self._owns_http:
            self._http.close()

    # -- plumbing ------------------------------------------------------------------------

    def _headers(self, auth: bool = True, accept: str = "application/json") -> dict[str, str]:
        headers = {"Accept": accept}
        if auth and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _send(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        accept: str = "application/json",
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        try:
            resp = self._http.request(
                method,
                self._url(path),
                params=params,
                json=json,
                data=data,
                files=files,
                headers=self._headers(auth, accept),
            )
        except (httpx.TransportError, httpx.InvalidURL) as err:
            raise TransportError(f"{method} {self._url(path)} failed: {err}") from err
        if resp.status_code >= 400:
            raise self._api_error(resp)
        return resp

    @staticmethod
    def _api_error(resp: httpx.Response) -> ApiError:
        """The exception for an error answer, from its ``{"error": {...}}`` body or its text."""
        status = resp.status_code
        code = f"http_{status}"
        message = resp.reason_phrase or f"HTTP {status}"
        try:
            body: Any = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            err = body["error"]
            code = str(err.get("code") or code)
            message = str(err.get("message") or message)
        elif isinstance(body, dict) and "detail" in body:
            message = _describe(body["detail"]) or message
        else:
            text = resp.text.strip()
            if text:
                message = text if len(text) <= 500 else text[:500] + "…"
        return error_for_status(status, code, message, resp.headers.get("retry-after"))

    @staticmethod
    def _parse(resp: httpx.Response, model: type[M]) -> M:
        try:
            return model.model_validate_json(resp.content)
        except ValidationError as err:
            raise UnexpectedResponse(
                f"{resp.request.method} {resp.request.url.path}: the answer is not a "
                f"{model.__name__}: {err.errors(include_url=False)[:3]}"
            ) from err

    def _json(self, method: str, path: str, model: type[M], **kw: Any) -> M:
        return self._parse(self._send(method, path, **kw), model)

    @staticmethod
    def _p(project: str) -> str:
        return f"{API}/projects/{_seg(project, 'project')}"

    @contextmanager
    def _files(
        self, fields: Mapping[str, tuple[FileInput, str | None, str]]
    ) -> Iterator[dict[str, tuple[str, bytes | IO[bytes], str]]]:
        """Multipart file fields; paths are opened here and streamed by httpx, then closed.

        ``fields`` maps a form field to ``(source, filename or None, fallback name)``.
        """
        with ExitStack() as stack:
            out: dict[str, tuple[str, bytes | IO[bytes], str]] = {}
            for field, (source, filename, fallback) in fields.items():
                out[field] = self._file_part(source, filename, fallback, stack)
            yield out

    @staticmethod
    def _file_part(
        source: FileInput, filename: str | None, fallback: str, stack: ExitStack
    ) -> tuple[str, bytes | IO[bytes], str]:
        body: bytes | IO[bytes]
        if isinstance(source, bytes | bytearray | memoryview):
            body = bytes(source)
            head = body[:132]
            name = filename
        elif isinstance(source, str | os.PathLike):
            path = Path(source)
            if not path.is_file():
                raise InvalidArgument(f"file {path} does not exist")
            fh = stack.enter_context(path.open("rb"))
            head = fh.read(132)
            fh.seek(0)
            body = fh
            name = filename or path.name
        else:
            body = source
            head = b""
            if source.seekable():
                pos = source.tell()
                head = source.read(132)
                source.seek(pos)
            raw_name = getattr(source, "name", None)
            name = filename or (Path(raw_name).name if isinstance(raw_name, str) else None)
        sniffed = _sniff(head)
        if not name:
            name = fallback + (sniffed[1] if sniffed else "")
        if sniffed:
            ctype = sniffed[0]
        else:
            ext = Path(name).suffix.lower()
            ctype = (
                _EXTRA_TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"
            )
        return name, body, ctype
