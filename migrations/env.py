"""Alembic environment: runs migrations on the engine Sandtable configured."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

import migrations.models_index  # noqa: F401  (registers every table on Base.metadata)
from core.settings import get_settings
from store.sql import Base, make_engine

config = context.config
target_metadata = Base.metadata

# Any constant: every process that starts migrations on PostgreSQL takes this lock first, so two
# processes starting at once (the web workers, a worker, the supervisor) never migrate together.
MIGRATION_LOCK = 0x53414E44  # "SAND"


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
            if connection.dialect.name == "postgresql":
                # held to the end of the transaction; the second process then finds the schema at head
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run them against a database")
run_migrations_online()
