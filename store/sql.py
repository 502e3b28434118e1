"""The SQL side: declarative base, engine and sessions, and Alembic migrations."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, inspect, text
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

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


class Base(DeclarativeBase):
    """Declarative base of every table."""

    metadata = MetaData(naming_convention=NAMING)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(settings: Settings) -> Engine:
    """An engine for the configured database; the embedded SQLite file's folder is created."""
    url = settings.effective_database_url
    setting = "SANDTABLE_DATABASE_URL" if settings.database_url else "embedded SQLite"
    try:
        if url.startswith("sqlite"):
            settings.var_dir.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 15})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    except (ArgumentError, NoSuchModuleError) as err:
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
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration."""
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


def schema_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None when it has none."""
    if not inspect(engine).has_table("alembic_version"):
        return None
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str | None:
    """The newest migration in migrations/versions."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(ROOT / "migrations"))
    return script.get_current_head()


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
