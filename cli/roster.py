"""Duty rosters: ``roster import FILE.csv --community C [--dry-run] [--json]`` (interfaces §8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.main import JsonFlag, app, fail, user_errors
from cli.registry import stores
from core.errors import InvalidInput

roster_app = typer.Typer(help="Guards' duty rosters (shifts).", no_args_is_help=True)
app.add_typer(roster_app, name="roster")


@roster_app.command("import")
@user_errors
def roster_import(
    file: Annotated[Path, typer.Argument(help="CSV with columns guard, start, end and optional note")],
    community: Annotated[str, typer.Option(help="the community whose guards the roster lists")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check every row, store nothing")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Import shifts, all or nothing: one bad row (with its reason) and nothing is stored.
    Times are RFC 3339, or ``YYYY-MM-DD HH:MM`` in Beijing time."""
    from closedloop.duty import import_roster  # noqa: PLC0415 — CLI start-up: loaded only by this command

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInput(f"cannot read {file}: {err}") from None
    with stores().sessions.begin() as session:
        rows, bad = import_roster(session, community, text, dry_run=dry_run)
    stored = 0 if bad or dry_run else len(rows)
    report: dict[str, Any] = {
        "community": community,
        "dry_run": dry_run,
        "rows": len(rows),
        "imported": stored,
        "errors": [{"line": r.line, "guard": r.guard, "reasons": r.reasons} for r in bad],
    }
    refused = f"roster refused: {len(bad)} of {len(rows)} rows are wrong, nothing was imported"
    if as_json:
        if bad:
            report["error"] = refused
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        for row in bad:
            typer.echo(f"line {row.line} ({row.guard or '-'}): {'; '.join(row.reasons or [])}", err=True)
        if not bad:
            verb = "would be imported (dry run)" if dry_run else "imported"
            typer.echo(f"{len(rows)} shifts {verb} for community {community}")
    if bad:
        raise typer.Exit(1) if as_json else fail(refused)
