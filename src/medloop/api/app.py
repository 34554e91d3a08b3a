"""``create_app(settings)``: the FastAPI application, with its collaborators passed in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from medloop import __version__
from medloop.api.errors import install_error_handlers
from medloop.api.middleware import (
    BodyLimit,
    BodyTimeout,
    Metrics,
    MetricsMiddleware,
    SecurityHeaders,
)
from medloop.api.routers import (
    analyses,
    audit,
    corrections,
    dicom,
    docs,
    erasures,
    images,
    jobs,
    models,
    projects,
    references,
    refine,
    system,
    users,
    web,
)
from medloop.api.throttle import AuthGuard
from medloop.runtime import Runtime
from medloop.settings import Settings

__all__ = ["ROUTERS", "create_app"]

ROUTERS = (
    system.router,
    projects.router,
    references.router,
    erasures.router,
    images.router,
    analyses.router,
    refine.router,
    corrections.router,
    models.router,
    jobs.router,
    audit.router,
    users.router,
    dicom.router,
    web.router,
)
"""Every router of the API, in the order they are matched (``/docs`` comes with ``--docs``)."""


def create_app(
    settings: Settings, runtime: Runtime | None = None, *, start: bool = True
) -> FastAPI:
    """Build the app. ``runtime`` defaults to ``Runtime(settings)``; with ``start`` the
    lifespan starts it (job recovery, blob sweep, worker) and stops it on shutdown.
    ``/docs`` and ``/openapi.json`` exist only with ``settings.api_docs``."""
    rt = runtime or Runtime(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if start:
            rt.start()
        try:
            yield
        finally:
            if start:
                rt.stop()

    app = FastAPI(
        title="medloop",
        version=__version__,
        description="Segmentation that learns from clinicians' corrections. Bearer token on every route but /healthz.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.api_docs else None,
    )
    app.state.services = rt.services
    app.state.metrics = Metrics()
    app.state.auth_guard = AuthGuard(
        app.state.metrics,
        settings.auth_failures,
        settings.auth_audit_rate,
        settings.auth_audit_rate_total,
    )
    install_error_handlers(app)
    if settings.api_docs:
        app.include_router(docs.router)
        _declare_bearer(app)
    for r in ROUTERS:
        app.include_router(r)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_upload_bytes + 1024 * 1024,
        larger={"/reference/import": settings.max_import_bytes + 1024 * 1024},
    )
    app.add_middleware(BodyTimeout, timeout_s=settings.body_timeout_s)
    app.add_middleware(SecurityHeaders)
    return app


def _declare_bearer(app: FastAPI) -> None:
    """State in the OpenAPI document that every route takes a bearer token (for "Authorize")."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            schema["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
