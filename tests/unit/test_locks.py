"""Locks in the store (assistant/store/locks.py): one holder at a time, taken over when its holder is gone."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import update

from assistant.store import Store, locks
from assistant.store.tables import Lock, utcnow

pytestmark = pytest.mark.database  # on SQLite, and on PostgreSQL when ASSISTANT_TEST_POSTGRES_URL is set


async def test_lock_refuses_a_second_holder_and_is_taken_over_when_its_holder_is_gone(store_url: str) -> None:
    store = Store(store_url)
    try:
        me = locks.new_holder()
        assert await store.transaction(lambda c: locks.try_acquire(c, "retrain", me)) is None
        other = locks.new_holder()
        assert await store.transaction(lambda c: locks.try_acquire(c, "retrain", other)) == me  # alive: refused

        # the holder stopped beating (another host, say): taken over after stale_after_s
        await store.transaction(
            lambda c: c.execute(update(Lock.__table__).values(heartbeat_at=utcnow() - timedelta(seconds=300)))
        )
        assert await store.transaction(lambda c: locks.try_acquire(c, "retrain", other, 120)) is None
        assert not await store.transaction(lambda c: locks.heartbeat(c, "retrain", me))  # me lost it
        await store.transaction(lambda c: locks.release(c, "retrain", other))

        # a holder process on this host that no longer exists: taken over at once
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)  # noqa: ASYNC221
        ghost = f"{me.split(':')[0]}:{dead.stdout.strip()}:0000"
        assert await store.transaction(lambda c: locks.try_acquire(c, "retrain", ghost)) is None
        assert await store.transaction(lambda c: locks.try_acquire(c, "retrain", other)) is None
    finally:
        await store.aclose()
