"""Async access to the log: two short transactions per turn, nothing else on the hot path.

1. ``begin_turn`` commits the user's message before any backend is called, so an accepted message is
   never lost, whatever happens next (and reads what the conversation remembers, its slots).
2. ``finish_turn`` records the NLU result and routing decision on it, stores the reply, and saves slots.

Each transaction is one plain function of a SQLAlchemy ``Connection``, run by ``transaction``: on
Postgres through the async engine (asyncpg); on SQLite directly on the event loop's thread, because a
local WAL commit takes tens of microseconds while aiosqlite's thread hop per statement cost a turn
about 2 ms (measured by bench/turn_latency.py).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, bindparam, create_engine, event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from assistant.config import DatabaseSettings
from assistant.contracts import (
    Accepted,
    AssistantError,
    ChatMessage,
    DuplicateMessage,
    IntentScore,
    Reason,
    RichResponse,
    Role,
    Route,
)
from assistant.store import outbox
from assistant.store.tables import Conversation, Message, utcnow

T = TypeVar("T")
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
SELECT_EXTERNAL_ID = select(messages.c.id).where(messages.c.external_id == bindparam("external_id"))
SELECT_SLOTS = select(conversations.c.slots).where(conversations.c.id == bindparam("conversation_id"))
SELECT_HISTORY = (
    select(messages.c.role, messages.c.text)
    .where(messages.c.conversation_id == bindparam("conversation_id"), messages.c.id < bindparam("before_id"))
    .order_by(messages.c.id.desc())
    .limit(bindparam("limit"))
)


class AlreadyAnswered(AssistantError):
    """The user message has a reply already (a recovered turn raced the original one): this one is dropped."""


Turn = Accepted  # the stored user message a reply is being made for


@dataclass(frozen=True)
class Understanding:
    """What the NLU and the router made of a user message (stored on its row)."""

    route: Route
    reason: Reason
    intent: str | None = None
    confidence: float | None = None
    ranking: list[IntentScore] | None = None
    entities: list[dict[str, Any]] | None = None
    nlu_model: str | None = None
    error: str | None = None  # why the NLU could not be asked

    def row(self) -> dict[str, Any]:
        ranking = [{"name": s.name, "confidence": s.confidence} for s in self.ranking] if self.ranking else None
        return {**self.__dict__, "ranking": ranking}


@dataclass(frozen=True)
class ReplyRecord:
    """How a bot reply was made (stored on its row). ``answered_by``: the response template, action or LLM
    model (base or adapter) that wrote it."""

    text: str
    route: Route
    reason: Reason
    answered_by: str | None = None
    prompt: list[ChatMessage] | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float = 0.0
    error: str | None = None
    generation: dict[str, Any] | None = None  # LLM replies: settings and guards (assistant.replies.writer.Record)
    retrieval: dict[str, Any] | None = None  # open questions: kb version, passages, citations, support
    rich: RichResponse | None = None  # templated responses: buttons, image, ... (the row's metadata.response)

    def row(self) -> dict[str, Any]:
        prompt = [{"role": m.role, "content": m.content} for m in self.prompt] if self.prompt is not None else None
        fields = {k: v for k, v in self.__dict__.items() if k != "rich"}
        metadata = {"response": self.rich.stored()} if self.rich else None
        return {**fields, "prompt": prompt, "metadata": metadata}


def _sqlite_pragmas(db: DatabaseSettings, foreign_keys: bool) -> Callable[[Any, Any], None]:
    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL: readers never block the writer; NORMAL: durable across app crashes, fast commits; FULL: also
        # across a power loss (for deployments that acknowledge a Slack or Telegram message once stored)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={'FULL' if db.sqlite_synchronous == 'FULL' else 'NORMAL'}")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.close()

    return pragmas


def make_engine(url: str, db: DatabaseSettings | None = None, foreign_keys: bool = True) -> AsyncEngine:
    """The async engine (used by migrations and, on Postgres, by every transaction). ``foreign_keys``: off for
    migrations, whose SQLite batch operations recreate tables (which with them on would cascade-delete).
    PostgreSQL: each replica holds up to ``pool_size + max_overflow`` of its default 100 connections, and a
    statement stuck longer than ``statement_timeout_s`` (on a lock, say) is ended."""
    db = db or DatabaseSettings()
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(db, foreign_keys))
        return engine
    connect_args: dict[str, Any] = {}
    if db.statement_timeout_s and url.startswith("postgresql+asyncpg"):
        connect_args["server_settings"] = {"statement_timeout": str(int(db.statement_timeout_s * 1000))}
    return create_async_engine(
        url, pool_size=db.pool_size, max_overflow=db.max_overflow, pool_pre_ping=True, connect_args=connect_args
    )


def make_sqlite_engine(url: str, db: DatabaseSettings | None = None) -> Engine:
    """A plain sqlite3 engine on the same file, used from the event loop's thread (one connection)."""
    engine = create_engine(
        url.replace("+aiosqlite", ""),
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=1,
        max_overflow=0,
        pool_reset_on_return=None,  # every use is a committed `begin()` block
    )
    event.listen(engine, "connect", _sqlite_pragmas(db or DatabaseSettings(), True))
    return engine


