"""Async access to the log: two short transactions per turn, nothing else on the hot path.

1. ``begin_turn`` commits the user's message before any backend is called, so an accepted message is
   never lost, whatever happens next.
2. ``finish_turn`` records the NLU result and routing decision on it, stores the reply, and saves slots.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from assistant.store.tables import Conversation, Message, utcnow

CONVERSATION_CACHE_SIZE = 100_000

# Statements are built once (Core, not ORM): a turn only binds parameters, the hot path stays lean.
conversations, messages = Conversation.__table__, Message.__table__
INSERT_MESSAGE = insert(messages)
INSERT_CONVERSATION = insert(conversations)
UPDATE_MESSAGE = update(messages).where(messages.c.id == bindparam("message_id"))
UPDATE_SLOTS = update(conversations).where(conversations.c.id == bindparam("conversation_id"))
SELECT_CONVERSATION = select(conversations.c.id).where(
    conversations.c.channel == bindparam("channel"), conversations.c.sender_id == bindparam("sender_id")
)
SELECT_SLOTS = select(conversations.c.slots).where(conversations.c.id == bindparam("conversation_id"))
SELECT_HISTORY = (
    select(messages.c.role, messages.c.text)
    .where(messages.c.conversation_id == bindparam("conversation_id"), messages.c.id < bindparam("before_id"))
    .order_by(messages.c.id.desc())
    .limit(bindparam("limit"))
)


@dataclass(frozen=True)
class Turn:
    """The stored user message a reply is being made for."""

    conversation_id: int
    message_id: int


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        # Every use is a committed `engine.begin()` block, so no reset (an extra rollback) on return.
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_reset_on_return=None)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL: readers never block the writer; NORMAL: durable across app crashes, fast commits.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_async_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        # SQLite has one writer at a time; queueing writers here is fairer and faster than its busy-wait.
        self._write_lock: asyncio.Lock | contextlib.nullcontext[None] = (
            asyncio.Lock() if url.startswith("sqlite") else contextlib.nullcontext()
        )
        # (channel, sender) -> conversation id. Ids never change, so this is safe with several replicas.
        self._conversation_ids: OrderedDict[tuple[str, str], int] = OrderedDict()

    async def aclose(self) -> None:
        await self.engine.dispose()

    async def begin_turn(self, channel: str, sender_id: str, text: str, metadata: dict[str, Any] | None) -> Turn:
        """Store the user's message (creating the conversation on first contact) and commit."""
        for attempt in range(2):
            try:
                async with self._write_lock, self.engine.begin() as conn:
                    conversation_id = await self._conversation_id(conn, channel, sender_id)
                    result = await conn.execute(
                        INSERT_MESSAGE,
                        {
                            "conversation_id": conversation_id,
                            "role": "user",
                            "text": text,
                            "metadata": metadata,
                            "created_at": utcnow(),
                        },
                    )
                    return Turn(conversation_id, result.inserted_primary_key[0])
            except IntegrityError:  # two first messages of one sender raced to create the conversation
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _conversation_id(self, conn: AsyncConnection, channel: str, sender_id: str) -> int:
        key = (channel, sender_id)
        if (cached := self._conversation_ids.get(key)) is not None:
            self._conversation_ids.move_to_end(key)
            return cached
        found = await conn.scalar(SELECT_CONVERSATION, {"channel": channel, "sender_id": sender_id})
        if found is None:
            now = utcnow()
            result = await conn.execute(
                INSERT_CONVERSATION,
                {"channel": channel, "sender_id": sender_id, "slots": {}, "created_at": now, "updated_at": now},
            )
            found = result.inserted_primary_key[0]
        self._conversation_ids[key] = found
        if len(self._conversation_ids) > CONVERSATION_CACHE_SIZE:
            self._conversation_ids.popitem(last=False)
        return found

    async def slots(self, turn: Turn) -> dict[str, Any]:
        """What the conversation remembers (entities of earlier turns)."""
        async with self.engine.begin() as conn:
            return await conn.scalar(SELECT_SLOTS, {"conversation_id": turn.conversation_id}) or {}

    async def history(self, turn: Turn, limit: int) -> list[tuple[str, str]]:
        """The ``limit`` messages before this turn's user message, oldest first, as (role, text)."""
        if limit <= 0:
            return []
        async with self.engine.begin() as conn:
            rows = await conn.execute(
                SELECT_HISTORY,
                {"conversation_id": turn.conversation_id, "before_id": turn.message_id, "limit": limit},
            )
            return [(row.role, row.text) for row in reversed(rows.all())]

    async def finish_turn(
        self,
        turn: Turn,
        analysis: dict[str, Any],
        reply: dict[str, Any],
        slots: dict[str, Any] | None,
    ) -> int:
        """Record the NLU result + route on the user message, store the reply, save changed slots."""
        async with self._write_lock, self.engine.begin() as conn:
            await conn.execute(UPDATE_MESSAGE, {"message_id": turn.message_id, **analysis})
            result = await conn.execute(
                INSERT_MESSAGE,
                {
                    "conversation_id": turn.conversation_id,
                    "role": "bot",
                    "reply_to_id": turn.message_id,
                    "created_at": utcnow(),
                    **reply,
                },
            )
            if slots is not None:
                await conn.execute(
                    UPDATE_SLOTS,
                    {"conversation_id": turn.conversation_id, "slots": slots, "updated_at": utcnow()},
                )
            return result.inserted_primary_key[0]
