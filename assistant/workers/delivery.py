"""Delivers the replies of out-of-band channels (Slack, Telegram, REST callbacks) from the outbox, and
answers accepted messages that lost their turn (the app stopped while answering them).

Each reply is tried until its channel accepts it, waiting ``backoff_base_s * 2**(attempt-1)`` (capped,
with jitter, or what the platform asked for) between attempts; it carries the same idempotency key every
time, so a receiver drops the duplicates that at-least-once delivery implies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from datetime import timedelta

from assistant.config import Settings
from assistant.contracts import Accepted, DeliveringChannel, DeliveryFailed, IncomingMessage
from assistant.infra import background, prometheus
from assistant.store import Store, outbox
from assistant.store.tables import utcnow
from assistant.turn.pipeline import TurnPipeline

log = logging.getLogger(__name__)
RECOVER_EVERY_S = 10.0


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): doubling, capped, +-20% jitter."""
    return min(max_s, base_s * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)


class DeliveryWorker:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        turns: TurnPipeline,
        channels: dict[str, DeliveringChannel],
        replies_waiting: asyncio.Event,
    ) -> None:
        self.config = settings.delivery
        self.store = store
        self.turns = turns
        self.channels = channels
        self.replies_waiting = replies_waiting
        self._task: asyncio.Task[None] | None = None
        self._recovered_at = 0.0

    def start(self) -> None:
        if self.channels:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        await background.cancel(self._task)

    async def _loop(self) -> None:
        waiting = self.replies_waiting
        while True:
            try:
                if time.monotonic() - self._recovered_at > RECOVER_EVERY_S:
                    self._recovered_at = time.monotonic()
                    await self.recover()
                while await self.deliver_due():
                    pass
            except Exception:
                log.exception("the delivery loop failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiting.wait(), self.config.poll_interval_s)
            waiting.clear()

    async def deliver_due(self) -> int:
        """Send what is due now (concurrently); returns how many were tried."""
        claimed = await self.store.transaction(lambda conn: outbox.claim(conn, self.config.lease_s))
        await asyncio.gather(*(self._deliver(item) for item in claimed))
        return len(claimed)

    async def _deliver(self, pending: outbox.Pending) -> None:
        item = pending.reply
        channel = self.channels.get(item.channel)
        try:
            if channel is None:
                raise DeliveryFailed(f"the {item.channel!r} channel is not enabled")
            async with asyncio.timeout(self.config.timeout_s):
                await channel.deliver(item)
        except Exception as exc:
            retry_after = exc.retry_after if isinstance(exc, DeliveryFailed) else None
            permanent = isinstance(exc, DeliveryFailed) and exc.permanent
            if permanent or item.attempt >= self.config.max_attempts:
                retry_at = None
                log.error("giving up on delivering message %s via %s: %s", item.message_id, item.channel, exc)
            else:
                wait = retry_after or backoff_s(item.attempt, self.config.backoff_base_s, self.config.backoff_max_s)
                retry_at = utcnow() + timedelta(seconds=wait)
                log.warning(
                    "delivery %s via %s failed (attempt %d, next in %.1f s): %s",
                    item.message_id,
                    item.channel,
                    item.attempt,
                    wait,
                    exc,
                )
            error = f"{type(exc).__name__}: {exc}"
            await self.store.transaction(lambda conn: outbox.failed(conn, pending.id, error, retry_at, item.state))
            prometheus.DELIVERIES.labels(item.channel, "failed" if retry_at is None else "retry").inc()
            return
        await self.store.transaction(lambda conn: outbox.delivered(conn, pending.id))
        prometheus.DELIVERIES.labels(item.channel, "delivered").inc()

    async def recover(self) -> int:
        """Answer accepted messages left without a reply (older than ``recover_after_s``)."""
        found = await self.store.transaction(
            lambda conn: outbox.unanswered(
                conn, list(self.channels), self.config.recover_after_s, self.config.recover_within_s
            )
        )
        found = [m for m in found if not self.turns.is_answering(m.message_id)]
        for missing in found:
            log.warning("message %s on %s has no reply: answering it now", missing.message_id, missing.channel)
            message = IncomingMessage(missing.channel, missing.sender, missing.text, missing.metadata)
            accepted = Accepted(missing.conversation_id, missing.message_id, missing.slots)
            self.turns.answer_later(message, accepted)
        return len(found)
