"""Async access to the log: two short transactions per turn, nothing else on the hot path.

1. ``begin_turn`` commits the user's message before any backend is called, so an accepted message is
   never lost, whatever happens next.
2. ``finish_turn`` records the NLU result and routing decision on it, stores the reply, and saves slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from assistant.store.tables import Conversation, Message, utcnow


@dataclass(frozen=True)
class Turn:
    """The stored user message a reply is being made for."""

    conversation_id: int
    message_id: int
    slots: dict[str, Any]


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

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

    async def aclose(self) -> None:
        await self.engine.dispose()

    async def begin_turn(self, channel: str, sender_id: str, text: str, metadata: dict[str, Any] | None) -> Turn:
        """Store the user's message (creating the conversation on first contact) and commit."""
        for attempt in range(2):
            try:
                async with self.engine.begin() as conn:
                    conversation_id, slots = await self._conversation(conn, channel, sender_id)
                    result = await conn.execute(
                        insert(Message).values(
                            conversation_id=conversation_id,
                            role="user",
                            text=text,
                            metadata_=metadata,
                            created_at=utcnow(),
                        )
                    )
                    return Turn(conversation_id, result.inserted_primary_key[0], slots)
            except IntegrityError:  # two first messages of one sender raced to create the conversation
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _conversation(self, conn: AsyncConnection, channel: str, sender_id: str) -> tuple[int, dict[str, Any]]:
        row = (
            await conn.execute(
                select(Conversation.id, Conversation.slots).where(
                    Conversation.channel == channel, Conversation.sender_id == sender_id
                )
            )
        ).first()
        if row is not None:
            return row.id, row.slots or {}
        now = utcnow()
        result = await conn.execute(
            insert(Conversation).values(channel=channel, sender_id=sender_id, slots={}, created_at=now, updated_at=now)
        )
        return result.inserted_primary_key[0], {}

    async def history(self, turn: Turn, limit: int) -> list[tuple[str, str]]:
        """The ``limit`` messages before this turn's user message, oldest first, as (role, text)."""
        if limit <= 0:
            return []
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(Message.role, Message.text)
                .where(Message.conversation_id == turn.conversation_id, Message.id < turn.message_id)
                .order_by(Message.id.desc())
                .limit(limit)
            )
            return [(row.role, row.text) for row in reversed(rows.all())]

    async def finish_turn(
        self,
        turn: Turn,
        analysis: dict[str, Any],
        reply: dict[str, Any],
        slots: dict[str, Any],
    ) -> int:
        """Record the NLU result + route on the user message, store the reply, save the slots."""
        async with self.engine.begin() as conn:
            await conn.execute(update(Message).where(Message.id == turn.message_id).values(**analysis))
            result = await conn.execute(
                insert(Message).values(
                    conversation_id=turn.conversation_id,
                    role="bot",
                    reply_to_id=turn.message_id,
                    created_at=utcnow(),
                    **reply,
                )
            )
            if slots != turn.slots:
                await conn.execute(
                    update(Conversation)
                    .where(Conversation.id == turn.conversation_id)
                    .values(slots=slots, updated_at=utcnow())
                )
            return result.inserted_primary_key[0]