class Store:
    def __init__(self, url: str, db: DatabaseSettings | None = None) -> None:
        # One engine, never both: SQLite is used synchronously (see the module docstring), the rest async.
        self._sqlite = make_sqlite_engine(url, db) if url.startswith("sqlite") else None
        self._async = None if self._sqlite is not None else make_engine(url, db)
        # (channel, sender) -> conversation id. Ids never change, so this is safe with several replicas.
        self._conversation_ids: OrderedDict[tuple[str, str], int] = OrderedDict()

    async def aclose(self) -> None:
        if self._sqlite is not None:
            self._sqlite.dispose()
        if self._async is not None:
            await self._async.dispose()

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one committed transaction (see the module docstring for how)."""
        if self._sqlite is not None:
            with self._sqlite.begin() as conn:
                return work(conn)
        assert self._async is not None
        async with self._async.begin() as conn:
            return await conn.run_sync(work)

    async def begin_turn(
        self,
        channel: str,
        sender_id: str,
        text: str,
        metadata: dict[str, Any] | None,
        external_id: str | None = None,
    ) -> Turn:
        """Store the user's message (creating the conversation on first contact) and commit.

        ``external_id`` is the channel's own id of the message: storing one twice raises DuplicateMessage."""
        key = (channel, sender_id)

        def work(conn: Connection) -> Turn:
            if external_id is not None and conn.scalar(SELECT_EXTERNAL_ID, {"external_id": external_id}):
                raise DuplicateMessage(f"{external_id} is stored already")
            conversation_id = self._conversation_ids.get(key) or self._conversation_id(conn, channel, sender_id)
            row = {"conversation_id": conversation_id, "role": Role.USER, "text": text, "created_at": utcnow()}
            result = conn.execute(INSERT_MESSAGE, {**row, "metadata": metadata, "external_id": external_id})
            slots = conn.scalar(SELECT_SLOTS, {"conversation_id": conversation_id}) or {}
            return Turn(conversation_id, result.inserted_primary_key[0], slots)

        for attempt in range(2):
            try:
                turn = await self.transaction(work)
                break
            except IntegrityError:  # a race: two first messages of one sender, or one external message twice,
                # or a cached conversation that was deleted since (forgotten, or expired by retention)
                self._conversation_ids.pop(key, None)
                if attempt:
                    if external_id is not None:
                        raise DuplicateMessage(f"{external_id} is stored already") from None
                    raise
        self._conversation_ids[key] = turn.conversation_id  # only once committed
        self._conversation_ids.move_to_end(key)
        if len(self._conversation_ids) > CONVERSATION_CACHE_SIZE:
            self._conversation_ids.popitem(last=False)
        return turn

    def forget_conversation(self, sender_id: str, channel: str | None = None) -> None:
        """Drop a deleted conversation's cached id (other replicas find out at its next message)."""
        for key in [k for k in self._conversation_ids if k[1] == sender_id and channel in (None, k[0])]:
            del self._conversation_ids[key]

    @staticmethod
    def _conversation_id(conn: Connection, channel: str, sender_id: str) -> int:
        found = conn.scalar(SELECT_CONVERSATION, {"channel": channel, "sender_id": sender_id})
        if found is not None:
            return found
        now = utcnow()
        result = conn.execute(
            INSERT_CONVERSATION,
            {"channel": channel, "sender_id": sender_id, "slots": {}, "created_at": now, "updated_at": now},
        )
        return result.inserted_primary_key[0]

    async def history(self, turn: Turn, limit: int) -> list[tuple[str, str]]:
        """The ``limit`` messages before this turn's user message, oldest first, as (role, text)."""
        if limit <= 0:
            return []
        params = {"conversation_id": turn.conversation_id, "before_id": turn.message_id, "limit": limit}
        rows = await self.transaction(lambda conn: conn.execute(SELECT_HISTORY, params).all())
        return [(row.role, row.text) for row in reversed(rows)]

    async def finish_turn(
        self,
        turn: Turn,
        understanding: Understanding,
        reply: ReplyRecord,
        slots: dict[str, Any] | None,
        deliver_via: str | None = None,
    ) -> int:
        """Record the NLU result + route on the user message, store the reply, save changed slots.

        ``deliver_via`` names the channel that sends the reply out of band: the outbox row is written in
        the same transaction, so a stored reply is always delivered."""

        def work(conn: Connection) -> int:
            conn.execute(UPDATE_MESSAGE, {"message_id": turn.message_id, **understanding.row()})
            row = {"conversation_id": turn.conversation_id, "role": Role.BOT, "reply_to_id": turn.message_id}
            result = conn.execute(INSERT_MESSAGE, {**row, "created_at": utcnow(), **reply.row()})
            message_id = int(result.inserted_primary_key[0])
            if slots is not None:
                conn.execute(
                    UPDATE_SLOTS, {"conversation_id": turn.conversation_id, "slots": slots, "updated_at": utcnow()}
                )
            if deliver_via is not None:
                outbox.enqueue(conn, message_id, deliver_via)
            return message_id

        try:
            return await self.transaction(work)
        except IntegrityError as exc:
            if "reply_to" in str(exc):
                raise AlreadyAnswered(f"message {turn.message_id} has a reply already") from exc
            raise
