"""Operating commands (issue #25, docs/operations.md): ``backup``, ``restore``, ``upgrade --check``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.main import JsonFlag, app, emit, settings, user_errors
from store.backup import restore_backup, take_backup
from store.sql import head_revision, make_engine, migrate, pending_migrations, schema_revision


@app.command()
@user_errors
def backup(
    out: Annotated[Path, typer.Option("--out", help="a new (or empty) folder to write the backup into")],
    as_json: JsonFlag = False,
) -> None:
    """Back up the SQL database, Redis, the secret key file and the evidence, with a SHA-256 manifest."""
    report = take_backup(settings(), out)
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)

    def human(d: dict[str, Any]) -> None:
        typer.echo(
            f"backup of {d['database']} (schema {d['schema_revision']}), {d['redis_keys']} Redis keys and "
            f"{d['files']} files ({d['bytes']} bytes) written to {d['out']}, code {d['code_version']}"
        )

    emit(report.as_dict(), as_json, human)


@app.command()
@user_errors
def restore(
    source: Annotated[Path, typer.Argument(help="a folder written by manage.py backup")],
    force: Annotated[
        bool, typer.Option("--force", help="replace what the configured stores hold (refused otherwise)")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Verify a backup (every SHA-256, the schema) and restore it into the configured stores."""
    report = restore_backup(settings(), source, force=force)
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)

    def human(d: dict[str, Any]) -> None:
        migrated = f", migrated to {d['migrated_to']}" if d["migrated_to"] else ""
        secret = "; the secret key file restored" if d["secret_restored"] else ""
        typer.echo(
            f"restored from {d['from']}: database at {d['schema_revision']}{migrated}, "
            f"{d['redis_keys']} Redis keys, {d['files']} files{secret}"
        )

    emit(report.as_dict(), as_json, human)


@app.command()
@user_errors
def upgrade(
    check: Annotated[
        bool, typer.Option("--check", help="only list the pending migrations and whether each can be undone")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """List the pending migrations (--check), or apply them (what manage.py migrate does)."""
    engine = make_engine(settings())
    try:
        current = schema_revision(engine)
        pending = pending_migrations(current)
        if not check and pending:
            migrate(engine)
    finally:
        engine.dispose()
    steps = [dataclasses.asdict(m) for m in pending]
    irreversible = [m["revision"] for m in steps if not m["reversible"]]
    doc = {
        "current": current,
        "head": head_revision(),
        "pending": steps,
        "reversible": not irreversible,
        "applied": not check and bool(steps),
    }

    def human(d: dict[str, Any]) -> None:
        if not d["pending"]:
            typer.echo(f"schema at {d['current']}: up to date")
            return
        verb = "applied" if d["applied"] else "pending"
        typer.echo(f"schema at {d['current'] or 'nothing'}; {len(d['pending'])} migrations {verb} up to {d['head']}:")
        for m in d["pending"]:
            undo = "reversible" if m["reversible"] else "NOT reversible (no downgrade)"
            typer.echo(f"  {m['revision']:<8} {undo:<30} {m['message']}")
        if irreversible:
            typer.echo(f"take a backup first: {', '.join(irreversible)} cannot be undone by a downgrade")

    emit(doc, as_json, human)
