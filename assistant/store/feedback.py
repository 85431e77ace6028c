"""What people say about logged turns: ratings and corrected replies on bot messages, intent labels on
user messages. Plain functions of a ``Connection`` (run with ``Store.transaction``)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from assistant.contracts import AssistantError, HistoryItem, MessageNotFound, Role, WrongMessageKind
from assistant.store.tables import Conversation, Feedback, Label, Message, utcnow

messages, feedback, labels = Message.__table__, Feedback.__table__, Label.__table__
conversations = Conversation.__table__
INTENT_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


__all__ = ["BadIntentName", "MessageNotFound", "WrongMessageKind"]


class BadIntentName(AssistantError, ValueError):
    pass


def check_intent_name(name: str) -> None:
    if not INTENT_NAME.match(name):
        raise BadIntentName(f"{name!r} is not an intent name: use 1-128 letters, digits, '_', '-' or '.'")


def _role(conn: Connection, message_id: int) -> str:
    role = conn.scalar(select(messages.c.role).where(messages.c.id == message_id))
    if role is None:
        raise MessageNotFound(f"there is no message {message_id}")
    return str(role)


def add_feedback(conn: Connection, message_id: int, rating: str | None, correction: str | None) -> int:
    """Rate a bot reply and/or give the reply it should have been."""
    if _role(conn, message_id) != Role.BOT:
        raise WrongMessageKind(f"message {message_id} is a user message; feedback is given on bot replies")
    result = conn.execute(
        insert(feedback).values(message_id=message_id, rating=rating, correction=correction, created_at=utcnow())
    )
    return int(result.inserted_primary_key[0])


def set_label(conn: Connection, message_id: int, intent: str, entities: list[dict[str, Any]]) -> int:
    """Say which intent (and entities) a user message has; labelling again replaces the label."""
    if _role(conn, message_id) != Role.USER:
        raise WrongMessageKind(f"message {message_id} is a bot reply; labels are given on user messages")
    existing = conn.scalar(select(labels.c.id).where(labels.c.message_id == message_id))
    values = {"intent": intent, "entities": entities, "created_at": utcnow()}
    if existing is not None:
        conn.execute(update(labels).where(labels.c.id == existing).values(**values))
        return int(existing)
    return int(conn.execute(insert(labels).values(message_id=message_id, **values)).inserted_primary_key[0])


def message_text(conn: Connection, message_id: int) -> str:
    text = conn.scalar(select(messages.c.text).where(messages.c.id == message_id))
    if text is None:
        raise MessageNotFound(f"there is no message {message_id}")
    return str(text)


def count_new(conn: Connection, since: datetime | None) -> int:
    """Labels + feedback items written after ``since`` (all of them when None)."""
    total = 0
    for table in (labels, feedback):
        query = select(func.count()).select_from(table)
        if since is not None:
            query = query.where(table.c.created_at > since)
        total += conn.scalar(query) or 0
    return total


def check_owner(conn: Connection, message_id: int, channel: str, sender_id: str) -> None:
    """Raise MessageNotFound unless the message belongs to this sender's conversation on this channel
    (how the web widget's visitors may rate their own replies and nobody else's)."""
    owner = conn.execute(
        select(conversations.c.channel, conversations.c.sender_id)
        .join(messages, messages.c.conversation_id == conversations.c.id)
        .where(messages.c.id == message_id)
    ).first()
    if owner is None or (owner.channel, owner.sender_id) != (channel, sender_id):
        raise MessageNotFound(f"there is no message {message_id} in this conversation")


def conversation_messages(conn: Connection, channel: str, sender_id: str, limit: int) -> list[HistoryItem]:
    """The last ``limit`` messages of a conversation, oldest first, each bot reply with its latest rating."""
    latest = (
        select(feedback.c.message_id, func.max(feedback.c.id).label("feedback_id"))
        .where(feedback.c.rating.is_not(None))
        .group_by(feedback.c.message_id)
        .subquery()
    )
    rated = feedback.alias("rated")
    rows = conn.execute(
        select(messages.c.id, messages.c.role, messages.c.text, messages.c.route, messages.c.created_at, rated.c.rating)
        .join(conversations, conversations.c.id == messages.c.conversation_id)
        .outerjoin(latest, latest.c.message_id == messages.c.id)
        .outerjoin(rated, rated.c.id == latest.c.feedback_id)
        .where(conversations.c.channel == channel, conversations.c.sender_id == sender_id)
        .order_by(messages.c.id.desc())
        .limit(limit)
    ).all()
    return [
        HistoryItem(r.id, Role(r.role), r.text, r.route, r.rating, r.created_at.isoformat()) for r in reversed(rows)
    ]
