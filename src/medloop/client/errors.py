"""Exceptions raised by :class:`medloop.client.MedloopClient`.

Everything the client raises on purpose derives from :class:`MedloopClientError`::

    MedloopClientError                  anything the client raises on purpose
    ├── ApiError(status, code, message) the server answered 4xx/5xx
    │   ├── BadRequest                  400, 413, 415, 422: the request is wrong; fix the input
    │   ├── Unauthorized                401: no token, or an unknown/revoked one
    │   ├── Forbidden                   403: the token's role or project does not allow it
    │   ├── NotFound                    404: no such project/image/analysis/version/job (for you)
    │   ├── Conflict                    409: the state forbids it (e.g. a job already running)
    │   ├── TooManyRequests             429: too much work waiting, or too many failed tokens;
    │   │                               ``retry_after`` says when to try again (when known)
    │   └── ServerError                 5xx: the server failed; retrying may help
    ├── TransportError                  no usable answer: connection refused, TLS, timeout
    ├── UnexpectedResponse              a 2xx answer that does not have the documented shape
    ├── InvalidArgument (also ValueError) a bad argument caught before sending (e.g. an id "..")
    └── JobTimeout (also TimeoutError)  ``wait_for_job`` gave up before the job finished

Other 4xx statuses (405, 408, ...) raise plain :class:`ApiError`. The server's error body is
``{"error": {"code": "...", "message": "..."}}``; when a body has another shape the message
falls back to the response text.

Example::

    from medloop.client import MedloopClient, NotFound, ApiError

    with MedloopClient("https://medloop.example.org", token) as c:
        try:
            c.get_analysis("knee", "a-123")
        except NotFound:
            print("no such analysis")
        except ApiError as err:
            print(err.status, err.code, err.message)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medloop.client.models import JobOut

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "InvalidArgument",
    "JobTimeout",
    "MedloopClientError",
    "NotFound",
    "ServerError",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "UnexpectedResponse",
    "error_for_status",
]


class MedloopClientError(Exception):
    """Base class of every error the client raises on purpose."""


class ApiError(MedloopClientError):
    """The server answered with an error status.

    ``status`` is the HTTP status, ``code`` the machine-readable code from the error body
    (``"http_<status>"`` when the body has none), ``message`` the human-readable text.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(status, code, message)

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status}, {self.code})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"


class BadRequest(ApiError):
    """400, 413, 415 or 422: the input was refused (bad image, mask, JSON, size...)."""


class Unauthorized(ApiError):
    """401: missing, unknown or revoked token."""


class Forbidden(ApiError):
    """403: the token may not do this (role too low, or another project)."""


class NotFound(ApiError):
    """404: the resource does not exist, or is not visible to this token."""


class Conflict(ApiError):
    """409: the request clashes with the current state."""


class TooManyRequests(ApiError):
    """429: the caller has too much work waiting, or this address failed to authenticate
    too often; ``retry_after`` is the server's ``Retry-After`` in seconds (or ``None``)."""

    retry_after: float | None = None


class ServerError(ApiError):
    """5xx: the server failed."""


class TransportError(MedloopClientError):
    """The request got no usable HTTP answer (connection, TLS, timeout, protocol)."""


class UnexpectedResponse(MedloopClientError):
    """A successful answer whose body is not what the API documents."""


class InvalidArgument(MedloopClientError, ValueError):
    """An argument the client refuses before sending anything (nothing reached the server)."""


class JobTimeout(MedloopClientError, TimeoutError):
    """``wait_for_job`` ran out of time; ``job`` is the last state seen."""

    def __init__(self, message: str, job: JobOut | None = None) -> None:
        super().__init__(message)
        self.job = job


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    413: BadRequest,
    415: BadRequest,
    422: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: TooManyRequests,
}


def error_for_status(
    status: int, code: str, message: str, retry_after: str | None = None
) -> ApiError:
    """The :class:`ApiError` subclass for an HTTP status (not raised, returned)."""
    cls: type[ApiError]
    if status in _BY_STATUS:
        cls = _BY_STATUS[status]
    elif status >= 500:
        cls = ServerError
    else:
        cls = ApiError
    err = cls(status, code, message)
    if isinstance(err, TooManyRequests) and retry_after is not None:
        try:
            err.retry_after = float(retry_after)
        except ValueError:
            err.retry_after = None
    return err


def _describe(value: Any) -> str:
    """Human text from a FastAPI-style ``detail`` (a string or a list of validation errors)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for item in value:
            if isinstance(item, dict) and "msg" in item:
                loc = ".".join(str(x) for x in item.get("loc", ()) if x != "body")
                parts.append(f"{loc}: {item['msg']}" if loc else str(item["msg"]))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(value)
