"""Maintenance and away modes: ``device maintenance DEVICE --until T`` and ``person away PERSON --until T``."""

from __future__ import annotations

import getpass
from typing import Annotated, Any

import typer

from auth.principal import Principal
from cli.main import JsonFlag, app, emit, settings, user_errors
from core.errors import InvalidInput
from core.timefmt import local_text, parse_rfc3339
from registry.modes import AWAY, MAINTENANCE
from store.stores import open_stores
from upkeep.modes import Modes

device_app = typer.Typer(help="Devices: maintenance mode.", no_args_is_help=True)
person_app = typer.Typer(help="People: away mode (hospital, travel).", no_args_is_help=True)
app.add_typer(device_app, name="device")
app.add_typer(person_app, name="person")

Until = Annotated[
    str | None,
    typer.Option("--until", help="the end: RFC 3339 with an offset, or 'YYYY-MM-DD HH:MM' in Asia/Shanghai"),
]
Reason = Annotated[str, typer.Option("--reason", help="why (at most 200 characters)")]


def _run(kind: str, subject: str, until: str | None, reason: str, end: bool, as_json: bool) -> None:
    """Set or end a period as the operator at the server's console (audited under their login name)."""
    if end and until is not None:
        raise InvalidInput(key="modes.error.until_and_end")
    if not end and until is None:
        raise InvalidInput(key="modes.error.until_missing")
    operator = Principal(kind="system", id=f"manage.py:{getpass.getuser()}", role="admin", name=f"manage.py {kind}")
    stores = open_stores(settings())
    try:
        modes = Modes(stores)
        view = modes.end(operator, kind, subject) if end else modes.start(operator, kind, subject, until or "", reason)
    finally:
        stores.engine.dispose()
    emit(view, as_json, lambda v: typer.echo(_human(v)))


def _local(iso: str) -> str:
    return local_text(parse_rfc3339(iso), "%Y-%m-%d %H:%M")


def _human(view: dict[str, Any]) -> str:
    """One line: what holds now, until when (Beijing time), and a note when nothing is paused."""
    what = "maintenance" if view["kind"] == MAINTENANCE else "away"
    if view["ended_at"]:
        return f"{view['subject']}: {what} ended at {local_text(parse_rfc3339(view['ended_at']), '%Y-%m-%d %H:%M')}"
    line = (
        f"{view['subject']}: {what} until {local_text(parse_rfc3339(view['until']), '%Y-%m-%d %H:%M')} (Asia/Shanghai)"
    )
    if view["kind"] == AWAY and not view.get("watched", True):
        line += " — not an elder living alone: no alert is paused"
    return line


@device_app.command("maintenance")
@user_errors
def device_maintenance(
    device: Annotated[str, typer.Argument(help="the device id")],
    until: Until = None,
    reason: Reason = "",
    end: Annotated[bool, typer.Option("--end", help="end the maintenance now")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Put a device in maintenance until a time (its alerts are silenced), or end it (--end)."""
    _run(MAINTENANCE, device, until, reason, end, as_json)


@person_app.command("away")
@user_errors
def person_away(
    person: Annotated[str, typer.Argument(help="the person id")],
    until: Until = None,
    reason: Reason = "",
    end: Annotated[bool, typer.Option("--end", help="end the away time now")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Set a person away until a time (an elder's watch pauses, and resumes at the end), or end it (--end)."""
    _run(AWAY, person, until, reason, end, as_json)
