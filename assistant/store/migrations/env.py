"""Alembic environment: runs migrations over the app's async engine (SQLite or Postgres)."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from assistant.store.store import make_engine
from assistant.store.tables import Base

target_metadata = Base.metadata
MIGRATION_LOCK = 0x61737369  # any constant the app does not use for anything else ("assi")


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":  # app replicas starting together migrate one at a time
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        context.run_migrations()


async def run_async() -> None:
    # foreign keys off: SQLite's batch migrations recreate tables, which with them on would cascade-delete
    engine = make_engine(context.config.get_main_option("sqlalchemy.url"), foreign_keys=False)
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=context.config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async())
