"""``manage.py case export``, ``manage.py purge`` and ``manage.py archive`` (issue #19: case files and
retention, interfaces §9; issue 24: the archive as a process of its own)."""

from __future__ import annotations

import getpass
import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.main import JsonFlag, app, json_logs, settings, stop_on_signals, user_errors
from core.errors import InvalidInput
from store.stores import open_stores

case_app = typer.Typer(help="Case files (案件): export.", no_args_is_help=True)
app.add_typer(case_app, name="case")


def _summary(data: dict[str, Any], as_json: bool, human: str) -> None:
    """A line for a human, or the machine-readable summary as the last line."""
    typer.echo(json.dumps(data, ensure_ascii=False, separators=(",", ":")) if as_json else human)


@case_app.command("export")
@user_errors
def case_export(
    case_id: Annotated[str, typer.Argument(help="the case id (C20261206-1a2b3c)")],
    out: Annotated[Path, typer.Option("--out", help="the folder to write the four files into")],
    lang: Annotated[str, typer.Option("--lang", help="zh or en")] = "zh",
    as_json: JsonFlag = False,
) -> None:
    """Write a case's timeline.csv, timeline.json, case.pdf and manifest.json (SHA-256 of each)."""
    from auth.principal import Principal  # noqa: PLC0415 — CLI start-up: loaded only by this command
    from memory.case_export import export_case  # noqa: PLC0415 — CLI start-up: loaded only by this command

    if lang not in ("zh", "en"):
        raise InvalidInput(f"--lang must be zh or en, not {lang!r}")
    cfg = settings()
    # an operator at the server's console: every case, audited under their login name
    operator = Principal(kind="system", id=f"manage.py:{getpass.getuser()}", role="admin", name="manage.py case export")
    stores = open_stores(cfg, connect_redis=False, start_redis=False)
    try:
        with stores.sessions.begin() as session:
            done = export_case(session, cfg, operator, case_id, out, lang)
    finally:
        stores.engine.dispose()
    _summary(
        {"case": done.case, "out": str(out), "files": done.files, "counts": done.counts},
        as_json,
        f"case {done.case}: {done.counts['timeline']} timeline entries ({done.counts['pins']} pins), "
        f"{done.counts['notes']} notes; written to {out}",
    )


@app.command()
@user_errors
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count what would be purged; remove nothing")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Apply the retention periods (SANDTABLE_RETAIN_*_DAYS): purge what is older, per data class."""
    from auth.principal import Principal  # noqa: PLC0415 — CLI start-up: loaded only by this command
    from memory import retention  # noqa: PLC0415 — CLI start-up: loaded only by this command

    cfg = settings()
    operator = Principal(kind="system", id=f"manage.py:{getpass.getuser()}", role="admin", name="manage.py purge")
    stores = open_stores(cfg)
    try:
        report = retention.purge(stores, int(time.time() * 1000), dry_run=dry_run, principal=operator)
    finally:
        stores.engine.dispose()
    verb = "would purge" if dry_run else "purged"
    lines = [f"{klass:<16} {report.classes[klass]:>9}  (before {report.before[klass]})" for klass in retention.CLASSES]
    if report.partitions:
        lines.append(f"partitions dropped: {', '.join(report.partitions)}")
    _summary(report.as_dict(), as_json, f"{verb}:\n" + "\n".join(lines))


def give_way(niceness: int) -> None:
    """Lower this process's CPU priority to ``niceness`` (SANDTABLE_ARCHIVE_NICE), never raise it: the
    archive is no alert path, so in a burst the cores go to ingest and the analytics first and the
    archive catches up after them. A unit that already runs it nicer keeps its own setting."""
    if os.getpriority(os.PRIO_PROCESS, 0) < niceness:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)


@app.command()
@user_errors
def archive(
    once: Annotated[
        bool, typer.Option("--once", help="copy what the streams hold, build the keyframes up to now, then exit")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="with --once: the counts as JSON; running: log lines as JSON lines")
    ] = False,
) -> None:
    """Run the event archive: copy every accepted event into the archive (its own consumer group) and
    keep the state keyframes up to now; several may run at once. Stops cleanly on Ctrl-C or SIGTERM."""
    from memory.archive import Archiver  # noqa: PLC0415 — CLI start-up: loaded only by this command

    if not once:
        json_logs(as_json)
    stores = open_stores(settings())
    try:
        archiver = Archiver(stores)
        if once:
            communities = archiver.events.communities()
            archived = 0
            while copied := archiver.run_once(communities, count=stores.settings.archive_batch):
                archived += copied
            now = int(time.time() * 1000)
            built = [c for c in communities if archiver.keep_keyframes(c, now)]
            _summary(
                {"archived": archived, "communities": len(communities), "keyframes": len(built)},
                as_json,
                f"{archived} events archived from {len(communities)} communities; "
                f"keyframes kept up to now in {len(built)}",
            )
            return
        give_way(stores.settings.archive_nice)
        stop = stop_on_signals()
        archiver.run(stop)
    finally:
        stores.engine.dispose()
