"""What people say about logged turns: ratings and corrected replies on bot messages, intent labels on
user messages. Plain functions of a ``Connection`` (run with ``Store.transaction``)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from assistant.store.tables import Feedback, Label, Message, utcnow

messages, feedback, labels = Message.__table__, Feedback.__table__, Label.__table__
INTENT_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


class MessageNotFound(LookupError):
    pass


class WrongMessageKind(ValueError):
    pass


def check_intent_name(name: str) -> None:
    if not INTENT_NAME.match(name):
        raise ValueError(f"{name!r} is not an intent name: use 1-128 letters, digits, '_', '-' or '.'")


def _role(conn: Connection, message_id: int) -> str:
    role = conn.scalar(select(messages.c.role).where(messages.c.id == message_id))
    if role is None:
        raise MessageNotFound(f"there is no message {message_id}")
    return str(role)


def add_feedback(conn: Connection, message_id: int, rating: str | None, correction: str | None) -> int:
    """Rate a bot reply and/or give the reply it should have been."""
    if _role(conn, message_id) != "bot":
        raise WrongMessageKind(f"message {message_id} is a user message; feedback is given on bot replies")
    result = conn.execute(
        insert(feedback).values(message_id=message_id, rating=rating, correction=correction, created_at=utcnow())
    )
    return int(result.inserted_primary_key[0])


def set_label(conn: Connection, message_id: int, intent: str, entities: list[dict[str, Any]]) -> int:
    """Say which intent (and entities) a user message has; labelling again replaces the label."""
    if _role(conn, message_id) != "user":
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
