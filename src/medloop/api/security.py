"""Who is calling, what they may do, and the audit trail of what they did.

Deny by default: every route but ``/healthz`` depends on :func:`caller`. Roles are
ordered viewer < annotator < admin; a user bound to a project sees only that
project (others answer 404, never their data), and an admin bound to a project
administers only that project: what concerns the whole server (creating projects,
``/metrics``) needs an admin bound to none (``allow_any(..., server=True)``).
A missing or wrong token is counted, audited within a budget and limited per client
(:mod:`medloop.api.throttle`).

Audit is one mechanism: a route declares its access with :func:`allow` (a project's
routes) or :func:`allow_any` (the others), and that dependency records the outcome::

    @router.get("/analyses/{analysis}")
    def get_analysis(analysis: str, acc: Annotated[ProjectAccess,
                     allow("viewer", "analysis.read", "analysis", resource="analysis")], ...)

- a refused caller (no such project, a role too low) is recorded as ``denied``, with
  the project's id when the project exists (so its own audit view shows the attempt);
- a request that fails (any :class:`~medloop.errors.MedloopError`: bad input, an
  unknown id, a conflict, too much work) is recorded as ``error``, with the message;
- a request that succeeds is recorded as ``ok``, with the resource id from the path,
  or the one the route sets with :meth:`Access.note` (a created resource), and its
  details. Reads that clients poll (``polled=True``: lists, job states) are recorded
  once per caller, project and resource per :data:`POLL_WINDOW_S`.

An archived project is read-only: a request that would change it answers 409 (recorded
as ``denied``) unless its route allows it (``archived=True``: restoring it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request

from medloop.api.deps import ServicesDep
from medloop.api.throttle import MAX_PATH, AuthGuard
from medloop.domain.records import ProjectRecord
from medloop.errors import ConflictError, MedloopError, NotFoundError
from medloop.runtime import Services
from medloop.services.audit import Actor
from medloop.services.users import ROLE_RANK

__all__ = [
    "POLL_WINDOW_S",
    "Access",
    "Caller",
    "CallerDep",
    "ProjectAccess",
    "allow",
    "allow_any",
    "caller",
]

POLL_WINDOW_S = 60.0
"""Polled reads by the same caller of the same thing are recorded once per this many seconds."""


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

    @property
    def actor(self) -> Actor:
        return Actor(self.name, self.user_id, self.client_ip)


def caller(request: Request, svc: ServicesDep) -> Caller:
    """The user behind the request's bearer token.

    Without a valid one: 401, counted and (within the audit budget) recorded as denied;
    429 once the client has failed too often (see :mod:`medloop.api.throttle`).
    """
    ip = request.client.host if request.client else None
    guard: AuthGuard = request.app.state.auth_guard
    wait = guard.retry_after(ip or "unknown")
    if wait is not None:
        raise HTTPException(
            429,
            f"too many failed authentications from this address: try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    user = svc.users.authenticate(token.strip()) if scheme.lower() == "bearer" else None
    if user is None:
        reason = "invalid" if token.strip() else "missing"
        if guard.failed(ip or "unknown", reason):
            svc.audit.record(
                Actor(client_ip=ip),
                "auth.login",
                "user",
                outcome="denied",
                detail={"path": request.url.path[:MAX_PATH], "reason": reason},
            )
        raise HTTPException(
            401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    return Caller(user.id, user.name, user.role, user.project_id, ip)


CallerDep = Annotated[Caller, Depends(caller)]


@dataclass(kw_only=True)
class Access:
    """An authorised request: its caller, and what its audit event will say."""

    who: Caller
    resource_id: str | None = None
    project_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def note(self, resource_id: str | None = None, **detail: Any) -> None:
        """Name the resource the request made (or acted on) and add details to its event."""
        if resource_id is not None:
            self.resource_id = resource_id
        self.detail.update(detail)


@dataclass(kw_only=True)
class ProjectAccess(Access):
    """An authorised request on one project."""

    project: ProjectRecord


A = TypeVar("A", bound=Access)


def _require(svc: Services, who: Caller, role: str, action: str, project_id: str | None) -> None:
    if not who.at_least(role):
        svc.audit.record(who.actor, action, "role", None, project_id, "denied", {"needs": role})
        raise HTTPException(403, f"this needs the {role} role; you are {who.role}")


def _require_unscoped(svc: Services, who: Caller, action: str) -> None:
    if who.project_id is not None:
        detail = {"needs": "an admin bound to no project"}
        svc.audit.record(who.actor, action, "role", None, who.project_id, "denied", detail)
        raise HTTPException(
            403, "this concerns the whole server: it needs an admin not bound to a project"
        )


def _project(svc: Services, who: Caller, ref: str, role: str, action: str) -> ProjectRecord:
    try:
        project: ProjectRecord | None = svc.projects.find(ref)
    except NotFoundError:
        project = None
    if project is None or (who.project_id is not None and who.project_id != project.id):
        # Recorded under the project when it exists, so that its own audit view shows
        # who tried it; the caller learns nothing either way (404).
        pid = project.id if project is not None else None
        svc.audit.record(who.actor, action, "project", ref, pid, "denied", {"reason": "not found"})
        raise NotFoundError(f"no project {ref!r}")
    _require(svc, who, role, action, project.id)
    return project


def _audited(svc: Services, acc: A, action: str, kind: str, polled: bool) -> Iterator[A]:
    actor, pid = acc.who.actor, acc.project_id
    try:
        yield acc
    except MedloopError as err:
        detail = {**acc.detail, "error": str(err)[:200]}
        svc.audit.record(actor, action, kind, acc.resource_id, pid, "error", detail)
        raise
    svc.audit.record(
        actor,
        action,
        kind,
        acc.resource_id,
        acc.project_id,
        "ok",
        acc.detail or None,
        coalesce_s=POLL_WINDOW_S if polled else None,
    )


_READS = ("GET", "HEAD", "OPTIONS")


def allow(
    role: str,
    action: str,
    resource_type: str,
    *,
    resource: str | None = None,
    polled: bool = False,
    archived: bool = False,
) -> Any:
    """A dependency: the caller may do ``action`` on the path's ``{project}`` with ``role``.

    Args:
        role: the least role needed.
        action: the audit action, e.g. ``analysis.read``.
        resource_type: the audit resource type, e.g. ``analysis``.
        resource: the path parameter naming the resource (its id goes into the event).
        polled: a read that clients poll: recorded once per :data:`POLL_WINDOW_S`.
        archived: allow this write on an archived project (restoring it).
    """

    def dependency(
        request: Request, project: str, who: CallerDep, svc: ServicesDep
    ) -> Iterator[ProjectAccess]:
        proj = _project(svc, who, project, role, action)
        if proj.archived and not archived and request.method not in _READS:
            detail = {"reason": "archived"}
            svc.audit.record(who.actor, action, "project", proj.id, proj.id, "denied", detail)
            raise ConflictError(f"project {proj.name!r} is archived: restore it to change it")
        rid = request.path_params.get(resource) if resource else None
        acc = ProjectAccess(who=who, project=proj, resource_id=rid, project_id=proj.id)
        yield from _audited(svc, acc, action, resource_type, polled)

    return Depends(dependency, scope="function")


def allow_any(
    role: str, action: str, resource_type: str, *, server: bool = False, polled: bool = False
) -> Any:
    """A dependency for routes outside a project: the caller needs ``role``.

    Args:
        server: the route concerns the whole server (all projects): a caller bound to a
            project is refused (403), whatever its role.
        polled: see :func:`allow`.
    """

    def dependency(who: CallerDep, svc: ServicesDep) -> Iterator[Access]:
        _require(svc, who, role, action, None)
        if server:
            _require_unscoped(svc, who, action)
        acc = Access(who=who, project_id=who.project_id)
        yield from _audited(svc, acc, action, resource_type, polled)

    return Depends(dependency, scope="function")
