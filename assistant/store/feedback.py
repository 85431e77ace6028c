"""What people say about logged turns: ratings and corrected replies on bot messages, intent labels on
user messages. Plain functions of a ``Connection`` (run with ``Store.transaction``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, insert, select, update

from assistant.contracts import (
    AssistantError,
    Citation,
    FeedbackSource,
    HistoryItem,
    MessageNotFound,
    NothingToReview,
    ReviewStatus,
    RichResponse,
    Role,
    Route,
    WrongMessageKind,
)
from assistant.store import annotations
from assistant.store.tables import Conversation, Feedback, Label, Message, utcnow

messages, feedback, labels = Message.__table__, Feedback.__table__, Label.__table__
conversations = Conversation.__table__
# an intent, or a retrieval intent's response key (``faq/ask_gift_cards``, Rasa's ResponseSelector)
INTENT_NAME = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)?$")
MAX_INTENT_NAME = 128  # the column's width


__all__ = ["BadIntentName", "MessageNotFound", "WrongMessageKind"]


class BadIntentName(AssistantError, ValueError):
    pass


def check_intent_name(name: str) -> None:
    if len(name) > MAX_INTENT_NAME or not INTENT_NAME.match(name):
        raise BadIntentName(
            f"{name[: MAX_INTENT_NAME + 1]!r} is not an intent name: use 1-{MAX_INTENT_NAME} letters, digits, '_', "
            "'-' or '.', and one '/' before a retrieval intent's response key"
        )


def _role(conn: Connection, message_id: int) -> str:
    role = conn.scalar(select(messages.c.role).where(messages.c.id == message_id))
    if role is None:
        raise MessageNotFound(f"there is no message {message_id}")
    return str(role)


def add_feedback(
    conn: Connection,
    message_id: int,
    rating: str | None,
    correction: str | None,
    source: FeedbackSource = FeedbackSource.REVIEWER,
    channel: str | None = None,
    sender_id: str | None = None,
) -> int:
    """Rate a bot reply and/or give the reply it should have been. Anonymous feedback waits for review."""
    if _role(conn, message_id) != Role.BOT:
        raise WrongMessageKind(f"message {message_id} is a user message; feedback is given on bot replies")
    review = ReviewStatus.PENDING if source == FeedbackSource.ANONYMOUS else ReviewStatus.ACCEPTED
    values = {"rating": rating, "correction": correction, "source": source, "review": review}
    result = conn.execute(
        insert(feedback).values(
            message_id=message_id, channel=channel, sender_id=sender_id, created_at=utcnow(), **values
        )
    )
    feedback_id = int(result.inserted_primary_key[0])
    if correction and review == ReviewStatus.ACCEPTED:  # a reviewer's (or staff's) reply answers at once
        annotations.from_feedback(conn, message_id, correction, feedback_id)
    return feedback_id


def given_since(conn: Connection, channel: str, sender_id: str, since: datetime) -> tuple[int, int]:
    """How many feedback items, and how many characters of corrections, a sender gave since ``since``."""
    row = conn.execute(
        select(func.count(), func.coalesce(func.sum(func.length(feedback.c.correction)), 0)).where(
            feedback.c.channel == channel, feedback.c.sender_id == sender_id, feedback.c.created_at > since
        )
    ).one()
    return int(row[0]), int(row[1])


def review(conn: Connection, message_id: int, decision: str, correction: str | None = None) -> int:
    """A reviewer's verdict on the pending feedback of one bot reply: ``approve`` (as given), ``edit`` (approve
    with ``correction`` as the reply to learn), ``reject``. Returns how many feedback items it settled."""
    _role(conn, message_id)
    pending = feedback.c.review == ReviewStatus.PENDING
    ids = list(conn.scalars(select(feedback.c.id).where(feedback.c.message_id == message_id, pending)))
    if not ids:
        raise NothingToReview(f"message {message_id} has no feedback waiting for review")
    status = ReviewStatus.REJECTED if decision == "reject" else ReviewStatus.APPROVED
    values: dict[str, Any] = {"review": status, "reviewed_at": utcnow()}
    if decision == "edit":
        values["reviewed_correction"] = correction
    conn.execute(update(feedback).where(feedback.c.id.in_(ids)).values(**values))
    if status == ReviewStatus.APPROVED:
        _annotate(conn, message_id, ids, correction if decision == "edit" else None)
    return len(ids)


def _annotate(conn: Connection, message_id: int, ids: list[int], edited: str | None) -> None:
    """An approved reply becomes an annotation: the reviewer's edit, else the one suggested reply approved
    (several different ones and no edit: none, the reviewer did not say which)."""
    if edited:
        annotations.from_feedback(conn, message_id, edited, ids[0])
        return
    given = conn.execute(
        select(feedback.c.id, feedback.c.correction).where(feedback.c.id.in_(ids), feedback.c.correction.is_not(None))
    ).all()
    if len({row.correction.strip() for row in given}) == 1:
        annotations.from_feedback(conn, message_id, given[0].correction, given[0].id)


@dataclass(frozen=True)
class PendingItem:
    """One LLM reply with anonymous feedback waiting for review, and the conversation before it."""

    message_id: int
    reply: str
    conversation: list[tuple[str, str]]  # (role, text), oldest first, ending with the user message
    feedback: list[dict[str, Any]]  # rating, correction, channel, sender_id, created_at


def pending_reviews(conn: Connection, limit: int, context: int = 6) -> list[PendingItem]:
    """LLM replies with pending feedback, most-flagged first (then newest)."""
    pending = feedback.c.review == ReviewStatus.PENDING
    counted = (
        select(feedback.c.message_id, func.count().label("n")).where(pending).group_by(feedback.c.message_id).subquery()
    )
    rows = conn.execute(
        select(messages.c.id, messages.c.text, messages.c.conversation_id, messages.c.reply_to_id)
        .join(counted, counted.c.message_id == messages.c.id)
        .where(messages.c.route == Route.LLM)
        .order_by(counted.c.n.desc(), messages.c.id.desc())
        .limit(limit)
    ).all()
    items = []
    for row in rows:
        before = conn.execute(
            select(messages.c.role, messages.c.text)
            .where(messages.c.conversation_id == row.conversation_id, messages.c.id < row.id)
            .order_by(messages.c.id.desc())
            .limit(context)
        ).all()
        given = conn.execute(
            select(feedback.c.rating, feedback.c.correction, feedback.c.channel, feedback.c.sender_id,
                   feedback.c.created_at)
            .where(feedback.c.message_id == row.id, pending)
            .order_by(feedback.c.id)
        ).all()  # fmt: skip
        items.append(
            PendingItem(
                row.id, row.text, [(r.role, r.text) for r in reversed(before)], [dict(g._mapping) for g in given]
            )
        )
    return items


def source_counts(conn: Connection) -> dict[str, int]:
    """Feedback items on LLM replies by where they came from and their review (for reports)."""
    query = (
        select(feedback.c.source, feedback.c.review, func.count())
        .join(messages, messages.c.id == feedback.c.message_id)
        .where(messages.c.route == Route.LLM)
        .group_by(feedback.c.source, feedback.c.review)
    )
    return {f"{source} {review}": int(n) for source, review, n in conn.execute(query)}


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


def history_query(channel: str, sender_id: str, limit: int) -> Select[Any]:
    """A conversation's last messages, newest first, each with its latest rating: looked up by the index on
    ``feedback.message_id`` for just these messages (not a scan of all feedback)."""
    rating = (
        select(feedback.c.rating)
        .where(feedback.c.message_id == messages.c.id, feedback.c.rating.is_not(None))
        .order_by(feedback.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            messages.c.id,
            messages.c.role,
            messages.c.text,
            messages.c.route,
            messages.c.created_at,
            messages.c.retrieval,
            messages.c["metadata"].label("metadata"),
            rating.label("rating"),
        )
        .join(conversations, conversations.c.id == messages.c.conversation_id)
        .where(conversations.c.channel == channel, conversations.c.sender_id == sender_id)
        .order_by(messages.c.id.desc())
        .limit(limit)
    )


def conversation_messages(conn: Connection, channel: str, sender_id: str, limit: int) -> list[HistoryItem]:
    """The last ``limit`` messages of a conversation, oldest first, each bot reply with its latest rating."""
    rows = conn.execute(history_query(channel, sender_id, limit)).all()
    return [
        HistoryItem(
            r.id,
            Role(r.role),
            r.text,
            r.route,
            r.rating,
            r.created_at.isoformat(),
            _citations(r.retrieval),
            RichResponse.from_stored((r.metadata or {}).get("response")) if r.role == Role.BOT else None,
        )
        for r in reversed(rows)
    ]


def _citations(retrieval: dict[str, Any] | None) -> list[Citation]:
    """The sources a stored reply cited (``messages.retrieval``), for showing the reply again."""
    cited = (retrieval or {}).get("citations") or []
    return [Citation(int(c["n"]), int(c["chunk_id"]), str(c["title"]), str(c["source"])) for c in cited]


def conversation_turns(conn: Connection, channel: str, sender_id: str, limit: int) -> list[dict[str, Any]]:
    """A conversation's last messages, oldest first, with what the NLU made of the user's (an action server
    gets them as the tracker's events)."""
    rows = conn.execute(
        select(
            messages.c.role,
            messages.c.text,
            messages.c.intent,
            messages.c.confidence,
            messages.c.entities,
            messages.c.created_at,
        )
        .join(conversations, conversations.c.id == messages.c.conversation_id)
        .where(conversations.c.channel == channel, conversations.c.sender_id == sender_id)
        .order_by(messages.c.id.desc())
        .limit(limit)
    ).all()
    return [dict(r._mapping) for r in reversed(rows)]
