"""``/api/v1/users``: people and devices, their roles, project scope and tokens.

For admins of every project only (a project's admin gets 403). A new token's secret
is in the answer that makes it and nowhere else; only its sha256 is stored. A revoked
token answers 401 from the next request on.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, status

from medloop.api.convert import new_token_out, token_out, user_out
from medloop.api.deps import ServicesDep
from medloop.api.schemas import (
    Page,
)
from medloop.api.schemas_admin import (
    NewTokenOut,
    NewUserOut,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    UserPatch,
)
from medloop.api.security import Access, allow_any
from medloop.services.users import DEFAULT, Expiry

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/users", tags=["users"])


def _expiry(body: UserIn | TokenIn) -> Expiry:
    """Left out: the kind's default; ``null``: never; else the days given."""
    return body.expires_in_days if "expires_in_days" in body.model_fields_set else DEFAULT


def _admin(action: str, polled: bool = False) -> Any:
    return allow_any("admin", action, "user", polled=polled, server=True)


@router.get("")
def list_users(svc: ServicesDep, _: Annotated[Access, _admin("user.list", polled=True)]) -> Page:
    items = [user_out(u) for u in svc.users.all()]
    return Page(items=items, total=len(items))


@router.post("", status_code=status.HTTP_201_CREATED)
def create_user(
    body: UserIn, svc: ServicesDep, acc: Annotated[Access, _admin("user.create")]
) -> NewUserOut:
    acc.note(name=body.name, role=body.role, kind=body.kind, project=body.project)
    user, secret = svc.users.add(
        body.name,
        body.role,
        body.project,
        kind=body.kind,
        expires_days=_expiry(body),
        created_by=acc.who.name,
    )
    token = svc.users.tokens(user.id)[0]
    acc.note(user.id, token=token.id, expires_at=str(token.expires_at))
    return NewUserOut(user=user_out(user), token=new_token_out(token, secret))


@router.get("/{user}")
def get_user(
    user: str, svc: ServicesDep, _: Annotated[Access, _admin("user.read", polled=True)]
) -> UserOut:
    return user_out(svc.users.get(user))


@router.patch("/{user}")
def update_user(
    user: str,
    body: UserPatch,
    svc: ServicesDep,
    acc: Annotated[Access, _admin("user.update")],
) -> UserOut:
    """Change the role, the project scope (``"project": null``: every project) or disable."""
    fields = body.model_fields_set
    before, after = svc.users.update(
        user,
        role=body.role,
        project=body.project,
        unbind="project" in fields and body.project is None,
        disabled=body.disabled,
    )
    keys = ("role", "project_id", "disabled")
    acc.note(
        after.id,
        before={k: getattr(before, k) for k in keys},
        after={k: getattr(after, k) for k in keys},
    )
    return user_out(after)


@router.get("/{user}/tokens")
def list_tokens(
    user: str, svc: ServicesDep, _: Annotated[Access, _admin("token.list", polled=True)]
) -> Page:
    items = [token_out(t) for t in svc.users.tokens(user)]
    return Page(items=items, total=len(items))


@router.post("/{user}/tokens", status_code=status.HTTP_201_CREATED)
def issue_token(
    user: str,
    svc: ServicesDep,
    acc: Annotated[Access, _admin("token.create")],
    body: TokenIn | None = None,
) -> NewTokenOut:
    body = body or TokenIn()
    token, secret = svc.users.issue(user, body.name, _expiry(body), acc.who.name)
    acc.note(token.id, user=token.user_id, expires_at=str(token.expires_at))
    return new_token_out(token, secret)


@router.post("/{user}/tokens/{token}/revoke")
def revoke_token(
    user: str, token: str, svc: ServicesDep, acc: Annotated[Access, _admin("token.revoke")]
) -> TokenOut:
    revoked = svc.users.revoke(user, token)
    acc.note(revoked.id, user=revoked.user_id)
    return token_out(revoked)
