"""The model watcher (assistant/workers/model_watcher.py): the app follows the registry."""

from __future__ import annotations

import asyncio
from typing import Any

from assistant.store import registry, runtime
from tests.unit.apps import (
    ADMIN,
    App,
)


async def test_the_app_follows_the_registry_and_the_nlu_endpoint(running: App) -> None:
    store = running.app.state.store
    adapter = running.app.state.settings.data_dir / "adapters" / "llm-0001"

    def promote(conn: Any) -> None:
        record = registry.register(conn, "llm", status=registry.CANDIDATE, path=str(adapter))
        registry.activate(conn, record.version)
        runtime.put(conn, runtime.NLU_ENDPOINT, {"url": "http://standin:1"})

    await store.transaction(promote)
    for _ in range(50):
        status = (await running.http.get("/status", headers=ADMIN)).json()
        if status["llm"]["active_model"] == "llm-0001" and status["nlu"]["endpoint"]:
            break
        await asyncio.sleep(0.1)
    assert status["llm"]["active_model"] == "llm-0001" and status["nlu"]["endpoint"] == "http://standin:1"
    assert running.server.served[-1] == "llm-0001"  # the LLM server was asked to serve it first
    await running.say("jo", "how are you")
    assert running.llm.calls[-1][0] == "llm-0001" and running.nlu.endpoints[-1] == "http://standin:1"
    assert running.turn("jo")[1]["answered_by"] == "llm-0001"
