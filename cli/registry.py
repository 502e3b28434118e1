"""Registry commands: migrate, demo, stats, import, export, watchlist."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.main import JsonFlag, app, emit, settings, user_errors
from core.secrets import keyed_hash
from registry.models import WatchlistEntry
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
    _print_report(report, as_json)


def _print_report(report: Any, as_json: bool) -> None:
    data = {
        "kind": report.kind,
        "rows": report.rows,
        "written": 0 if report.dry_run else report.written,
        "dry_run": report.dry_run,
        "errors": [e.__dict__ for e in report.errors],
    }

    def human(d: dict[str, Any]) -> None:
        for error in report.errors:
            typer.echo(f"row {error.row}, column {error.column}: {error.reason}", err=True)
        if report.errors:
            typer.echo(
                f"error: {d['kind']}: {len(report.errors)} row errors in {d['rows']} rows; nothing imported", err=True
            )
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


@watchlist_app.command("add")
@user_errors
def watchlist_add(
    id_number: Annotated[str, typer.Argument(help="the 18-character ID number")],
    note: Annotated[str, typer.Option(help="why the person is wanted")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Add an identity to the wanted list (only its keyed hash is stored)."""
    from registry import validate  # noqa: PLC0415 — CLI start-up: loaded only by this command

    s = stores()
    number = validate.id_number(id_number)
    digest = keyed_hash(s.id_hash_key, number)
    with s.sessions.begin() as session:
        existing = session.get(WatchlistEntry, digest)
        if existing is None:
            session.add(WatchlistEntry(id_hash=digest, note=note[:200], added_by="cli"))
        elif note:
            existing.note = note[:200]
    emit(
        {"id_hash": digest, "added": existing is None},
        as_json,
        lambda d: typer.echo(("added to" if d["added"] else "already on") + f" the watchlist: {d['id_hash'][:12]}…"),
    )
