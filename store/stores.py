"""The stores a process works with: settings, Redis, the SQL database."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.secrets import derive_key, installation_secret
from core.settings import Settings
from store.keys import Keys
from store.redis_server import RedisClient, connect
from store.sql import check_connection, make_engine, migrate, session_factory


@dataclass
class Stores:
    """Connections shared by one process; built once by open_stores and passed to constructors.

    Redis is connected on first use, so that commands working on the registry alone (stats,
    import) neither need nor start a Redis server.
    """

    settings: Settings
    engine: Engine
    keys: Keys = field(default_factory=Keys)
    start_redis: bool = True

    @cached_property
    def redis(self) -> RedisClient:
        """The Redis client (the embedded server is started here when needed)."""
        return connect(self.settings, start_embedded_server=self.start_redis)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """The SQL session factory."""
        return session_factory(self.engine)

    @cached_property
    def secret(self) -> bytes:
        """The installation secret."""
        return installation_secret(self.settings)

    @cached_property
    def id_hash_key(self) -> bytes:
        """The key of ID-number hashes."""
        return derive_key(self.secret, "id-number-hash")


def open_stores(
    settings: Settings, *, run_migrations: bool = True, start_redis: bool = True, connect_redis: bool = True
) -> Stores:
    """Connect to (or start) the configured stores and bring the schema up to date."""
    engine = make_engine(settings)
    setting = "SANDTABLE_DATABASE_URL" if settings.database_url else "embedded SQLite"
    check_connection(engine, setting)
    if run_migrations:
        migrate(engine, setting)
    stores = Stores(settings=settings, engine=engine, keys=Keys(settings.key_prefix), start_redis=start_redis)
    if connect_redis:
        _ = stores.redis  # fail fast when Redis is wrong
    return stores
