"""The migrations (assistant/store/migrations): they run without foreign keys, the app runs with them."""

from __future__ import annotations

from pathlib import Path


async def test_migrations_run_without_foreign_keys_and_the_app_with_them(tmp_path: Path) -> None:
    from sqlalchemy import text

    from assistant.store import Store
    from assistant.store.store import make_engine

    url = f"sqlite+aiosqlite:///{tmp_path / 'fk.db'}"
    migrating = make_engine(url, foreign_keys=False)
    async with migrating.connect() as conn:
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 0
    await migrating.dispose()
    store = Store(url)
    assert await store.transaction(lambda conn: conn.execute(text("PRAGMA foreign_keys")).scalar()) == 1
    await store.aclose()
