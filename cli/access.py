"""Access commands: users, tokens, the audit log."""

from __future__ import annotations

import contextlib
import getpass
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from auth.models import User
from cli.main import JsonFlag, app, emit, user_errors
from cli.registry import stores
from core.errors import InvalidInput
from core.i18n import t
from core.spreadsheet import csv_writer
from registry.models import Guard, Household

user_app = typer.Typer(help="Accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API and display tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log (append-only).", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")


@user_app.command("add")
@user_errors
def user_add(
    username: Annotated[str, typer.Argument()],
    role: Annotated[str, typer.Option(help="admin, police, grid_worker, guard, property or wall")],
    community: Annotated[
        str | None, typer.Option(help="community id (all roles but admin; taken from --guard when not given)")
    ] = None,
    grid: Annotated[str | None, typer.Option(help="grid id (grid_worker; taken from --guard when not given)")] = None,
    guard: Annotated[
        str | None, typer.Option(help="the registry guard (万家卫士) this account is: guard, grid_worker, police")
    ] = None,
    name: Annotated[str, typer.Option(help="display name")] = "",
    password: Annotated[str | None, typer.Option(help="password (asked when not given)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add an account (the password is stored as an argon2 hash)."""
    from auth.service import create_user  # noqa: PLC0415 — CLI start-up: loaded only by this command

    if password is None:
        if not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("password: ")
            if getpass.getpass("again: ") != password:
                raise InvalidInput("the two passwords differ")
    with stores().sessions.begin() as session:
        made = create_user(
            session, username, password, role, community=community, grid=grid, display_name=name, guard=guard
        )
        data = account(session, made)

    def human(d: dict[str, Any]) -> None:
        linked = f", guard {d['guard_label']}" if d["guard"] else ""
        typer.echo(f"user {d['username']} added ({d['role']}{linked})")

    emit(data, as_json, human)


@user_app.command("link")
@user_errors
def user_link(
    username: Annotated[str, typer.Argument()],
    guard: Annotated[str, typer.Option(help="the registry guard (万家卫士) to link the account to")],
    as_json: JsonFlag = False,
) -> None:
    """Link an account to a registry guard: the guard's tasks, check-in and dispatch become the account's."""
    from auth.service import link_guard  # noqa: PLC0415 — CLI start-up: loaded only by this command

    with stores().sessions.begin() as session:
        data = account(session, link_guard(session, username, guard))
    emit(data, as_json, lambda d: typer.echo(f"user {d['username']} linked to guard {d['guard_label']}"))


def guard_label(session: Session, guard_id: str | None) -> str:
    """A guard as people read it: kind and name, then the id (志愿者 付宇宇 wanhu-GD12)."""
    guard = session.get(Guard, guard_id) if guard_id else None
    if guard is None:
        return ""
    return f"{t(f'guard.{guard.kind}', 'zh')} {guard.name} ({guard.id})"


def account(session: Session, user: User) -> dict[str, Any]:
    """An account as the user commands show it (no password hash)."""
    return {
        "username": user.username,
        "role": user.role,
        "community": user.community_id,
        "grid": user.grid_id,
        "active": user.active,
        "guard": user.guard_id,
        "guard_label": guard_label(session, user.guard_id),
    }


@user_app.command("list")
@user_errors
def user_list(as_json: JsonFlag = False) -> None:
    """List accounts."""
    with stores().sessions() as session:
        rows = [account(session, u) for u in session.scalars(select(User).order_by(User.username))]

    def human(rs: list[dict[str, Any]]) -> None:
        for r in rs:
            typer.echo(
                f"{r['username']:<24} {r['role']:<12} {r['community'] or '-':<10} {r['grid'] or '-':<14} "
                f"{r['guard_label']}".rstrip()
            )

    emit(rows, as_json, human)


@token_app.command("create")
@user_errors
def token_create(
    community: Annotated[str | None, typer.Option(help="community id")] = None,
    role: Annotated[str | None, typer.Option(help="a UI role (e.g. wall for a station's display)")] = None,
    scope: Annotated[str | None, typer.Option(help="'ingest' for a device gateway")] = None,
    grid: Annotated[str | None, typer.Option(help="grid id (grid_worker role)")] = None,
    name: Annotated[str, typer.Option(help="what the token is for")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create a token; the token is printed alone on the last line (and never again); with --json,
    ``{"id", "token", "scope", "role", "community", "grid"}``."""
    from auth.service import create_token  # noqa: PLC0415 — CLI start-up: loaded only by this command

    if (role is None) == (scope is None):
        raise InvalidInput("give either --role ROLE or --scope ingest")
    with stores().sessions.begin() as session:
        record, text = create_token(
            session, scope=scope or "role", community=community, role=role, grid=grid, name=name, created_by="cli"
        )
        data = {
            "id": record.id,
            "token": text,
            "scope": record.scope,
            "role": record.role,
            "community": record.community_id,
            "grid": record.grid_id,
        }

    def human(d: dict[str, Any]) -> None:
        typer.echo(
            f"token {d['id']} created ({scope or 'role ' + str(role)}, community {community or '-'}); "
            "keep it secret, it is shown once:"
        )
        typer.echo(d["token"])

    emit(data, as_json, human)


@token_app.command("revoke")
@user_errors
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="the token's id (st_<id>_…)")], as_json: JsonFlag = False
) -> None:
    """Revoke a token: integrations and displays using it are refused from now on."""
    from auth.service import revoke_token  # noqa: PLC0415 — CLI start-up: loaded only by this command

    bare = token_id.removeprefix("st_").split("_")[0]
    with stores().sessions.begin() as session:
        if not revoke_token(session, bare):
            raise InvalidInput(f"no live token {token_id}")
    emit({"id": bare, "revoked": True}, as_json, lambda _: typer.echo(f"token {token_id} revoked"))


@audit_app.command("export")
@user_errors
def audit_export(
    out: Annotated[Path, typer.Option(help="CSV file ('-' for standard output)")],
    as_json: JsonFlag = False,
) -> None:
    """Export the whole audit log as CSV, oldest first; with --json, ``{"out", "rows"}`` on standard
    output (so --json needs --out FILE)."""
    from auth.service import audit_csv_rows, flush_anonymous_denials  # noqa: PLC0415 — CLI start-up: loaded only by this command

    if as_json and str(out) == "-":
        raise InvalidInput("--json prints a summary on standard output: give --out FILE for the CSV")
    flush_anonymous_denials(stores())
    with stores().sessions() as session, open_text(out) as sink:
        writer = csv_writer(sink)
        rows = -1  # the header is not a row
        for row in audit_csv_rows(session, newest_first=False):
            writer.writerow(row)
            rows += 1
    if str(out) != "-":
        emit({"out": str(out), "rows": rows}, as_json, lambda d: typer.echo(f"{d['rows']} rows written to {d['out']}"))


@contextlib.contextmanager
def open_text(path: Path) -> Iterator[TextIO]:
    """The file to write, or standard output for '-'."""
    if str(path) == "-":
        yield sys.stdout
        return
    try:
        handle = path.open("w", encoding="utf-8", newline="")
    except OSError as err:
        raise InvalidInput(f"--out {path}: {err.strerror}") from None
    with handle:
        yield handle


@app.command("resident-link")
@user_errors
def resident_link_command(
    household: Annotated[str, typer.Argument(help="household id")],
    base_url: Annotated[str, typer.Option(help="the site's address as residents reach it")] = "http://127.0.0.1:8050",
    as_json: JsonFlag = False,
) -> None:
    """Print a household's link to the residents' page (for its door card / QR code)."""
    from api.resident import resident_link  # noqa: PLC0415 — CLI start-up: loaded only by this command

    s = stores()
    with s.sessions() as session:
        if session.get(Household, household) is None:
            raise InvalidInput(f"unknown household {household!r}")
    link = {"household": household, "url": resident_link(s, household, base_url)}
    emit(link, as_json, lambda d: typer.echo(d["url"]))
