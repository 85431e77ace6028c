"""Runtime settings in the store (assistant/store/runtime.py): the NLU endpoint override and its holder."""

from __future__ import annotations

from datetime import UTC, datetime

from assistant.store import runtime
from tests.unit.apps import (
    App,
)


async def test_an_nlu_override_left_by_a_dead_process_expires(running: App) -> None:
    import os
    import socket
    from datetime import timedelta

    from sqlalchemy import update

    from assistant.store.tables import RuntimeSetting
    from assistant.workers.model_watcher import ActiveModelWatcher

    store, pipeline = running.app.state.store, running.app.state.pipeline
    watcher = ActiveModelWatcher(running.app.state.settings, store, pipeline.serving, running.server)
    host = socket.gethostname()

    async def override(holder: str | None, age_s: float = 0) -> str | None:
        value = {"url": "http://standin:1", **({"holder": holder} if holder else {})}
        await store.transaction(lambda conn: runtime.put(conn, runtime.NLU_ENDPOINT, value))
        if age_s:
            table = RuntimeSetting.__table__
            old = datetime.now(UTC) - timedelta(seconds=age_s)
            await store.transaction(lambda conn: conn.execute(update(table).values(updated_at=old)))
        await watcher.sync_once()
        return pipeline.serving.nlu_endpoint

    assert await override(f"{host}:{os.getpid()}:live") == "http://standin:1"  # its holder is alive
    assert await override(None) == "http://standin:1"  # set by hand (no holder): kept until removed
    assert await override(f"{host}:999999999:dead") is None  # SIGKILLed mid-swap: at once
    assert not running.rows("SELECT key FROM runtime_settings")
    assert await override(f"elsewhere:{os.getpid()}:x", age_s=121) is None  # another host: after the stale time
    assert await override(f"elsewhere:{os.getpid()}:x", age_s=60) == "http://standin:1"
