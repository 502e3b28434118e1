"""``manage.py report``: a situation report as PDF, CSV or XLSX (interfaces §1)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from cli.main import JsonFlag, app, emit, settings, user_errors
from core.errors import InvalidInput
from reports.narrative import is_empty
from store.stores import open_stores


@app.command()
@user_errors
def report(
    from_: Annotated[str, typer.Option("--from", help="first local date (Asia/Shanghai), YYYY-MM-DD")],
    to: Annotated[str, typer.Option("--to", help="last local date, inclusive, YYYY-MM-DD")],
    out: Annotated[Path, typer.Option("--out", help="the file (pdf, xlsx; csv: a folder, or a .zip) to write")],
    community: Annotated[
        list[str] | None,
        typer.Option("--community", "-c", help="community id; repeat it or separate with commas; 'all' = every one"),
    ] = None,
    city: Annotated[bool, typer.Option("--city", help="every community (the whole city)")] = False,
    fmt: Annotated[str, typer.Option("--format", help="pdf, csv or xlsx")] = "pdf",
    lang: Annotated[str, typer.Option("--lang", help="zh or en")] = "zh",
    role: Annotated[
        str, typer.Option("--role", help="mask personal data for: police (names shown), wall, property, admin")
    ] = "police",
    as_json: JsonFlag = False,
) -> None:
    """Write the situation report of one or more communities (or the city) over a period."""
    from auth.principal import Principal  # noqa: PLC0415 — CLI start-up: loaded only by this command
    from reports.request import build_request, check_format, check_role  # noqa: PLC0415 — CLI start-up: loaded only by this command
    from reports.service import make_report  # noqa: PLC0415 — CLI start-up: loaded only by this command

    if lang not in ("zh", "en"):
        raise InvalidInput(f"--lang must be zh or en, not {lang!r}")
    check_format(fmt)
    check_role(role)
    cfg = settings()
    # an operator at the console: every community, personal data masked for the chosen role
    operator = Principal(kind="system", id="manage.py", role=role, name="manage.py report")
    # Redis only for the live device status, and only when it is already running
    stores = open_stores(cfg, connect_redis=False, start_redis=False)
    try:
        with stores.sessions() as session:
            request = build_request(
                session, operator, cfg, communities=community, start=from_, end=to, lang=lang, city=city
            )
        data = make_report(stores, request, fmt, out)
    finally:
        stores.engine.dispose()
    figures = data.figures
    emit(
        {
            "out": str(out),
            "format": fmt,
            "lang": lang,
            "communities": list(request.communities),
            "from": request.start.isoformat(),
            "to": request.end.isoformat(),
            "alerts": figures.get("alerts", 0),
            "empty": is_empty(figures),
        },
        as_json,
        lambda d: typer.echo(
            f"{d['format']} report of {', '.join(d['communities'])} from {d['from']} to {d['to']}: "
            f"{d['alerts']} alerts; written to {d['out']}"
        ),
    )


@app.command("daily-reports")
@user_errors
def daily_reports(as_json: JsonFlag = False) -> None:
    """Write the due daily PDFs, and again those late data changed (what the workers do on their own
    unless SANDTABLE_SCHEDULED_JOBS=timers, when a systemd timer runs this: deploy/)."""
    from reports.scheduler import run_due_reports  # noqa: PLC0415 — CLI start-up: loaded only by this command

    cfg = settings()
    stores = open_stores(cfg)
    written: list[Path] = []
    try:
        # each call renders at most SANDTABLE_REPORT_DAILY_BATCH (under the same locks as the workers');
        # called until nothing is left, so one run makes every report that is due
        while batch := run_due_reports(stores, int(time.time() * 1000)):
            written += batch
    finally:
        stores.engine.dispose()
    emit(
        {"written": [str(p) for p in written], "enabled": cfg.report_daily_enabled},
        as_json,
        lambda d: typer.echo(
            f"{len(d['written'])} daily reports written"
            + ("" if d["enabled"] else " (SANDTABLE_REPORT_DAILY_ENABLED is off)")
        ),
    )
