"""The outbox: replies that channels deliver out of band (Slack, Telegram, REST callbacks), and the accepted
messages that still wait for their reply. Plain functions of a ``Connection`` (run with
``Store.transaction``); the worker that uses them is ``assistant.workers.delivery``.

Claiming is one conditional UPDATE per row, so two app replicas never send the same attempt at once;
a claim expires (``locked_until``) if its holder dies, and the row is tried again.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update
from sqlalchemy.orm import aliased

from assistant.contracts import Citation, Outgoing, RichResponse, Role
from assistant.store.tables import Conversation, Message, Outbox, utcnow

outbox, messages, conversations = Outbox.__table__, Message.__table__, Conversation.__table__


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


PENDING, DELIVERED, FAILED = DeliveryStatus.PENDING, DeliveryStatus.DELIVERED, DeliveryStatus.FAILED


@dataclass(frozen=True)
class Pending:
    """One claimed delivery: its outbox row and the reply as the channel gets it."""

    id: int
    reply: Outgoing


@dataclass(frozen=True)
class Unanswered:
    """An accepted message that has no reply (the app stopped while answering it)."""

    conversation_id: int
    message_id: int
    channel: str
    sender: str
    text: str
    metadata: dict[str, Any] | None
    slots: dict[str, Any]


def enqueue(conn: Connection, message_id: int, channel: str) -> None:
    now = utcnow()
    conn.execute(
        insert(outbox).values(
            message_id=message_id,
            channel=channel,
            key=uuid.uuid4().hex,
            status=PENDING,
            attempts=0,
            state={},
            next_attempt_at=now,
            created_at=now,
        )
    )


def claim(conn: Connection, lease_s: float, limit: int = 20) -> list[Pending]:
    """Take up to ``limit`` due deliveries for ``lease_s`` seconds (counting the attempt)."""
    now = utcnow()
    free = or_(outbox.c.locked_until.is_(None), outbox.c.locked_until < now)
    due = conn.scalars(
        select(outbox.c.id)
        .where(outbox.c.status == PENDING, outbox.c.next_attempt_at <= now, free)
        .order_by(outbox.c.next_attempt_at)
        .limit(limit)
    ).all()
    claimed = []
    for row_id in due:
        taken = conn.execute(
            update(outbox)
            .where(outbox.c.id == row_id, outbox.c.status == PENDING, free)
            .values(locked_until=now + timedelta(seconds=lease_s), attempts=outbox.c.attempts + 1)
        )
        if taken.rowcount == 1:
            claimed.append(row_id)
    if not claimed:
        return []
    user = aliased(Message)
    rows = conn.execute(
        select(
            outbox.c.id,
            outbox.c.key,
            outbox.c.channel,
            conversations.c.sender_id.label("sender"),
            messages.c.text,
            messages.c.id.label("message_id"),
            user.id.label("reply_to"),
            user.metadata_.label("metadata"),
            outbox.c.attempts.label("attempt"),
            outbox.c.state,
            messages.c.retrieval,
            messages.c["metadata"].label("reply_metadata"),
        )
        .join(messages, messages.c.id == outbox.c.message_id)
        .join(user, user.id == messages.c.reply_to_id)
        .join(conversations, conversations.c.id == messages.c.conversation_id)
        .where(outbox.c.id.in_(claimed))
        .order_by(outbox.c.id)
    ).all()
    # columns are labelled as Outgoing's fields
    pending = []
    for row in rows:
        fields = {**row._mapping, "metadata": row.metadata or {}}
        row_id = fields.pop("id")
        retrieval = fields.pop("retrieval") or {}
        fields["citations"] = [Citation(**c) for c in retrieval.get("citations", [])]
        fields["rich"] = RichResponse.from_stored((fields.pop("reply_metadata") or {}).get("response"))
        pending.append(Pending(row_id, Outgoing(**fields)))
    return pending


def delivered(conn: Connection, row_id: int) -> None:
    now = utcnow()
    conn.execute(
        update(outbox).where(outbox.c.id == row_id).values(status=DELIVERED, delivered_at=now, locked_until=None)
    )


def failed(conn: Connection, row_id: int, error: str, retry_at: datetime | None, state: dict[str, Any]) -> None:
    """Record a failed attempt: try again at ``retry_at``, or never (None: the delivery failed for good)."""
    values: dict[str, Any] = {"last_error": error[:2000], "state": state, "locked_until": None}
    if retry_at is None:
        values["status"] = FAILED
    else:
        values["next_attempt_at"] = retry_at
    conn.execute(update(outbox).where(outbox.c.id == row_id).values(**values))


def unanswered(conn: Connection, channels: list[str], older_than_s: float, newer_than_s: float) -> list[Unanswered]:
    """User messages on ``channels`` that arrived in the window and have no reply yet, oldest first."""
    now = utcnow()
    bot = aliased(Message)
    rows = conn.execute(
        select(
            messages.c.conversation_id,
            messages.c.id.label("message_id"),
            conversations.c.channel,
            conversations.c.sender_id.label("sender"),
            messages.c.text,
            messages.c["metadata"].label("metadata"),
            conversations.c.slots,
        )
        .join(conversations, conversations.c.id == messages.c.conversation_id)
        .outerjoin(bot, bot.reply_to_id == messages.c.id)
        .where(
            and_(
                messages.c.role == Role.USER,
                conversations.c.channel.in_(channels),
                messages.c.created_at < now - timedelta(seconds=older_than_s),
                messages.c.created_at > now - timedelta(seconds=newer_than_s),
                bot.id.is_(None),
            )
        )
        .order_by(messages.c.id)
        .limit(100)
    ).all()
    return [Unanswered(**row._mapping) for row in rows]  # columns are labelled as Unanswered's fields
