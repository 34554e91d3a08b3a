"""Dependencies: the services a route uses, taken from the app (built by the runtime)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from medloop.runtime import Services

__all__ = ["ServicesDep", "get_services"]


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
