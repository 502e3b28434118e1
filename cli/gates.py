"""Visitor pass commands: ``pass revoke PASS_ID --reason TEXT`` (the gates refuse it at once)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.main import JsonFlag, app, emit, settings, user_errors
from cli.registry import _operator as operator
from core.timefmt import iso_utc, local_text, utc_to_ms
from gates.service import Visitors
from store.stores import open_stores

pass_app = typer.Typer(help="Visitor passes.", no_args_is_help=True)
app.add_typer(pass_app, name="pass")


@pass_app.command("revoke")
@user_errors
def revoke(
    pass_id: Annotated[str, typer.Argument(help="the pass id (as the approval panel and the gate's answer give it)")],
    reason: Annotated[str, typer.Option(help="why (at least 2 characters; the resident sees it)")],
    as_json: JsonFlag = False,
) -> None:
    """Revoke an approved or pending pass that has not ended: the next gate decision is ``revoked``."""
    s = open_stores(settings(), connect_redis=False)
    done = Visitors(s).revoke(operator("pass revoke"), pass_id, reason=reason)
    start, end = utc_to_ms(done.valid_from), utc_to_ms(done.valid_to)
    data = {
        "pass": done.id,
        "status": done.status,
        "community": done.community_id,
        "household": done.household_id,
        "valid_from": iso_utc(start),
        "valid_to": iso_utc(end),
        "reason": done.decision_note,
    }

    def human(d: dict[str, Any]) -> None:
        window = f"{local_text(start, '%Y-%m-%d %H:%M')} – {local_text(end, '%Y-%m-%d %H:%M')} Beijing"
        typer.echo(f"pass {d['pass']} revoked ({d['household']}, {window}): {d['reason']}")

    emit(data, as_json, human)
