"""Erasure and retention in the log: a person's conversations and everything stored from them, or every turn
older than ``retention_days``. Feedback, labels and outbox rows go with their messages (``ON DELETE
CASCADE``), and so do the annotations made from their reviewed replies; prompts are stored on the bot rows of
the same conversation, so they go too. The texts removed are returned, so that the files made from them
(exports, reports) can be scrubbed as well."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, delete, func, or_, select

from assistant.store.tables import Annotation, Conversation, Feedback, Label, Message, Outbox

conversations, messages, annotations = Conversation.__table__, Message.__table__, Annotation.__table__
feedback, labels, outbox = Feedback.__table__, Label.__table__, Outbox.__table__


@dataclass
class Erased:
    """What was deleted (counts per table) and the texts it held (user messages, replies, corrections)."""

    conversations: int = 0
    messages: int = 0
    feedback: int = 0
    labels: int = 0
    outbox: int = 0
    annotations: int = 0  # made from a reviewed reply in these conversations: they quote the user's message
    texts: list[str] = field(default_factory=list)


def _erase(conn: Connection, message_ids: list[int]) -> Erased:
    """Delete these messages and what hangs off them; counts taken first (cascades do not report)."""
    erased = Erased()
    for start in range(0, len(message_ids), 500):  # bound the IN lists
        ids = message_ids[start : start + 500]
        erased.texts += conn.execute(select(messages.c.text).where(messages.c.id.in_(ids))).scalars().all()
        erased.texts += [
            t for t in conn.execute(select(feedback.c.correction).where(feedback.c.message_id.in_(ids))).scalars() if t
        ]
        for table, name in ((feedback, "feedback"), (labels, "labels"), (outbox, "outbox")):
            count = conn.scalar(select(func.count()).select_from(table).where(table.c.message_id.in_(ids))) or 0
            setattr(erased, name, getattr(erased, name) + count)
        given = select(feedback.c.id).where(feedback.c.message_id.in_(ids))
        erased.annotations += (
            conn.execute(delete(annotations).where(annotations.c.feedback_id.in_(given))).rowcount or 0
        )
        for table in (feedback, labels, outbox):  # explicit, not left to ON DELETE CASCADE (SQLite may have it off)
            conn.execute(delete(table).where(table.c.message_id.in_(ids)))
        # replies first: a bot row points at its user row
        conn.execute(delete(messages).where(messages.c.id.in_(ids), messages.c.reply_to_id.is_not(None)))
        conn.execute(delete(messages).where(messages.c.id.in_(ids)))
    erased.messages = len(message_ids)
    return erased


def forget(conn: Connection, sender_id: str, channel: str | None = None) -> Erased:
    """Everything stored from one sender (on one channel, or on every channel)."""
    where = [conversations.c.sender_id == sender_id]
    if channel is not None:
        where.append(conversations.c.channel == channel)
    conversation_ids = list(conn.execute(select(conversations.c.id).where(*where)).scalars())
    if not conversation_ids:
        return Erased()
    ids = list(conn.execute(select(messages.c.id).where(messages.c.conversation_id.in_(conversation_ids))).scalars())
    erased = _erase(conn, ids)
    conn.execute(delete(conversations).where(conversations.c.id.in_(conversation_ids)))
    erased.conversations = len(conversation_ids)
    return erased


def expire(conn: Connection, before: datetime) -> Erased:
    """Every turn stored before ``before`` (a reply goes with its message), and conversations left empty."""
    old_users = select(messages.c.id).where(messages.c.created_at < before, messages.c.reply_to_id.is_(None))
    ids = list(
        conn.execute(
            select(messages.c.id).where(or_(messages.c.created_at < before, messages.c.reply_to_id.in_(old_users)))
        ).scalars()
    )
    erased = _erase(conn, ids) if ids else Erased()
    empty = select(conversations.c.id).where(
        conversations.c.updated_at < before,
        ~select(messages.c.id).where(messages.c.conversation_id == conversations.c.id).exists(),
    )
    erased.conversations = conn.execute(delete(conversations).where(conversations.c.id.in_(empty))).rowcount or 0
    return erased
