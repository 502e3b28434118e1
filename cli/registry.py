"""Registry commands: migrate, demo, stats, import, export, watchlist (add, remove, list, import)."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any

import typer

from auth.principal import Principal
from auth.service import Auditor
from cli.main import JsonFlag, app, emit, settings, user_errors
from core.errors import InvalidInput
from core.secrets import keyed_hash
from registry.stats import community_stats
from store.sql import check_connection, head_revision, make_engine, schema_revision
from store.sql import migrate as upgrade
from store.stores import Stores, open_stores

watchlist_app = typer.Typer(help="The wanted list (stored only as keyed hashes of ID numbers).", no_args_is_help=True)
app.add_typer(watchlist_app, name="watchlist")


def stores() -> Stores:
    """The configured stores, migrated; Redis is connected only when a command uses it."""
    return open_stores(settings(), connect_redis=False)


@app.command()
@user_errors
def migrate(as_json: JsonFlag = False) -> None:
    """Bring the database schema to the newest migration (every other command does it too)."""
    cfg = settings()
    setting = "SANDTABLE_DATABASE_URL" if cfg.database_url else "embedded SQLite"
    engine = make_engine(cfg)
    try:
        check_connection(engine, setting)
        before = schema_revision(engine)
        upgrade(engine, setting)
        after = schema_revision(engine)
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    result = {"database": where, "from": before, "to": after, "head": head_revision()}
    emit(
        result,
        as_json,
        lambda r: typer.echo(
            f"{r['database']}: schema at {r['to']}" + (f" (was {r['from'] or 'empty'})" if r["from"] != r["to"] else "")
        ),
    )


@app.command()
@user_errors
def demo(
    reset: Annotated[bool, typer.Option("--reset", help="delete the registry and live state first")] = False,
    city: Annotated[bool, typer.Option("--city", help="the synthetic city (1,537 communities)")] = False,
    city_size: Annotated[
        int, typer.Option("--city-size", min=2, max=5000, help="communities of the synthetic city, for a smaller one")
    ] = 1537,
    as_json: JsonFlag = False,
) -> None:
    """Build the demo registry: Wanhu Xincun and Xingbang Central Park."""
    from simulator.seed import build_demo  # noqa: PLC0415 — CLI start-up: loaded only by this command

    s = stores()
    if city:
        _build_city(s, reset=reset, size=city_size, as_json=as_json)
        return
    build_demo(s, reset=reset)
    with s.sessions() as session:
        figures = community_stats(session)
    emit(figures, as_json, _print_stats)


def _build_city(s: Stores, *, reset: bool, size: int, as_json: bool) -> None:
    from simulator.seed import build_city  # noqa: PLC0415 — CLI start-up: loaded only by this command

    def progress(done: int, total: int) -> None:
        if not as_json and (done % 200 < 40 or done == total):
            typer.echo(f"  {done:,} / {total:,} communities", err=True)

    if not as_json:
        typer.echo(f"Building the synthetic city ({size:,} communities) …", err=True)
    report = build_city(s, reset=reset, size=size, progress=progress)
    figures = {
        "communities": report.communities,
        "households": report.households,
        "residents": report.residents,
        "devices": report.devices,
        "seconds": report.seconds,
    }
    emit(
        figures,
        as_json,
        lambda f: typer.echo(
            f"The city: {f['communities']:,} communities, {f['households']:,} households, "
            f"{f['residents']:,} residents, {f['devices']:,} devices, built in {f['seconds']:.0f} s"
        ),
    )


def _print_stats(figures: dict[str, Any]) -> None:
    for c in figures["communities"]:
        typer.echo(
            f"{c['name']} ({c['id']}): {c['buildings']} buildings, {c['households']} households, "
            f"{c['residents']} residents, {c['rentals']} rentals, {c['group_rentals']} group rentals, "
            f"{c['elderly_alone']} elders living alone, {c['grids']} grids, {c['guards']} guards"
        )
        devices = ", ".join(f"{k} {v}" for k, v in c["devices"].items() if v)
        typer.echo(f"  devices: {devices}")


@app.command()
@user_errors
def stats(as_json: JsonFlag = False) -> None:
    """Registry counts per community."""
    with stores().sessions() as session:
        emit(community_stats(session), as_json, _print_stats)


@app.command("import")
@user_errors
def import_(
    kind: Annotated[
        str,
        typer.Argument(
            help="boundary, grids, buildings, paths, checkpoints, households, people, devices, vehicles, "
            "guards or routes"
        ),
    ],
    path: Annotated[
        Path,
        typer.Argument(help="GeoJSON/Shapefile/GeoPackage for geodata (checkpoints: or CSV/XLSX); CSV/XLSX tables"),
    ],
    community: Annotated[str, typer.Option(help="community id")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check every row, write nothing")] = False,
    layer: Annotated[str | None, typer.Option(help="GeoPackage layer or XLSX sheet")] = None,
    name: Annotated[str | None, typer.Option(help="community name (boundary of a new community)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Import a file into the registry: all rows or none; --dry-run lists every row error."""
    from registry import importers  # noqa: PLC0415 — CLI start-up: loaded only by this command

    s = stores()
    with s.sessions() as session:
        try:
            if kind in importers.GEO_KINDS:
                report = importers.import_geo(
                    session, kind, path, community, dry_run=dry_run, layer=layer, community_name=name
                )
            else:
                report = importers.import_table(
                    session, kind, path, community, id_hash_key=s.id_hash_key, dry_run=dry_run, sheet=layer
                )
            if not dry_run:
                session.commit()
        except importers.ImportRejected as err:
            session.rollback()
            _print_report(err.report, as_json)
            raise typer.Exit(1) from None
    if not dry_run and kind not in importers.GEO_KINDS:
        # the gates answer from Redis: who may pass is re-projected at once (gates/identities.py)
        from gates.identities import project_identities  # noqa: PLC0415 — CLI start-up: loaded only by this command

        project_identities(s, community)
    if report.identities and not dry_run:
        # the wanted list checked for every imported person; the importer sees nothing different
        from closedloop.service import Loop  # noqa: PLC0415 — CLI start-up: loaded only by this command
        from closedloop.wanted import check_people  # noqa: PLC0415

        check_people(Loop(s), community, report.identities)
    _print_report(report, as_json)


