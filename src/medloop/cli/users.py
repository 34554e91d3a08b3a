"""``medloop users add|list|disable|enable|token|revoke``: users and tokens, on the server's machine.

The browser's Users page and ``/api/v1/users`` do the same over HTTP; these work on the
data folder directly, for the first admin and for when nobody can sign in. A token is
printed alone on the last line (it is stored only as a sha256 and shown this once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.table import Table

from medloop.cli._common import console, fail, run_guarded
from medloop.cli.server import DataDirOpt, settings_from

if TYPE_CHECKING:
    from medloop.domain.records import TokenRecord, UserRecord
    from medloop.runtime import Services
    from medloop.services.users import Expiry

__all__ = ["users_app"]

users_app = typer.Typer(help="Users and device identities of a server.", no_args_is_help=True)
T = TypeVar("T")

ExpiresOpt = Annotated[
    float | None,
    typer.Option(
        "--expires-days",
        min=0.001,
        max=3650,
        help="Days until the token expires (default: the server's for people, never for devices).",
    ),
]
NoExpiryOpt = Annotated[bool, typer.Option("--no-expiry", help="The token never expires.")]


@contextmanager
def _services(data_dir: Path | None) -> Iterator[Services]:
    from medloop.runtime import Runtime

    rt = Runtime(settings_from(data_dir))
    try:
        yield rt.services
    finally:
        rt.stop()


def _run(data_dir: Path | None, fn: Callable[[Services], T]) -> T:
    def go() -> T:
        with _services(data_dir) as svc:
            return fn(svc)

    return run_guarded(go)


def _expiry(days: float | None, never: bool) -> Expiry:
    if never and days is not None:
        fail("give --expires-days or --no-expiry, not both")
    return None if never else ("default" if days is None else days)


def _when(at: datetime | None) -> str:
    return "—" if at is None else at.strftime("%Y-%m-%d %H:%M")


@users_app.command("add")
def add_user(
    name: Annotated[str, typer.Argument(help="User or device name.")],
    role: Annotated[str, typer.Option(help="admin, annotator or viewer.")],
    project: Annotated[
        str | None, typer.Option(help="Limit the user to this project (id or name).")
    ] = None,
    device: Annotated[
        bool, typer.Option("--device", help="A device (scanner, script), not a person.")
    ] = False,
    expires_days: ExpiresOpt = None,
    no_expiry: NoExpiryOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Create a user; its new API token is printed alone on the last line (stored only as a hash)."""
    if role not in ("admin", "annotator", "viewer"):
        fail(f"--role must be admin, annotator or viewer, got {role!r}")
    expiry = _expiry(expires_days, no_expiry)
    kind = "device" if device else "person"
    _, token = _run(
        data_dir,
        lambda svc: svc.users.add(
            name, role, project, kind=kind, expires_days=expiry, created_by="cli"
        ),
    )
    scope = f", project {project}" if project else ""
    console.print(f"{kind} {name!r} ({role}{scope}) created; token:")
    typer.echo(token)


@users_app.command("list")
def list_users(
    tokens: Annotated[bool, typer.Option("--tokens", help="Show each user's tokens too.")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Users with their role, scope, state and last use (and, with --tokens, their tokens)."""

    def gather(svc: Services) -> list[tuple[UserRecord, str, list[TokenRecord]]]:
        projects = {p.project.id: p.project.name for p in svc.projects.visible(archived=None)}
        return [
            (
                user,
                projects.get(user.project_id or "", "every project"),
                svc.users.tokens(user.id) if tokens else [],
            )
            for user in svc.users.all()
        ]

    rows = _run(data_dir, gather)
    table = Table("name", "kind", "role", "project", "state", "last used", box=None)
    for user, scope, _ in rows:
        state = "disabled" if user.disabled else "enabled"
        table.add_row(user.name, user.kind, user.role, scope, state, _when(user.last_used_at))
    console.print(table)
    if tokens:
        _print_tokens(rows)


def _print_tokens(rows: list[tuple[UserRecord, str, list[TokenRecord]]]) -> None:
    """One token a line, never shortened (the id is what ``users revoke`` takes)."""
    now = datetime.now(UTC)
    typer.echo("\ntokens (user, id, name, created, expires, last used, state):")
    for user, _, toks in rows:
        for t in toks:
            state = "revoked" if t.revoked_at else ("active" if t.active(now) else "expired")
            when = (_when(t.created_at), _when(t.expires_at), _when(t.last_used_at))
            typer.echo("  ".join((user.name, t.id, t.name or "-", *when, state)))


def _set_disabled(name: str, disabled: bool, data_dir: Path | None) -> None:
    _run(data_dir, lambda svc: svc.users.update(name, disabled=disabled))
    console.print(f"user {name!r} {'disabled' if disabled else 'enabled'}")


@users_app.command("disable")
def disable_user(
    name: Annotated[str, typer.Argument(help="User name or id.")], data_dir: DataDirOpt = None
) -> None:
    """Disable a user: all its tokens answer 401 from the next request on."""
    _set_disabled(name, True, data_dir)


@users_app.command("enable")
def enable_user(
    name: Annotated[str, typer.Argument(help="User name or id.")], data_dir: DataDirOpt = None
) -> None:
    """Enable a disabled user again (its tokens that are neither revoked nor expired work)."""
    _set_disabled(name, False, data_dir)


@users_app.command("token")
def new_token(
    name: Annotated[str, typer.Argument(help="User name or id.")],
    label: Annotated[str, typer.Option("--name", help="What the token is for.")] = "",
    expires_days: ExpiresOpt = None,
    no_expiry: NoExpiryOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Issue another token for a user; printed alone on the last line."""
    expiry = _expiry(expires_days, no_expiry)
    record, secret = _run(data_dir, lambda svc: svc.users.issue(name, label, expiry, "cli"))
    console.print(f"token {record.id} for {name!r} (expires {_when(record.expires_at)}):")
    typer.echo(secret)


@users_app.command("revoke")
def revoke_token(
    name: Annotated[str, typer.Argument(help="User name or id.")],
    token_id: Annotated[
        str | None, typer.Argument(help="The token's id (medloop users list --tokens).")
    ] = None,
    all_tokens: Annotated[
        bool, typer.Option("--all", help="Revoke every token of the user.")
    ] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke a token (or --all of a user's): it answers 401 from the next request on."""
    if (token_id is None) == (not all_tokens):
        fail("give a token id, or --all")

    def go(svc: Services) -> int:
        if token_id is not None:
            svc.users.revoke(name, token_id)
            return 1
        live = [t for t in svc.users.tokens(name) if t.revoked_at is None]
        for t in live:
            svc.users.revoke(name, t.id)
        return len(live)

    n = _run(data_dir, go)
    console.print(f"revoked {n} token(s) of {name!r}")
