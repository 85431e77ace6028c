"""The store on its own: SQLite always, and Postgres too when ASSISTANT_TEST_POSTGRES_URL names one."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from assistant.contracts import Reason, Route
from assistant.store import ReplyRecord, Store, Understanding

pytestmark = pytest.mark.database  # on SQLite, and on PostgreSQL when ASSISTANT_TEST_POSTGRES_URL is set


async def test_turns_history_and_slots(store_url: str) -> None:
    store = Store(store_url)
    sender = f"s-{uuid.uuid4().hex[:8]}"
    try:
        first = await store.begin_turn("rest", sender, "hi, I'm Ana", {"locale": "en"})
        assert first.slots == {}
        understood = Understanding(Route.INTENT, Reason.CONFIDENT, intent="greet", confidence=0.9)
        await store.finish_turn(
            first, understood, ReplyRecord("Hello Ana!", Route.INTENT, Reason.CONFIDENT), {"name": "Ana"}
        )
        second = await store.begin_turn("rest", sender, "how are you", None)
        assert second.conversation_id == first.conversation_id
        assert second.slots == {"name": "Ana"}
        assert await store.history(second, 10) == [("user", "hi, I'm Ana"), ("bot", "Hello Ana!")]
        assert await store.history(second, 1) == [("bot", "Hello Ana!")]
        # the same sender on another channel is another conversation
        other = await store.begin_turn("telegram", sender, "hi", None)
        assert other.conversation_id != first.conversation_id
    finally:
        await store.aclose()


async def test_first_messages_racing_make_one_conversation(store_url: str) -> None:
    stores = [Store(store_url), Store(store_url)]  # two app processes, each with its own cache
    sender = f"race-{uuid.uuid4().hex[:8]}"
    try:
        turns = await asyncio.gather(*(stores[i % 2].begin_turn("rest", sender, f"m{i}", None) for i in range(8)))
        assert len({t.conversation_id for t in turns}) == 1
        assert len({t.message_id for t in turns}) == 8
    finally:
        await asyncio.gather(*(s.aclose() for s in stores))
