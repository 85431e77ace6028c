"""What `assistant review` shows: unlabelled user messages the router was unsure of or sent to the LLM."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, or_, select

from assistant.contracts import Role, Route
from assistant.store import Store, feedback
from assistant.store.tables import Label, Message

messages, labels = Message.__table__, Label.__table__


@dataclass(frozen=True)
class ReviewItem:
    message_id: int
    text: str
    route: str | None
    reason: str | None
    ranking: list[tuple[str, float]]


async def pending(store: Store, below: float, limit: int) -> list[ReviewItem]:
    """Newest first: LLM-routed or under-``below`` user messages without a label."""

    def work(conn: Connection) -> list[ReviewItem]:
        query = (
            select(messages.c.id, messages.c.text, messages.c.route, messages.c.reason, messages.c.ranking)
            .where(
                messages.c.role == Role.USER,
                messages.c.id.not_in(select(labels.c.message_id)),
                or_(messages.c.route == Route.LLM, messages.c.confidence < below),
            )
            .order_by(messages.c.id.desc())
            .limit(limit)
        )
        return [
            ReviewItem(
                row.id, row.text, row.route, row.reason, [(r["name"], r["confidence"]) for r in row.ranking or []]
            )
            for row in conn.execute(query)
        ]

    return await store.transaction(work)


async def save_label(store: Store, message_id: int, intent: str) -> None:
    feedback.check_intent_name(intent)
    await store.transaction(lambda conn: feedback.set_label(conn, message_id, intent, []))