def _print_report(report: Any, as_json: bool) -> None:
    data = {
        "kind": report.kind,
        "rows": report.rows,
        "written": 0 if report.dry_run else report.written,
        "dry_run": report.dry_run,
        "errors": [e.__dict__ for e in report.errors],
    }
    if report.errors:  # with --json, the refusal is in the one JSON document
        data["error"] = f"{report.kind}: {len(report.errors)} row errors in {report.rows} rows; nothing imported"

    def human(d: dict[str, Any]) -> None:
        for error in report.errors:
            typer.echo(f"row {error.row}, column {error.column}: {error.reason}", err=True)
        if report.errors:
            typer.echo(f"error: {d['error']}", err=True)
        elif report.dry_run:
            typer.echo(f"{d['kind']}: {d['rows']} rows are valid (dry run: nothing written)")
        else:
            typer.echo(f"{d['kind']}: {d['written']} rows imported")

    emit(data, as_json, human)


@app.command()
@user_errors
def export(
    kind: Annotated[str, typer.Argument(help="boundary, grids, buildings, paths, checkpoints or routes")],
    out: Annotated[Path, typer.Option(help=".geojson, .gpkg or .shp (routes: .csv or .xlsx)")],
    community: Annotated[str, typer.Option(help="community id")],
    as_json: JsonFlag = False,
) -> None:
    """Export a geodata layer of a community (WGS-84), or its patrol routes as a routes file."""
    from registry.importers import export_geo, export_routes  # noqa: PLC0415 — CLI start-up: loaded only by this command

    with stores().sessions() as session:
        n = export_routes(session, community, out) if kind == "routes" else export_geo(session, kind, community, out)
    unit = "rows" if kind == "routes" else "features"
    emit(
        {"kind": kind, "written": n, "out": str(out)},
        as_json,
        lambda d: typer.echo(f"{d['kind']}: {d['written']} {unit} written to {d['out']}"),
    )


def _operator(name: str) -> Principal:
    """Who is at the server's console: audited under their login name."""
    return Principal(kind="system", id=f"manage.py:{getpass.getuser()}", role="admin", name=f"manage.py {name}")


