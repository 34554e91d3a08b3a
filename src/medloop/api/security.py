"""Who is calling and what they may do: bearer tokens, roles, per-project access.

Deny by default: every route but ``/healthz`` depends on :func:`caller`. Roles are
ordered viewer < annotator < admin; a user bound to a project sees only that
project (others answer 404, never their data).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from medloop.errors import InputError, NotFoundError
from medloop.runtime import Runtime
from medloop.services.server_projects import find_project
from medloop.storage import repositories as repo
from medloop.storage.models import Project

__all__ = [
    "ROLE_RANK",
    "Caller",
    "CallerDep",
    "RuntimeDep",
    "audit",
    "audit_failure",
    "caller",
    "get_runtime",
    "project_for",
]

ROLE_RANK = {"viewer": 0, "annotator": 1, "admin": 2}


def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@dataclass(frozen=True)
class Caller:
    """The authenticated user of a request."""

    user_id: str
    name: str
    role: str
    project_id: str | None
    client_ip: str | None

    def at_least(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def audit(
    rt: Runtime,
    who: Caller | None,
    action: str,
    resource_type: str,
    resource_id: str | None = None,
    project_id: str | None = None,
    outcome: str = "ok",
    detail: dict[str, object] | None = None,
    client_ip: str | None = None,
) -> None:
    """Append an audit event in its own transaction (kept even if the request fails)."""
    with rt.session() as s:
        repo.record_event(
            s,
            action=action,
            resource_type=resource_type,
            actor_name=who.name if who else "anonymous",
            actor_id=who.user_id if who else None,
            resource_id=resource_id,
            project_id=project_id,
            client_ip=who.client_ip if who else client_ip,
            outcome=outcome,
            detail=dict(detail) if detail else None,
        )


@contextmanager
def audit_failure(
    rt: Runtime,
    who: Caller,
    action: str,
    resource_type: str,
    project_id: str,
    detail: dict[str, object] | None = None,
) -> Iterator[None]:
    """Record an ``error`` audit event when the block raises an :class:`InputError`, then re-raise."""
    try:
        yield
    except InputError as err:
        audit(
            rt,
            who,
            action,
            resource_type,
            project_id=project_id,
            outcome="error",
            detail={**(detail or {}), "error": str(err)[:200]},
        )
        raise


def caller(request: Request, rt: RuntimeDep) -> Caller:
    ip = request.client.host if request.client else None
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    user = None
    if scheme.lower() == "bearer" and token.strip():
        with rt.read_session() as s:
            user = repo.user_by_token(s, token.strip())
            if user is not None:
                who = Caller(user.id, user.name, user.role, user.project_id, ip)
    if user is None:
        audit(
            rt,
            None,
            "auth.login",
            "user",
            outcome="denied",
            detail={"path": request.url.path},
            client_ip=ip,
        )
        raise HTTPException(
            401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    return who


CallerDep = Annotated[Caller, Depends(caller)]


def require(
    who: Caller, role: str, rt: Runtime, action: str, project_id: str | None = None
) -> None:
    if not who.at_least(role):
        audit(
            rt, who, action, "role", project_id=project_id, outcome="denied", detail={"needs": role}
        )
        raise HTTPException(403, f"this needs the {role} role; you are {who.role}")


def project_for(rt: Runtime, who: Caller, ref: str, role: str, action: str) -> Project:
    """The project ``ref`` (id or name) if ``who`` may act on it with ``role``; else 404/403."""
    with rt.read_session() as s:
        try:
            project = find_project(s, ref)
        except NotFoundError:
            project = None
    if project is None or (who.project_id is not None and who.project_id != project.id):
        audit(
            rt,
            who,
            action,
            "project",
            resource_id=ref,
            outcome="denied",
            detail={"reason": "not found"},
        )
        raise NotFoundError(f"no project {ref!r}")
    require(who, role, rt, action, project.id)
    return project
