"""Backups of an installation's stores, and their restore (issue #25, docs/operations.md "Backups").

A backup is a folder:

- ``database.sqlite3`` (SQLite's online backup API: one consistent copy while others write) or
  ``database.pgdump`` (``pg_dump --format=custom``: one transaction's snapshot);
- ``redis.jsonl``: every key of the installation's namespace (``SANDTABLE_KEY_PREFIX``), one JSON line
  each with its ``DUMP`` payload and time to live. A community's keys share a hash slot, so they are
  dumped by one Lua script: each community is captured at one instant (its stream, consumer groups,
  projections, timers and live alerts agree), on a single server or on each primary of a cluster;
- ``secret.key``: the installation secret, when it lives in ``<var_dir>/secret.key`` (not when it is
  ``SANDTABLE_SECRET_KEY``); the backup is then as secret as the key;
- ``files/evidence/…`` and ``files/reports/daily/…``: the evidence images and the daily PDFs;
- ``manifest.json``: the SHA-256 and size of every file above, the schema (Alembic) revision, the code
  version, the time, and a fingerprint of the secret (never the secret).

A restore checks every hash first and refuses a backup that does not verify, or whose schema is
newer than this code; then refuses stores that are not empty (unless forced), and only then writes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tomllib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect, literal, select, table
from sqlalchemy.engine import make_url

from core.errors import InvalidInput, StoreUnavailable
from core.secrets import derive_key
from core.settings import ROOT, Settings
from store.redis_server import STORE_ERRORS, RedisClient, connect, is_cluster
from store.sql import head_revision, known_revisions, make_engine, migrate, schema_revision

MANIFEST = "manifest.json"
FORMAT = 1
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
REDIS_FILE = "redis.jsonl"
SECRET_FILE = "secret.key"
FILES = "files"
FILE_FOLDERS = ("evidence", "reports/daily")  # under the var dir: what a restore cannot make again
CHUNK = 1 << 20
KEYS_PER_CALL = 500  # keys without a community (global keys) dumped and restored per round trip
HASH_TAG = re.compile(rb"\{([^}]*)\}")

# KEYS: keys of one hash slot; answer {key, payload, pttl} of each that still exists, at one instant
DUMP_LUA = """
local out = {}
for _, key in ipairs(KEYS) do
  local payload = redis.call('DUMP', key)
  if payload then out[#out + 1] = {key, payload, redis.call('PTTL', key)} end
end
return out
"""

Warn = Callable[[str], None]


@dataclass
class BackupReport:
    """What a backup wrote."""

    out: Path
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON answer of ``manage.py backup --json``."""
        return {
            "out": str(self.out),
            "schema_revision": self.manifest["schema_revision"],
            "code_version": self.manifest["code_version"],
            "created_at": self.manifest["created_at"],
            "database": self.manifest["database"]["kind"],
            "redis_keys": self.manifest["redis"]["keys"],
            "files": len(self.manifest["files"]),
            "bytes": sum(f["bytes"] for f in self.manifest["files"].values()),
            "holds_secret": self.manifest["secret"]["file"] is not None,
            "warnings": self.warnings,
        }


@dataclass
class RestoreReport:
    """What a restore wrote."""

    source: Path
    schema_revision: str | None
    migrated_to: str | None
    redis_keys: int
    files: int
    secret_restored: bool
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON answer of ``manage.py restore --json``."""
        return {
            "from": str(self.source),
            "schema_revision": self.schema_revision,
            "migrated_to": self.migrated_to,
            "redis_keys": self.redis_keys,
            "files": self.files,
            "secret_restored": self.secret_restored,
            "warnings": self.warnings,
        }


# --- the parts of a backup ---------------------------------------------------------------------


def code_version() -> str:
    """The code's version: pyproject's, and the git commit when this is a checkout."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+{commit}" if commit else str(version)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def secret_fingerprint(secret: bytes) -> str:
    """A fingerprint of the installation secret, safe to write down: tells two keys apart, reveals neither."""
    return derive_key(secret, "backup-fingerprint").hex()[:16]


def configured_secret(settings: Settings) -> tuple[bytes | None, Path | None]:
    """The installation's secret as configured, without generating one: SANDTABLE_SECRET_KEY, or the
    key file when it exists; and that file (None for the setting)."""
    if settings.secret_key:
        return settings.secret_key.encode(), None
    path = settings.var_dir / "secret.key"
    return (path.read_text().strip().encode() if path.exists() else None), path


def _sqlite_file(settings: Settings) -> Path:
    database = make_url(settings.effective_database_url).database
    if not database or database == ":memory:":
        raise InvalidInput("SANDTABLE_DATABASE_URL: an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def _is_postgresql(settings: Settings) -> bool:
    return settings.effective_database_url.startswith("postgresql")


def pg_tool(name: str) -> str:
    """pg_dump or pg_restore: on PATH (Debian's postgresql-client), else the newest of /usr/lib/postgresql."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: p.parent.parent.name)
    if versions:
        return str(versions[-1])
    raise StoreUnavailable(f"{name} is not installed (apt-get install postgresql-client)")


def _pg_connection(settings: Settings) -> tuple[str, dict[str, str]]:
    """A libpq URI of the configured database without its password, and the environment that carries
    the password (never on a command line, where ps shows it)."""
    url = make_url(settings.effective_database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _run_pg(args: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, env=env, check=False, timeout=6 * 3600)
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).strip().splitlines() if line.strip()]
        raise StoreUnavailable(f"SANDTABLE_DATABASE_URL: {what} failed: {' / '.join(lines[-3:]) or 'no reason given'}")


def _dump_database(settings: Settings, out: Path) -> tuple[str, str]:
    """Write the SQL database into out; its kind and file name."""
    if _is_postgresql(settings):
        uri, env = _pg_connection(settings)
        _run_pg([pg_tool("pg_dump"), "--format=custom", "--file", str(out / PG_FILE), "--dbname", uri], env, "pg_dump")
        return "postgresql", PG_FILE
    source_path = _sqlite_file(settings)
    if not source_path.exists():
        raise StoreUnavailable(f"{source_path}: no such database (nothing to back up)")
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    target = sqlite3.connect(out / SQLITE_FILE)
    try:
        source.backup(target)  # in one step: a consistent copy, whatever others write meanwhile
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file (the source's WAL mode aside)
    finally:
        target.close()
        source.close()
    return "sqlite", SQLITE_FILE


def _slot_groups(client: RedisClient, keys: list[bytes]) -> Iterator[list[bytes]]:
    """The keys in groups that one script may read at one instant: a community's keys share its hash
    tag (one slot); the others go in batches, of one slot each on a cluster."""
    tagged: dict[bytes, list[bytes]] = defaultdict(list)
    untagged: dict[int, list[bytes]] = defaultdict(list)
    cluster = is_cluster(client)
    for key in keys:
        match = HASH_TAG.search(key)
        if match and match.group(1):
            tagged[match.group(1)].append(key)
        else:
            untagged[int(client.keyslot(key)) if cluster else 0].append(key)
    yield from tagged.values()
    for group in untagged.values():
        for start in range(0, len(group), KEYS_PER_CALL):
            yield group[start : start + KEYS_PER_CALL]


def _dump_redis(settings: Settings, out: Path) -> dict[str, Any]:
    """Write every key of the namespace into out/redis.jsonl; what was written."""
    client = connect(settings, decode=False)
    prefix = settings.key_prefix
    try:
        keys = sorted(set(client.scan_iter(match=f"{prefix}:*".encode(), count=1000)))
        version = _redis_version(client)
        written = 0
        with (out / REDIS_FILE).open("w", encoding="ascii") as handle:
            for group in _slot_groups(client, keys):
                for key, payload, pttl in client.eval(DUMP_LUA, len(group), *group):
                    line = {
                        "k": base64.b64encode(key).decode(),
                        "ttl": max(int(pttl), 0),
                        "v": base64.b64encode(payload).decode(),
                    }
                    handle.write(json.dumps(line) + "\n")
                    written += 1
    except STORE_ERRORS as err:
        raise StoreUnavailable(f"SANDTABLE_REDIS_URL: Redis failed during the backup ({err})") from None
    finally:
        client.close()
    return {
        "kind": "cluster" if is_cluster(client) else "server",
        "version": version,
        "key_prefix": prefix,
        "keys": written,
        "file": REDIS_FILE,
    }


def _redis_version(client: RedisClient) -> str:
    info = client.info("server")
    if is_cluster(client):  # {node: info}: the lowest version decides what a payload can be restored into
        versions = sorted(str(node.get("redis_version", "?")) for node in info.values())
        return versions[0] if versions else "?"
    return str(info.get("redis_version", "?"))


def _copy_files(settings: Settings, out: Path) -> int:
    """Copy the evidence and the daily reports under out/files; how many."""
    copied = 0
    for folder in FILE_FOLDERS:
        source = settings.var_dir / folder
        if not source.is_dir():
            continue
        for path in sorted(source.rglob("*")):
            if path.is_file() and not path.name.endswith((".tmp", ".partial.json")):  # half-written files
                target = out / FILES / folder / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
                copied += 1
    return copied


def take_backup(settings: Settings, out: Path) -> BackupReport:
    """Back up the configured stores into the folder out (new, or empty)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInput(f"--out: {out} exists and is not an empty folder")
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)  # personal data, and perhaps the secret: the backup's owner alone
    warnings: list[str] = []
    engine = make_engine(settings)
    try:
        revision = schema_revision(engine)
    finally:
        engine.dispose()
    created = dt.datetime.now(dt.UTC)
    kind, database_file = _dump_database(settings, out)
    redis = _dump_redis(settings, out)
    _copy_files(settings, out)
    secret, secret_path = configured_secret(settings)
    secret_file = None
    if secret_path is not None and secret is not None:
        shutil.copyfile(secret_path, out / SECRET_FILE)
        os.chmod(out / SECRET_FILE, 0o600)
        secret_file = SECRET_FILE
        warnings.append(
            f"this backup holds the installation secret ({secret_path}): whoever has the backup can sign "
            "sessions and test ID numbers against the stored hashes; keep it as safe as the key itself"
        )
    elif secret is not None:
        warnings.append(
            "the installation secret is SANDTABLE_SECRET_KEY (environment file), not in this backup: "
            "keep the environment file as well, a restore needs the same key"
        )
    files = {
        path.relative_to(out).as_posix(): {"sha256": sha256_of(path), "bytes": path.stat().st_size}
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }
    manifest = {
        "format": FORMAT,
        "created_at": created.isoformat(timespec="seconds"),
        "code_version": code_version(),
        "schema_revision": revision,
        "database": {"kind": kind, "file": database_file},
        "redis": redis,
        "secret": {"file": secret_file, "fingerprint": secret_fingerprint(secret) if secret else None},
        "files": files,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return BackupReport(out, manifest, warnings)


# --- restore -----------------------------------------------------------------------------------


def read_manifest(source: Path) -> dict[str, Any]:
    """The backup's manifest, checked against every file it lists and every file there is; a backup
    that does not verify raises InvalidInput saying which file and why."""
    path = source / MANIFEST
    if not path.is_file():
        raise InvalidInput(f"{source}: no {MANIFEST} (not a Sandtable backup folder)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files: dict[str, dict[str, Any]] = manifest["files"]
        if manifest.get("format") != FORMAT:
            raise InvalidInput(f"{path}: backup format {manifest.get('format')!r}, this code reads {FORMAT}")
        parts = [manifest["database"]["file"], manifest["redis"]["file"]]
        secret_file = manifest["secret"]["file"]
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise InvalidInput(f"{path}: not a valid manifest ({type(err).__name__}: {err})") from None
    for name in [*parts, *([secret_file] if secret_file else [])]:
        if name not in files:
            raise InvalidInput(f"{path}: does not list {name}")
    present = {p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()} - {MANIFEST}
    for name in sorted(present - set(files)):
        raise InvalidInput(f"{source / name}: not in the manifest; the backup was changed after it was taken")
    for name, entry in files.items():
        file = source / name
        if name not in present:
            raise InvalidInput(f"{file}: listed in the manifest but missing")
        if file.stat().st_size != entry.get("bytes") or sha256_of(file) != entry.get("sha256"):
            raise InvalidInput(f"{file}: its SHA-256 does not match the manifest; the backup is damaged or was changed")
    return dict(manifest)


def check_schema(manifest: dict[str, Any]) -> None:
    """Refuse a backup whose schema this code does not know (taken by a newer version)."""
    revision = manifest["schema_revision"]
    if revision is not None and revision not in known_revisions():
        raise InvalidInput(
            f"the backup's schema is at {revision} (code {manifest['code_version']}), newer than this code's "
            f"({head_revision()}): install that version or newer, then restore"
        )


def _database_rows(engine: Engine) -> list[str]:
    """The tables holding rows (alembic's own aside)."""
    names = [n for n in inspect(engine).get_table_names() if n != "alembic_version"]
    with engine.connect() as conn:
        return [n for n in names if conn.execute(select(literal(1)).select_from(table(n)).limit(1)).first() is not None]


def not_empty(settings: Settings, manifest: dict[str, Any]) -> list[str]:
    """What the configured stores already hold, one phrase each (empty: safe to restore into)."""
    found: list[str] = []
    if _is_postgresql(settings) or _sqlite_file(settings).exists():
        engine = make_engine(settings)
        try:
            tables = _database_rows(engine)
        finally:
            engine.dispose()
        if tables:
            found.append(f"the database has rows (in {', '.join(tables[:5])}{', …' if len(tables) > 5 else ''})")
    client = connect(settings)
    try:
        if next(iter(client.scan_iter(match=f"{settings.key_prefix}:*", count=1000)), None) is not None:
            found.append(f"Redis has keys under {settings.key_prefix}:")
    except STORE_ERRORS as err:
        raise StoreUnavailable(f"SANDTABLE_REDIS_URL: Redis did not answer ({err})") from None
    for folder in FILE_FOLDERS:
        if any(p.is_file() for p in (settings.var_dir / folder).rglob("*")):
            found.append(f"{settings.var_dir / folder} has files")
    secret, path = configured_secret(settings)
    wanted = manifest["secret"]["fingerprint"]
    if manifest["secret"]["file"] and path is not None and secret is not None and secret_fingerprint(secret) != wanted:
        found.append(f"{path} holds another secret")
    return found


def _secret_problem(settings: Settings, manifest: dict[str, Any]) -> str | None:
    """Why the configured secret cannot serve the backup's data, or None."""
    wanted = manifest["secret"]["fingerprint"]
    secret, path = configured_secret(settings)
    if wanted is None or (manifest["secret"]["file"] and path is not None):
        return None  # the backup's key file is restored in place (or there was no secret at all)
    if secret is None:
        return (
            "the backed-up installation's secret was SANDTABLE_SECRET_KEY and none is configured here: "
            "set the same SANDTABLE_SECRET_KEY (the environment file of the old host)"
        )
    if secret_fingerprint(secret) != wanted:
        return (
            "SANDTABLE_SECRET_KEY is not the key of the backed-up installation: ID-number hashes, the wanted "
            "list and signed links would not match (set the old key, or restore with --force to keep this one)"
        )
    return None


def _restore_database(settings: Settings, source: Path, manifest: dict[str, Any]) -> None:
    kind = manifest["database"]["kind"]
    file = source / manifest["database"]["file"]
    if kind != ("postgresql" if _is_postgresql(settings) else "sqlite"):
        configured = "PostgreSQL" if _is_postgresql(settings) else "SQLite"
        raise InvalidInput(f"the backup holds a {kind} database and SANDTABLE_DATABASE_URL is {configured}")
    if kind == "postgresql":
        uri, env = _pg_connection(settings)
        args = [pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges"]
        _run_pg([*args, "--single-transaction", "--dbname", uri, str(file)], env, "pg_restore")
        return
    target_path = _sqlite_file(settings)
    target_path.parent.mkdir(parents=True, exist_ok=True)
    backup = sqlite3.connect(f"file:{file}?mode=ro&immutable=1", uri=True)  # leaves the backup as it is
    target = sqlite3.connect(target_path)
    try:
        backup.backup(target)
    finally:
        target.close()
        backup.close()


def _restore_redis(settings: Settings, source: Path, manifest: dict[str, Any]) -> int:
    client = connect(settings, decode=False)
    restored = 0
    try:
        with (source / manifest["redis"]["file"]).open(encoding="ascii") as handle:
            entries = [json.loads(line) for line in handle if line.strip()]
        by_key = {base64.b64decode(e["k"]): e for e in entries}
        for group in _slot_groups(client, list(by_key)):
            pipe = client.pipeline(transaction=False)
            for key in group:
                entry = by_key[key]
                pipe.restore(key, int(entry["ttl"]), base64.b64decode(entry["v"]), replace=True)
            pipe.execute()
            restored += len(group)
    except STORE_ERRORS as err:
        raise StoreUnavailable(
            f"SANDTABLE_REDIS_URL: Redis refused the backup's keys ({str(err).splitlines()[0]}); a backup of "
            f"Redis {manifest['redis']['version']} restores into that version or newer"
        ) from None
    finally:
        client.close()
    return restored


def _restore_files(settings: Settings, source: Path) -> int:
    restored = 0
    root = source / FILES
    for path in sorted(root.rglob("*")) if root.is_dir() else []:
        if path.is_file():
            target = settings.var_dir / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            restored += 1
    return restored


def restore_backup(settings: Settings, source: Path, *, force: bool = False) -> RestoreReport:
    """Verify the backup in source and restore it into the configured stores (see the module's doc)."""
    if not source.is_dir():
        raise InvalidInput(f"{source}: no such backup folder")
    manifest = read_manifest(source)
    check_schema(manifest)
    warnings: list[str] = []
    problem = _secret_problem(settings, manifest)
    if problem and not force:
        raise InvalidInput(problem)
    if problem:
        warnings.append(problem)
    occupied = not_empty(settings, manifest)
    if occupied and not force:
        raise InvalidInput(
            "the configured stores are not empty: "
            + "; ".join(occupied)
            + " (restore into empty stores, or give --force to replace what they hold)"
        )
    if occupied:  # --force: the stores become the backup, nothing of theirs is kept beside it
        _clear(settings)
    _restore_database(settings, source, manifest)
    migrated_to = None
    if manifest["schema_revision"] != head_revision():
        engine = make_engine(settings)
        try:
            migrate(engine)  # an older backup's schema is brought to this code's
        finally:
            engine.dispose()
        migrated_to = head_revision()
    keys = _restore_redis(settings, source, manifest)
    files = _restore_files(settings, source)
    secret_restored = False
    _, secret_path = configured_secret(settings)
    if manifest["secret"]["file"] and secret_path is not None:
        secret_path.parent.mkdir(parents=True, exist_ok=True)
        secret_path.unlink(missing_ok=True)
        fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write((source / manifest["secret"]["file"]).read_bytes())
        secret_restored = True
    return RestoreReport(source, manifest["schema_revision"], migrated_to, keys, files, secret_restored, warnings)


def _clear(settings: Settings) -> None:
    """Delete the namespace's Redis keys and the restored file folders (the database is replaced whole)."""
    client = connect(settings)
    try:
        for key in client.scan_iter(match=f"{settings.key_prefix}:*", count=1000):
            client.delete(key)
    except STORE_ERRORS as err:
        raise StoreUnavailable(f"SANDTABLE_REDIS_URL: Redis did not answer ({err})") from None
    for folder in FILE_FOLDERS:
        shutil.rmtree(settings.var_dir / folder, ignore_errors=True)
