"""``create_app(settings)``: the FastAPI application, with its collaborators passed in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from medloop import __version__
from medloop.api.errors import install_error_handlers
from medloop.api.middleware import BodyLimit, Metrics, MetricsMiddleware, SecurityHeaders
from medloop.api.routers import (
    analyses,
    audit,
    corrections,
    dicom,
    erasures,
    images,
    jobs,
    models,
    projects,
    references,
    system,
    users,
    web,
)
from medloop.runtime import Runtime
from medloop.settings import Settings

__all__ = ["create_app"]


def create_app(
    settings: Settings, runtime: Runtime | None = None, *, start: bool = True
) -> FastAPI:
    """Build the app. ``runtime`` defaults to ``Runtime(settings)``; with ``start`` the
    lifespan starts it (job recovery, blob sweep, worker) and stops it on shutdown."""
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
    )
    app.state.services = rt.services
    app.state.metrics = Metrics()
    install_error_handlers(app)
    for r in (
        system.router,
        projects.router,
        references.router,
        erasures.router,
        images.router,
        analyses.router,
        corrections.router,
        models.router,
        jobs.router,
        audit.router,
        users.router,
        dicom.router,
        web.router,
    ):
        app.include_router(r)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_upload_bytes + 1024 * 1024,
        larger={"/reference/import": settings.max_import_bytes + 1024 * 1024},
    )
    app.add_middleware(SecurityHeaders)
    return app
