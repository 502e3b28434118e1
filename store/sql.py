"""The SQL side: declarative base, engine and sessions, Alembic migrations, and the few helpers
that keep SQLite (embedded, the default) and PostgreSQL (production) behaving the same.

What differs between the two and is handled here (docs/architecture.md, "PostgreSQL"):
- times: ``UTCDateTime`` stores UTC and always reads back an aware UTC datetime (SQLite keeps
  no offset; PostgreSQL's ``timestamptz`` would answer in the session's time zone, which is
  set to UTC on every connection anyway);
- upserts: ``dialect_insert`` gives the dialect's INSERT with ``on_conflict_do_update`` /
  ``on_conflict_do_nothing`` (both dialects have ON CONFLICT; the construct is per dialect);
- connection set-up: SQLite pragmas (WAL, foreign keys, busy timeout) or PostgreSQL's time zone,
  connect timeout and application name;
- migrations: concurrent starts on PostgreSQL are serialised by an advisory lock (migrations/env.py).
"""

from __future__ import annotations

import ast
import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from core.errors import StoreUnavailable
from core.settings import ROOT, Settings

log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


URL_FORMS = "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"


class Base(DeclarativeBase):
    """Declarative base of every table."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A point in time stored in UTC and read back as an aware UTC datetime, on every database.

    SQLite has no time zone: an aware value would be stored as its wall-clock digits and read
    back naive. PostgreSQL's ``timestamptz`` converts, and answers in the session's zone. Both
    are made to agree here: aware values are converted to UTC before they are bound (a naive one
    is taken as UTC, the project's convention), and every value read is aware UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Aware UTC in (naive is taken as UTC); SQLite gets the naive UTC wall time."""
        if value is None:
            return None
        value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Aware UTC out."""
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    """Now, in UTC, timezone-aware."""
    return dt.datetime.now(dt.UTC)


def dialect_insert(bind: Session | Connection | Engine, table: Any) -> Any:
    """INSERT for the bind's dialect, with ``on_conflict_do_update`` / ``on_conflict_do_nothing``.

    SQLite (3.24+) and PostgreSQL both have ``INSERT … ON CONFLICT``; SQLAlchemy builds it with a
    construct per dialect, so code that upserts asks for the right one here.
    """
    name = (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise StoreUnavailable(f"SANDTABLE_DATABASE_URL: the {name} database is not supported (use {URL_FORMS})")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _postgresql_session(dbapi_connection: Any, _record: Any) -> None:
    # UTC for the session: what timestamptz values are rendered in by SQL functions (date_trunc,
    # ::date) and how a naive literal is read; the application itself always binds aware UTC
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
    dbapi_connection.autocommit = autocommit


def make_engine(settings: Settings) -> Engine:
    """An engine for the configured database; the embedded SQLite file's folder is created."""
    url = settings.effective_database_url
    setting = "SANDTABLE_DATABASE_URL" if settings.database_url else "embedded SQLite"
    try:
        if url.startswith("sqlite"):
            settings.var_dir.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 15})
            event.listen(engine, "connect", _sqlite_pragmas)
        elif url.startswith("postgresql"):
            engine = create_engine(
                url,
                pool_pre_ping=True,
                pool_size=5,
                max_overflow=10,
                connect_args={"connect_timeout": 10, "application_name": "sandtable"},
            )
            event.listen(engine, "connect", _postgresql_session)
        else:
            raise StoreUnavailable(f"{setting}: {url.split(':', 1)[0]} databases are not supported (use {URL_FORMS})")
    except NoSuchModuleError as err:
        raise StoreUnavailable(f"{setting}: unknown database driver in the URL (use {URL_FORMS})") from err
    except ArgumentError as err:
        raise StoreUnavailable(f"{setting}: {err}") from err
    except ModuleNotFoundError as err:
        raise StoreUnavailable(f"{setting}: the database driver is not installed ({err.name})") from err
    return engine


