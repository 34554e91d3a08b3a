"""The SDK's audit, user, token and erasure endpoints (admins)."""

from __future__ import annotations

from typing import Any, Literal

from medloop.client._base import (
    API,
    DEFAULT,
    ClientBase,
    _limits,
    _seg,
)
from medloop.client.admin_models import (
    ErasureOut,
    ErasurePreviewOut,
    ErasureRequestOut,
    NewTokenOut,
    NewUserOut,
    TokenOut,
    UserOut,
)
from medloop.client.models import (
    AuditEventOut,
    Page,
)

__all__ = ["AdminApi"]


class AdminApi(ClientBase):
    """The SDK's audit, user, token and erasure endpoints (admins)."""

    # -- audit ---------------------------------------------------------------------------

    def audit(self, limit: int = 100, offset: int = 0) -> Page[AuditEventOut]:
        """``GET /api/v1/audit`` (admins): audit events, newest first."""
        return self._json("GET", f"{API}/audit", Page[AuditEventOut], params=_limits(limit, offset))

    # -- users and tokens (admins of every project) ----------------------------------------

    def list_users(self) -> Page[UserOut]:
        """``GET /api/v1/users``: people and devices with their role, scope and last use."""
        return self._json("GET", f"{API}/users", Page[UserOut])

    def create_user(
        self,
        name: str,
        role: str,
        *,
        kind: str | None = None,
        project: str | None = None,
        expires_in_days: float | Literal["default"] | None = DEFAULT,
        token_name: str | None = None,
    ) -> NewUserOut:
        """``POST /api/v1/users``: a user and its first token (``.token.token``, shown once).

        ``kind``: ``person`` or ``device``; ``expires_in_days``: ``None`` for never, left
        as :data:`DEFAULT` for the server's rule (people expire, devices do not).
        """
        body: dict[str, Any] = {"name": name, "role": role}
        body |= {k: v for k, v in (("kind", kind), ("project", project)) if v is not None}
        if token_name is not None:
            body["token_name"] = token_name
        if expires_in_days != DEFAULT:
            body["expires_in_days"] = expires_in_days
        return self._json("POST", f"{API}/users", NewUserOut, json=body)

    def get_user(self, user: str) -> UserOut:
        """``GET /api/v1/users/{u}`` by id or name."""
        return self._json("GET", self._u(user), UserOut)

    def update_user(
        self,
        user: str,
        *,
        role: str | None = None,
        project: str | None = None,
        every_project: bool = False,
        disabled: bool | None = None,
    ) -> UserOut:
        """``PATCH /api/v1/users/{u}``: role, scope (``every_project`` unbinds), disabled."""
        body: dict[str, Any] = {}
        if role is not None:
            body["role"] = role
        if project is not None or every_project:
            body["project"] = None if every_project else project
        if disabled is not None:
            body["disabled"] = disabled
        return self._json("PATCH", self._u(user), UserOut, json=body)

    def list_tokens(self, user: str) -> Page[TokenOut]:
        """``GET /api/v1/users/{u}/tokens``: the user's tokens (never their secrets)."""
        return self._json("GET", f"{self._u(user)}/tokens", Page[TokenOut])

    def issue_token(
        self,
        user: str,
        name: str | None = None,
        expires_in_days: float | Literal["default"] | None = DEFAULT,
    ) -> NewTokenOut:
        """``POST /api/v1/users/{u}/tokens``: another token; its secret is ``.token``, shown once."""
        body: dict[str, Any] = {} if name is None else {"name": name}
        if expires_in_days != DEFAULT:
            body["expires_in_days"] = expires_in_days
        return self._json("POST", f"{self._u(user)}/tokens", NewTokenOut, json=body)

    def revoke_token(self, user: str, token_id: str) -> TokenOut:
        """``POST .../tokens/{t}/revoke``: the token answers 401 from the next request on."""
        path = f"{self._u(user)}/tokens/{_seg(token_id, 'token')}/revoke"
        return self._json("POST", path, TokenOut)

    @staticmethod
    def _u(user: str) -> str:
        return f"{API}/users/{_seg(user, 'user')}"

    # -- erasure (admins) ----------------------------------------------------------------

    def preview_erasure(self, project: str, scope: str, value: str) -> ErasurePreviewOut:
        """``POST .../erasures/preview``: what erasing a ``patient`` (Patient ID), ``study``
        (Study Instance UID) or ``image`` (its id) would remove; nothing is removed."""
        body = {"scope": scope, "value": value}
        return self._json(
            "POST", f"{self._p(project)}/erasures/preview", ErasurePreviewOut, json=body
        )

    def erase(self, project: str, scope: str, value: str, reason: str) -> ErasureRequestOut:
        """``POST .../erasures``: erase the data (a job; audited with who and why).

        Model versions that trained on it stay; their lineage keeps only ids and sha256,
        marked erased. Example::

            out = c.erase("knee", "patient", "PAT-0042", "the patient withdrew consent")
            c.wait_for_job("knee", out.job.id)
        """
        body = {"scope": scope, "value": value, "reason": reason}
        return self._json("POST", f"{self._p(project)}/erasures", ErasureRequestOut, json=body)

    def list_erasures(self, project: str) -> Page[ErasureOut]:
        """``GET .../erasures``: the project's erasures, newest first."""
        return self._json("GET", f"{self._p(project)}/erasures", Page[ErasureOut])
