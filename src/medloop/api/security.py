"""Who is calling, what they may do, and the audit trail of what they did.

Deny by default: every route but ``/healthz`` depends on :func:`caller`. Roles are
ordered viewer < annotator < admin; a user bound to a project sees only that
project (others answer 404, never their data).

Audit is one mechanism: a route declares its access with :func:`allow` (a project's
routes) or :func:`allow_any` (the others), and that dependency records the outcome::

    @router.get("/analyses/{analysis}")
    def get_analysis(analysis: str, acc: Annotated[ProjectAccess,
                     allow("viewer", "analysis.read", "analysis", resource="analysis")], ...)

- a refused caller (no such project, a role too low) is recorded as ``denied``;
- a request that fails on the caller's input (:class:`~medloop.errors.InputError`)
  is recorded as ``error``, with the message;
- a request that succeeds is recorded as ``ok`` (unless ``record=False``, for the
  reads the browser polls), with the resource id from the path, or the one the
  route sets with :meth:`Access.note` (a created resource), and its details.

An archived project is read-only: a request that would change it answers 409 (recorded
as ``denied``) unless its route allows it (``archived=True``: restoring it). Routes for
the whole server that a project's admin must not use (managing users) say
``unscoped=True``: only admins of every project pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request

from medloop.api.deps import ServicesDep
from medloop.domain.records import ProjectRecord
from medloop.errors import ConflictError, InputError, NotFoundError
from medloop.runtime import Services
from medloop.services.audit import Actor
from medloop.services.users import ROLE_RANK

__all__ = ["Access", "Caller", "CallerDep", "ProjectAccess", "allow", "allow_any", "caller"]


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
    """The user behind the request's bearer token; 401 (recorded as denied) without one."""
    ip = request.client.host if request.client else None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    user = svc.users.authenticate(token.strip()) if scheme.lower() == "bearer" else None
    if user is None:
        svc.audit.record(
            Actor(client_ip=ip),
            "auth.login",
            "user",
            outcome="denied",
            detail={"path": request.url.path},
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


def _project(svc: Services, who: Caller, ref: str, role: str, action: str) -> ProjectRecord:
    try:
        project: ProjectRecord | None = svc.projects.find(ref)
    except NotFoundError:
        project = None
    if project is None or (who.project_id is not None and who.project_id != project.id):
        svc.audit.record(who.actor, action, "project", ref, None, "denied", {"reason": "not found"})
        raise NotFoundError(f"no project {ref!r}")
    _require(svc, who, role, action, project.id)
    return project


def _audited(svc: Services, acc: A, action: str, kind: str, record: bool) -> Iterator[A]:
    actor, pid = acc.who.actor, acc.project_id
    try:
        yield acc
    except InputError as err:
        detail = {**acc.detail, "error": str(err)[:200]}
        svc.audit.record(actor, action, kind, acc.resource_id, pid, "error", detail)
        raise
    if record:
        svc.audit.record(
            actor, action, kind, acc.resource_id, acc.project_id, "ok", acc.detail or None
        )


_READS = ("GET", "HEAD", "OPTIONS")


def allow(
    role: str,
    action: str,
    resource_type: str,
    *,
    resource: str | None = None,
    record: bool = True,
    archived: bool = False,
) -> Any:
    """A dependency: the caller may do ``action`` on the path's ``{project}`` with ``role``.

    Args:
        role: the least role needed.
        action: the audit action, e.g. ``analysis.read``.
        resource_type: the audit resource type, e.g. ``analysis``.
        resource: the path parameter naming the resource (its id goes into the event).
        record: record successful requests (off for reads the browser polls).
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
        yield from _audited(svc, acc, action, resource_type, record)

    return Depends(dependency, scope="function")


def allow_any(
    role: str, action: str, resource_type: str, *, record: bool = True, unscoped: bool = False
) -> Any:
    """A dependency for routes outside a project: the caller needs ``role`` (and, with
    ``unscoped``, to be bound to no project)."""

    def dependency(who: CallerDep, svc: ServicesDep) -> Iterator[Access]:
        _require(svc, who, role, action, None)
        if unscoped and who.project_id is not None:
            detail = {"needs": "an account for every project"}
            svc.audit.record(who.actor, action, resource_type, None, None, "denied", detail)
            raise HTTPException(403, f"this needs an {role} of every project, not of one")
        acc = Access(who=who, project_id=who.project_id)
        yield from _audited(svc, acc, action, resource_type, record)

    return Depends(dependency, scope="function")
