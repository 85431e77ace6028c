"""Admission control: what a replica takes on at once, and from whom.

Each backend (the NLU server, the LLM server) gets a `Capacity`: a bounded number of calls in flight and a
line in front of it. The wait in line is not part of the backend's own timeout, so a busy Rasa is never taken
for a down one (``nlu_unavailable`` means down or failing). Synchronous turns (REST, SSE, the widget) are
refused at the edge, before their message is stored, once a line is ``limits.max_waiting`` long (503) or their
sender or address has sent more than its share (429); out-of-band channels (Slack, Telegram, callbacks) store
every message and answer in order as capacity frees up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from limits import parse as parse_limit
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from assistant.config import LimitsSettings
from assistant.contracts import IncomingMessage, Overloaded, RateLimited
from assistant.infra import prometheus


class Capacity:
    """At most ``concurrency`` calls to one backend at once; the others wait in arrival order."""

    def __init__(self, backend: str, concurrency: int) -> None:
        self.backend = backend
        self.concurrency = concurrency
        self.waiting = 0
        self.in_flight = 0
        self._slots = asyncio.Semaphore(concurrency)  # FIFO: waiters are woken in the order they came

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        started = time.monotonic()
        self._count(waiting=1)
        try:
            await self._slots.acquire()
        finally:
            self._count(waiting=-1)
            prometheus.WAIT_SECONDS.labels(self.backend).observe(time.monotonic() - started)
        self._count(in_flight=1)
        try:
            yield
        finally:
            self._count(in_flight=-1)
            self._slots.release()

    def _count(self, waiting: int = 0, in_flight: int = 0) -> None:
        self.waiting += waiting
        self.in_flight += in_flight
        prometheus.WAITING.labels(self.backend).set(self.waiting)
        prometheus.IN_FLIGHT.labels(self.backend).set(self.in_flight)


class Admission:
    """Whether a synchronous turn may start now (see the module's docstring)."""

    def __init__(self, limits: LimitsSettings) -> None:
        self.limits = limits
        self.nlu = Capacity("nlu", limits.nlu_concurrency)
        self.llm = Capacity("llm", limits.llm_concurrency)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_sender = parse_limit(limits.per_sender) if limits.per_sender else None
        self._per_address = parse_limit(limits.per_address) if limits.per_address else None

    def check_capacity(self) -> None:
        full = [c.backend for c in (self.nlu, self.llm) if c.waiting >= self.limits.max_waiting]
        if full:
            prometheus.REFUSED.labels("overloaded").inc()
            raise Overloaded(
                f"the assistant is busy ({' and '.join(full)} at capacity); nothing was stored, please send the "
                f"message again in {self.limits.retry_after_s} seconds",
                self.limits.retry_after_s,
            )

    async def admit(self, message: IncomingMessage, client: str | None = None) -> None:
        """Raises Overloaded or RateLimited; on success the turn counts against its sender's and address's share."""
        self.check_capacity()
        keys = [(self._per_sender, "sender", f"{message.channel}/{message.sender}")]
        if client:
            keys.append((self._per_address, "address", client))
        for limit, kind, key in keys:
            if limit is None:
                continue
            if not await self._limiter.hit(limit, kind, key):
                reset, _ = await self._limiter.get_window_stats(limit, kind, key)
                wait = max(1, int(reset - time.time()) + 1)
                prometheus.REFUSED.labels("rate_limited").inc()
                raise RateLimited(
                    f"too many messages from this {kind} (at most {limit.amount} per {limit.get_expiry()} s); "
                    f"nothing was stored, please wait {wait} seconds",
                    wait,
                )
