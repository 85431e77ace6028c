"""The outbox and the inbox guarantees in the store: duplicates refused, one reply per message, claims
that expire, retries, and messages left unanswered found again (SQLite, and Postgres when configured)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from assistant.store import AlreadyAnswered, DuplicateMessage, Store, outbox
from assistant.store.tables import utcnow
from assistant.workers.delivery import backoff_s
from tests.unit.answers import answer

pytestmark = pytest.mark.database  # on SQLite, and on PostgreSQL when ASSISTANT_TEST_POSTGRES_URL is set


async def test_external_id_is_stored_once(store_url: str) -> None:
    store = Store(store_url)
    try:
        await store.begin_turn("slack", "D1:U1", "hi", None, external_id="slack:Ev1")
        with pytest.raises(DuplicateMessage):
            await store.begin_turn("slack", "D1:U1", "hi", None, external_id="slack:Ev1")
        await store.begin_turn("slack", "D1:U1", "hi", None)  # no id: every message is new
        rows = await store.transaction(lambda c: c.exec_driver_sql("SELECT count(*) FROM messages").scalar())
        assert rows == 2
    finally:
        await store.aclose()


async def test_outbox_claim_retry_deliver(store_url: str) -> None:
    store = Store(store_url)
    try:
        where = {"telegram": {"chat_id": 7}}
        turn = await store.begin_turn("telegram", "7", "how are you", where, external_id="telegram:1")
        reply_id = await answer(store, turn, "Fine!", "llm", "telegram")
        with pytest.raises(AlreadyAnswered):  # a recovered turn racing the original one
            await answer(store, turn, "Again", "llm", "telegram")

        (pending,) = await store.transaction(lambda c: outbox.claim(c, lease_s=60))
        item = pending.reply
        assert (item.text, item.sender, item.metadata, item.attempt) == ("Fine!", "7", where, 1)
        assert item.message_id == reply_id and item.reply_to == turn.message_id
        assert await store.transaction(lambda c: outbox.claim(c, lease_s=60)) == []  # leased to the first taker

        item.state["parts_sent"] = 1
        await store.transaction(
            lambda c: outbox.failed(c, pending.id, "503", utcnow() - timedelta(seconds=1), item.state)
        )
        (claimed,) = await store.transaction(lambda c: outbox.claim(c, lease_s=60))
        again = claimed.reply
        assert again.key == item.key and again.attempt == 2 and again.state == {"parts_sent": 1}

        await store.transaction(lambda c: outbox.delivered(c, claimed.id))
        assert await store.transaction(lambda c: outbox.claim(c, lease_s=60)) == []

        turn2 = await store.begin_turn("telegram", "7", "bye", where)
        await answer(store, turn2, "Bye", "intent", "telegram")
        (gone,) = await store.transaction(lambda c: outbox.claim(c, lease_s=0))
        await store.transaction(lambda c: outbox.failed(c, gone.id, "chat not found", None, {}))
        assert await store.transaction(lambda c: outbox.claim(c, lease_s=60)) == []  # failed for good
        statuses = await store.transaction(
            lambda c: c.exec_driver_sql("SELECT status FROM outbox ORDER BY id").scalars().all()
        )
        assert statuses == ["delivered", "failed"]
    finally:
        await store.aclose()


async def test_expired_claim_is_taken_again(store_url: str) -> None:
    store = Store(store_url)
    try:
        turn = await store.begin_turn("callback", "s", "hi", None)
        await answer(store, turn, "Hello", "intent", "callback")
        (first,) = await store.transaction(lambda c: outbox.claim(c, lease_s=-1))  # its holder died at once
        (second,) = await store.transaction(lambda c: outbox.claim(c, lease_s=60))
        assert second.id == first.id and second.reply.attempt == 2
    finally:
        await store.aclose()


async def test_unanswered_messages_are_found(store_url: str) -> None:
    store = Store(store_url)
    try:
        lost = await store.begin_turn("slack", "D1:U1", "are you there?", {"slack": {"channel": "D1"}})
        answered = await store.begin_turn("slack", "D1:U1", "hello", None)
        await answer(store, answered, "Hi", "intent", "slack")
        await store.begin_turn("rest", "r", "not a delivering channel", None)
        found = await store.transaction(lambda c: outbox.unanswered(c, ["slack"], older_than_s=-5, newer_than_s=60))
        assert [(m.message_id, m.sender, m.text) for m in found] == [(lost.message_id, "D1:U1", "are you there?")]
        assert (
            await store.transaction(lambda c: outbox.unanswered(c, ["slack"], older_than_s=60, newer_than_s=600)) == []
        )
    finally:
        await store.aclose()


def test_backoff_doubles_and_is_capped() -> None:
    waits = [backoff_s(attempt, 2.0, 60.0) for attempt in range(1, 10)]
    assert 1.6 <= waits[0] <= 2.4 and 3.2 <= waits[1] <= 4.8 and 6.4 <= waits[2] <= 9.6
    assert all(w <= 72 for w in waits) and waits[-1] >= 48
