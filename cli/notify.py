"""``manage.py notify …``: the webhook and SMS targets (interfaces §8), and the sender loop."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.main import JsonFlag, app, emit, json_logs, settings, stop_on_signals, user_errors
from cli.registry import stores
from core.metrics import start_service
from notify.sender import Sender
from notify.targets import NewTarget, add_target, get_target, remove_target, target_rows

notify_app = typer.Typer(help="Notification targets (webhooks, SMS gateways) and the sender.", no_args_is_help=True)
app.add_typer(notify_app, name="notify")


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


@notify_app.command("add")
@user_errors
def notify_add(
    channel: Annotated[str, typer.Option(help="webhook or sms")],
    url: Annotated[str, typer.Option(help="the webhook's URL, or the SMS gateway's")],
    community: Annotated[str, typer.Option(help="community id")],
    secret: Annotated[str | None, typer.Option(help="HMAC secret (generated and printed when not given)")] = None,
    types: Annotated[str | None, typer.Option(help="alert types, comma-separated (default: all)")] = None,
    min_severity: Annotated[str, typer.Option(help="low, medium, high or critical")] = "low",
    events: Annotated[
        str | None, typer.Option(help="events, comma-separated (default all; sms: raised, escalated)")
    ] = None,
    to: Annotated[str | None, typer.Option(help="sms: phone numbers, comma-separated")] = None,
    name: Annotated[str, typer.Option(help="how people call it, e.g. 110平台")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Add a webhook or SMS gateway target (refused when its host is not public, interfaces §8)."""
    new = NewTarget(
        channel=channel,
        url=url,
        community=community,
        secret=secret or "",
        types=_split(types),
        events=_split(events),
        min_severity=min_severity,
        recipients=_split(to),
        name=name,
    )
    with stores().sessions.begin() as session:
        target = add_target(session, settings(), new)
        out = {"id": target.id} | ({} if secret else {"secret": target.secret})

    def human(data: dict[str, Any]) -> None:
        typer.echo(f"target {data['id']} added")
        if "secret" in data:
            typer.echo(f"secret (the receiver checks X-Sandtable-Signature with it): {data['secret']}")

    emit(out, as_json, human)


@notify_app.command("list")
@user_errors
def notify_list(as_json: JsonFlag = False) -> None:
    """List the targets with their pending, delivered and dead deliveries."""
    with stores().sessions() as session:
        rows = target_rows(session)

    def human(data: list[dict[str, Any]]) -> None:
        if not data:
            typer.echo("no notification target")
        for r in data:
            name = f" {r['name']}" if r["name"] else ""
            typer.echo(
                f"{r['id']}{name} {r['channel']} {r['url']} community={r['community']} "
                f"types={','.join(r['types']) or 'all'} min={r['min_severity']} "
                f"pending={r['pending']} delivered={r['delivered']} dead={r['dead']}"
            )

    emit(rows, as_json, human)


@notify_app.command("remove")
@user_errors
def notify_remove(target_id: Annotated[str, typer.Argument()], as_json: JsonFlag = False) -> None:
    """Remove a target (its pending deliveries are dropped)."""
    with stores().sessions.begin() as session:
        remove_target(session, target_id)
    emit({"id": target_id, "removed": True}, as_json, lambda d: typer.echo(f"target {d['id']} removed"))


@notify_app.command("test")
@user_errors
def notify_test(target_id: Annotated[str, typer.Argument()], as_json: JsonFlag = False) -> None:
    """Send a test delivery to a target now and print the result."""
    opened = stores()
    with opened.sessions() as session:
        target = get_target(session, target_id)
        session.expunge(target)
    sender = Sender(opened)
    try:
        outcome = sender.send_test(target)
    finally:
        sender.close()
    emit(
        {"id": target_id, "delivered": outcome.ok, "detail": outcome.detail},
        as_json,
        lambda d: typer.echo(("delivered: " if d["delivered"] else "failed: ") + d["detail"]),
    )
    if not outcome.ok:
        raise typer.Exit(1)


@notify_app.command("send")
@user_errors
def notify_send(
    once: Annotated[bool, typer.Option(help="deliver what is due, then exit")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="with --once: the count as JSON; running: log lines as JSON lines")
    ] = False,
) -> None:
    """Run the sender: deliver the outbox (several may run at once)."""
    if not once:
        json_logs(as_json)
        start_service(settings().metrics_directory, "notify")  # its attempts in GET /metrics
    sender = Sender(stores())
    try:
        if once:
            emit({"handled": sender.drain()}, as_json, lambda d: typer.echo(f"{d['handled']} deliveries handled"))
            return
        stop = stop_on_signals()
        sender.run_forever(stop)
    finally:
        sender.close()
