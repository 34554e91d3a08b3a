"""Domain errors -> HTTP status, in one place. Bodies: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from medloop import errors as E

__all__ = ["error_response", "install_error_handlers"]

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[Exception], int, str]] = [
    (E.UploadTooLarge, 413, "too_large"),
    (E.TooManyFrames, 413, "too_many_frames"),
    (E.TooMuchWork, 429, "too_much_work"),
    (E.ImageReadError, 400, "bad_image"),
    (E.MaskError, 400, "bad_mask"),
    (E.DatasetError, 400, "bad_dataset"),
    (E.InvalidSettings, 422, "invalid_settings"),
    (E.ConfigError, 400, "bad_config"),
    (E.GuidanceError, 422, "bad_guidance"),
    (E.InputError, 400, "bad_input"),
    (E.NotFoundError, 404, "not_found"),
    (E.VersionNotFound, 404, "not_found"),
    (E.PermissionDeniedError, 403, "forbidden"),
    (E.ConflictError, 409, "conflict"),
    (E.NoProductionModel, 409, "no_model"),
    (E.RegistryError, 409, "conflict"),
    (E.TrainingError, 409, "cannot_train"),
    (E.BlobCorrupt, 500, "corrupt_blob"),
]


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def status_of(err: Exception) -> tuple[int, str]:
    for cls, status, code in _STATUS:
        if isinstance(err, cls):
            return status, code
    return 400, "bad_request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(E.MedloopError)
    async def _medloop(_: Request, err: E.MedloopError) -> JSONResponse:
        status, code = status_of(err)
        if status >= 500:
            log.error("server-side data problem: %s", err)
        return error_response(status, code, str(err))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, err: RequestValidationError) -> JSONResponse:
        parts = []
        for e in err.errors()[:5]:
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{loc or 'body'}: {e.get('msg', 'invalid')}")
        return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            408: "timeout",
            413: "too_large",
            429: "too_many_requests",
            422: "invalid_request",
        }.get(err.status_code, "error")
        return error_response(err.status_code, code, str(err.detail), getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, err: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal", "internal server error")