def check_connection(engine: Engine, setting: str = "SANDTABLE_DATABASE_URL") -> None:
    """Open one connection; an unreachable database raises StoreUnavailable naming the setting."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as err:
        reason = str(err.orig).strip().splitlines()[0] if err.orig else str(err)
        raise StoreUnavailable(f"{setting}: cannot open the database ({reason})") from err
    except SQLAlchemyError as err:
        raise StoreUnavailable(f"{setting}: {str(err).splitlines()[0]}") from err


def alembic_config(engine: Engine) -> Any:
    """The Alembic configuration bound to this engine."""
    from alembic.config import Config  # noqa: PLC0415 — alembic (0.2 s) loads only to migrate or read the head revision

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine, setting: str = "SANDTABLE_DATABASE_URL") -> None:
    """Bring the schema to the newest migration; a database that refuses raises StoreUnavailable."""
    from alembic import command  # noqa: PLC0415 — alembic (0.2 s) loads only to migrate or read the head revision

    try:
        command.upgrade(alembic_config(engine), "head")
    except SQLAlchemyError as err:
        orig = getattr(err, "orig", None)
        reason = str(orig or err).strip().splitlines()[0]
        raise StoreUnavailable(f"{setting}: cannot migrate the database ({reason})") from err


def schema_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None when it has none."""
    if not inspect(engine).has_table("alembic_version"):
        return None
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str | None:
    """The newest migration in migrations/versions."""
    head = _script_directory().get_current_head()
    return str(head) if head else None


@dataclass(frozen=True)
class Migration:
    """One migration of migrations/versions: its revision, what it does, whether it can be undone."""

    revision: str
    down_revision: str | None
    message: str
    reversible: bool


def _script_directory() -> Any:
    from alembic.script import ScriptDirectory  # noqa: PLC0415 — alembic (0.2 s) loads only to migrate or read the head revision

    return ScriptDirectory(str(ROOT / "migrations"))


def known_revisions() -> set[str]:
    """Every revision of migrations/versions (a database at another one was migrated by newer code)."""
    return {script.revision for script in _script_directory().walk_revisions()}


def pending_migrations(current: str | None) -> list[Migration]:
    """The migrations from the database's revision (None: nothing yet) to the newest, oldest first;
    a revision this code does not know raises StoreUnavailable."""
    script = _script_directory()
    if current is not None and current not in known_revisions():
        raise StoreUnavailable(
            f"the database's schema is at {current}, which this code does not know: newer code migrated it "
            "(run that version, or restore a backup taken before)"
        )
    head = script.get_current_head()
    steps = list(script.iterate_revisions(head, current or "base")) if head != current else []
    return [
        Migration(
            revision=step.revision,
            down_revision=step.down_revision if isinstance(step.down_revision, str) else None,
            message=(step.doc or "").strip().splitlines()[0] if step.doc else "",
            reversible=has_real_downgrade(Path(step.path).read_text(encoding="utf-8")),
        )
        for step in reversed(steps)
    ]


def has_real_downgrade(source: str) -> bool:
    """True when a migration's ``downgrade()`` does something: not missing, not only a docstring,
    ``pass``, ``...`` or a raise (how an irreversible migration says so)."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == "downgrade":
            return any(not _inert(statement) for statement in node.body)
    return False


def _inert(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.Pass | ast.Raise):
        return True
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)  # a docstring, or ...


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory for the engine."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with factory() as session, session.begin():
        yield session


def db_path_hint(settings: Settings) -> Path | None:
    """The SQLite file when the embedded database is used."""
    return None if settings.database_url else settings.sqlite_path


CONFLICT_ATTEMPTS = 3
T = TypeVar("T")


def again_on_conflict(write: Callable[[], T], what: str, attempts: int = CONFLICT_ATTEMPTS) -> T:
    """Run a transaction that checks for rows and then inserts them; when another process inserted
    one of them in between (the second to commit meets the first one's row: ``IntegrityError``), run
    it again — it then finds the row and skips it. Two workers meet this way when one claims entries
    another still holds, or both write one alert (issue #22: the soak found workers that crashed on it)."""
    for attempt in range(attempts):
        try:
            return write()
        except IntegrityError:
            if attempt == attempts - 1:
                raise
            log.info("%s: another process wrote the same rows first; writing again", what)
    raise AssertionError("unreachable")