def _watchlist_changed(s: Stores, hashes: list[str], action: str, reason: str) -> None:
    """After a committed change: the live copy rewritten, the change audited (a hash prefix, never a number)."""
    from registry import watchlist  # noqa: PLC0415 — CLI start-up: loaded only by these commands

    with s.sessions() as session:
        watchlist.project(s.redis, s.keys, session, hashes)
    target = "watchlist:" + (hashes[0][:12] if len(hashes) == 1 else f"{len(hashes)} entries")
    Auditor(s.sessions).record(_operator(f"watchlist {action}"), f"watchlist.{action}", target=target, reason=reason)


@watchlist_app.command("add")
@user_errors
def watchlist_add(
    id_number: Annotated[str, typer.Argument(help="the 18-character ID number")],
    note: Annotated[str, typer.Option(help="why the person is wanted")] = "",
    expires: Annotated[str | None, typer.Option(help="the last day the entry holds (YYYY-MM-DD, Beijing)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add an identity to the wanted list (only its keyed hash is stored), or change its note and last day."""
    from registry import validate, watchlist  # noqa: PLC0415 — CLI start-up: loaded only by this command

    s = stores()
    number = validate.id_number(id_number)
    last_day = watchlist.parse_expiry(expires, watchlist.today_local())
    digest = keyed_hash(s.id_hash_key, number)
    with s.sessions.begin() as session:
        added = watchlist.add(session, digest, note, last_day, "cli")
    _watchlist_changed(s, [digest], "add", note[:200])
    emit(
        {"id_hash": digest, "added": added, "expires": last_day.isoformat() if last_day else None},
        as_json,
        lambda d: typer.echo(
            ("added to" if d["added"] else "updated on")
            + f" the wanted list: {d['id_hash'][:12]}…"
            + (f" until {d['expires']}" if d["expires"] else "")
        ),
    )


@watchlist_app.command("remove")
@user_errors
def watchlist_remove(
    id_number: Annotated[str, typer.Argument(help="the 18-character ID number")],
    reason: Annotated[str, typer.Option(help="why the entry is removed (audited)")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Take an identity off the wanted list."""
    from registry import validate, watchlist  # noqa: PLC0415 — CLI start-up: loaded only by this command

    s = stores()
    digest = keyed_hash(s.id_hash_key, validate.id_number(id_number))
    with s.sessions.begin() as session:
        removed = watchlist.remove(session, digest)
    if not removed:
        raise InvalidInput(key="watchlist.err.not_listed")
    _watchlist_changed(s, [digest], "remove", reason)
    emit(
        {"id_hash": digest, "removed": True},
        as_json,
        lambda d: typer.echo(f"removed from the wanted list: {d['id_hash'][:12]}…"),
    )


@watchlist_app.command("list")
@user_errors
def watchlist_list(as_json: JsonFlag = False) -> None:
    """The wanted list: hash prefix, note, last day (never a number)."""
    from registry import watchlist  # noqa: PLC0415 — CLI start-up: loaded only by this command

    with stores().sessions() as session:
        entries = watchlist.listing(session, watchlist.today_local())

    def human(rows: list[dict[str, Any]]) -> None:
        for e in rows:
            until = e["expires"] or "-"
            flag = " (expired)" if e["expired"] else ""
            typer.echo(f"{e['hash_prefix']}…  until {until}{flag}  {e['note']}  (added by {e['added_by']})")
        typer.echo(f"{len(rows)} entries")

    emit(entries, as_json, human)


@watchlist_app.command("import")
@user_errors
def watchlist_import(
    path: Annotated[Path, typer.Argument(help="CSV or XLSX with the columns id_number, note, expires")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check every row, write nothing")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Import wanted identities: every row valid or nothing imported (each bad row with its reason)."""
    from registry import importers, watchlist  # noqa: PLC0415 — CLI start-up: loaded only by this command

    s = stores()
    try:
        rows, report = watchlist.read_import(path, s.id_hash_key, watchlist.today_local())
    except importers.ImportRejected as err:
        _print_report(err.report, as_json)
        raise typer.Exit(1) from None
    report.dry_run = dry_run
    if not dry_run:
        with s.sessions.begin() as session:
            for row in rows:
                watchlist.add(session, row.id_hash, row.note, row.expires_on, "import")
        _watchlist_changed(s, [r.id_hash for r in rows], "import", f"{path.name}: {len(rows)} rows")
    _print_report(report, as_json)
