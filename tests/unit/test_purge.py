"""Deleting rows from the log (assistant/store/purge.py): one person's conversations on one channel or on all,
or every turn older than a date; feedback, labels and outbox rows go with their messages, and the texts come back
so that the files made from them can be scrubbed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from assistant.contracts import Reason, Route
from assistant.store import ReplyRecord, Store, Understanding, feedback
from assistant.store.purge import expire, forget
from assistant.store.tables import Conversation, Message, utcnow

pytestmark = pytest.mark.database  # on SQLite, and on PostgreSQL when ASSISTANT_TEST_POSTGRES_URL is set


async def talk(store: Store, channel: str, sender: str, text: str) -> tuple[int, int]:
    turn = await store.begin_turn(channel, sender, text, None)
    understood = Understanding(Route.LLM, Reason.LLM_INTENT)
    reply = await store.finish_turn(turn, understood, ReplyRecord(f"re: {text}", Route.LLM, Reason.LLM_INTENT), None)
    return turn.message_id, reply


async def rows(store: Store) -> tuple[int, int]:
    def count(conn):  # type: ignore[no-untyped-def]
        return (
            conn.scalar(select(func.count()).select_from(Conversation.__table__)),
            conn.scalar(select(func.count()).select_from(Message.__table__)),
        )

    return await store.transaction(count)


async def test_forget_takes_one_sender_per_channel_or_everywhere_with_what_hangs_off(store_url: str) -> None:
    store = Store(store_url)
    try:
        user, reply = await talk(store, "rest", "ana", "my card is 4111")
        await store.transaction(lambda c: feedback.add_feedback(c, reply, "down", "a better answer"))
        await store.transaction(lambda c: feedback.set_label(c, user, "pay", []))
        await talk(store, "web", "ana", "hello from the widget")
        await talk(store, "rest", "bo", "hi")
        on_rest = await store.transaction(lambda c: forget(c, "ana", "rest"))
        assert (on_rest.conversations, on_rest.messages, on_rest.feedback, on_rest.labels) == (1, 2, 1, 1)
        assert set(on_rest.texts) == {"my card is 4111", "re: my card is 4111", "a better answer"}
        assert await rows(store) == (2, 4)
        everywhere = await store.transaction(lambda c: forget(c, "ana"))
        assert (everywhere.conversations, everywhere.messages) == (1, 2)
        nobody = await store.transaction(lambda c: forget(c, "ana"))
        assert (nobody.conversations, nobody.messages, nobody.texts) == (0, 0, [])
        assert await rows(store) == (1, 2)  # bo's turn is untouched
    finally:
        await store.aclose()


async def test_expire_takes_turns_older_than_the_date_and_conversations_left_empty(store_url: str) -> None:
    store = Store(store_url)
    try:
        await talk(store, "rest", "old", "long ago")
        cut = utcnow() + timedelta(seconds=1)
        assert (await store.transaction(lambda c: expire(c, utcnow() - timedelta(days=1)))).messages == 0
        erased = await store.transaction(lambda c: expire(c, cut))
        assert (erased.conversations, erased.messages) == (1, 2)
        assert await rows(store) == (0, 0)
    finally:
        await store.aclose()
