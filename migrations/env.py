"""Alembic environment: runs migrations on the engine Sandtable configured."""

from __future__ import annotations

from alembic import context

import store.models_index  # noqa: F401  (registers every table on Base.metadata)
from core.settings import get_settings
from store.sql import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run migrations on the engine handed over by store.sql.migrate, or the configured one."""
    engine = config.attributes.get("engine") or make_engine(get_settings())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run them against a database")
run_migrations_online()
