"""The model registry, the database lock and feedback/labels, on SQLite (and Postgres when configured)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import update

from assistant.store import Store, feedback, locks, registry
from assistant.store.tables import Lock, utcnow
from tests.unit.answers import answer

pytestmark = pytest.mark.database  # on SQLite, and on PostgreSQL when ASSISTANT_TEST_POSTGRES_URL is set


async def test_versions_activate_and_roll_back_along_parents(store_url: str) -> None:
    store = Store(store_url)
    try:
        first = await store.transaction(lambda c: registry.register(c, "nlu", path="/m/1.tar.gz"))
        assert (first.version, first.status) == ("nlu-0001", registry.TRAINING)
        await store.transaction(lambda c: registry.activate(c, "nlu-0001"))
        second = await store.transaction(lambda c: registry.register(c, "nlu", parent="nlu-0001"))
        adapter = await store.transaction(lambda c: registry.register(c, "llm"))
        assert (second.version, adapter.version) == ("nlu-0002", "llm-0001")

        replaced = await store.transaction(lambda c: registry.activate(c, "nlu-0002"))
        assert replaced is not None and replaced.version == "nlu-0001"
        statuses = {r.version: r.status for r in await store.transaction(registry.all_versions)}
        assert statuses == {"nlu-0001": "retired", "nlu-0002": "active", "llm-0001": "training"}

        current, target = await store.transaction(lambda c: registry.rollback_target(c, "nlu"))
        assert current and target and (current.version, target.version) == ("nlu-0002", "nlu-0001")
        await store.transaction(lambda c: registry.activate(c, target.version))
        current, target = await store.transaction(lambda c: registry.rollback_target(c, "nlu"))
        assert current and current.version == "nlu-0001" and target is None  # the first has no parent

        # a retrain that died left llm-0001 in "training": the next one marks it failed
        assert await store.transaction(registry.fail_unfinished) == ["llm-0001"]
        assert (await store.transaction(lambda c: registry.get(c, "llm-0001"))).status == "failed"
        with pytest.raises(registry.UnknownVersion, match="nlu-0009"):
            await store.transaction(lambda c: registry.get(c, "nlu-0009"))
    finally:
        await store.aclose()


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


async def test_feedback_and_labels_check_the_message(store_url: str) -> None:
    store = Store(store_url)
    try:
        turn = await store.begin_turn("rest", "fb", "where are my wallet stars", None)
        bot_id = await answer(store, turn, "No idea!", "llm")
        since = utcnow()
        with pytest.raises(feedback.WrongMessageKind, match="user message"):
            await store.transaction(lambda c: feedback.add_feedback(c, turn.message_id, "up", None))
        with pytest.raises(feedback.WrongMessageKind, match="bot reply"):
            await store.transaction(lambda c: feedback.set_label(c, bot_id, "loyalty_points", []))
        with pytest.raises(feedback.MessageNotFound):
            await store.transaction(lambda c: feedback.add_feedback(c, 999_999, "up", None))
        await store.transaction(lambda c: feedback.add_feedback(c, bot_id, "down", "Let me check your stars."))
        first = await store.transaction(lambda c: feedback.set_label(c, turn.message_id, "order_status", []))
        again = await store.transaction(lambda c: feedback.set_label(c, turn.message_id, "loyalty_points", []))
        assert first == again  # labelling again replaces the label
        assert await store.transaction(lambda c: feedback.count_new(c, since)) == 2
        assert await store.transaction(lambda c: feedback.count_new(c, utcnow())) == 0
        with pytest.raises(ValueError, match="not an intent name"):
            feedback.check_intent_name("two words")
        feedback.check_intent_name("faq/ask_gift_cards")  # a retrieval intent's response key
        for bad in ("faq/ask/twice", "/ask", "faq/", "x" * 129):
            with pytest.raises(ValueError, match="not an intent name"):
                feedback.check_intent_name(bad)
    finally:
        await store.aclose()
