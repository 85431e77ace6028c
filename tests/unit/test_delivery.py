"""The delivery worker with a fake out-of-band channel: a reply reaches ``deliver`` as an `Outgoing`, a failed
attempt is tried again when the platform says, with the same key, and a permanent failure stops it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter

from assistant.config import Settings
from assistant.contracts import DeliveryFailed, Outgoing, Turns
from assistant.store import Store
from assistant.workers.delivery import DeliveryWorker
from tests.unit.answers import answer


class FakePlatform:
    """A `DeliveringChannel` whose platform fails as told."""

    name = "fake"

    def __init__(self, failures: list[DeliveryFailed]) -> None:
        self.failures = failures
        self.attempts: list[Outgoing] = []

    def router(self, turns: Turns) -> APIRouter:
        return APIRouter()

    async def deliver(self, reply: Outgoing) -> None:
        self.attempts.append(reply)
        if self.failures:
            raise self.failures.pop(0)

    async def aclose(self) -> None:
        return None


def worker(store: Store, channel: FakePlatform, tmp_path: Path) -> DeliveryWorker:
    settings = Settings(data_dir=tmp_path, delivery={"backoff_base_s": 0.01, "max_attempts": 3})
    return DeliveryWorker(settings, store, None, {"fake": channel}, asyncio.Event())  # type: ignore[arg-type]


async def statuses(store: Store) -> list[str]:
    return list(
        await store.transaction(lambda c: c.exec_driver_sql("SELECT status FROM outbox ORDER BY id").scalars().all())
    )


async def test_a_reply_is_retried_when_the_platform_says_then_delivered(store_url: str, tmp_path: Path) -> None:
    store = Store(store_url)
    channel = FakePlatform([DeliveryFailed("429", retry_after=0.05)])
    try:
        turn = await store.begin_turn("fake", "c-1", "hello", {"fake": {"chat": 1}})
        reply_id = await answer(store, turn, "Hi!", "intent", "fake")
        deliveries = worker(store, channel, tmp_path)
        assert await deliveries.deliver_due() == 1
        assert await deliveries.deliver_due() == 0  # not due before the platform's Retry-After
        await asyncio.sleep(0.1)
        assert await deliveries.deliver_due() == 1
        first, second = channel.attempts
        assert (second.text, second.message_id, second.reply_to, second.metadata) == (
            "Hi!",
            reply_id,
            turn.message_id,
            {"fake": {"chat": 1}},
        )
        assert first.key == second.key and (first.attempt, second.attempt) == (1, 2)
        assert await statuses(store) == ["delivered"]
    finally:
        await store.aclose()


async def test_a_permanent_failure_is_not_retried(store_url: str, tmp_path: Path) -> None:
    store = Store(store_url)
    channel = FakePlatform([DeliveryFailed("chat not found", permanent=True)])
    try:
        turn = await store.begin_turn("fake", "c-2", "hello", None)
        await answer(store, turn, "Hi!", "intent", "fake")
        deliveries = worker(store, channel, tmp_path)
        assert await deliveries.deliver_due() == 1
        await asyncio.sleep(0.05)
        assert await deliveries.deliver_due() == 0 and len(channel.attempts) == 1
        assert await statuses(store) == ["failed"]
    finally:
        await store.aclose()
