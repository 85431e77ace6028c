"""Annotations: written answers a reviewer stands behind, given before the LLM to messages close enough to
their question (``assistant.knowledge.annotations`` decides "close"). Plain functions of a ``Connection``.

One is made when a reviewer approves or writes a corrected reply (``from_feedback``), or imported from CSV;
an anonymous suggestion never becomes one without a reviewer's approval."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from assistant.contracts import AnnotationNotFound, AssistantError
from assistant.store.tables import Annotation, Message, utcnow

annotations, messages = Annotation.__table__, Message.__table__
MAX_CHARS = 4000


class BadAnnotation(AssistantError, ValueError):
    pass


@dataclass(frozen=True)
class AnnotationRow:
    id: int
    question: str
    answer: str
    source: str
    enabled: bool
    hits: int
    last_hit_at: datetime | None
    created_at: datetime


def _checked(question: str, answer: str) -> tuple[str, str]:
    question, answer = question.strip(), answer.strip()
    if not question or not answer:
        raise BadAnnotation("an annotation needs a question and an answer, neither blank")
    if len(question) > MAX_CHARS or len(answer) > MAX_CHARS:
        raise BadAnnotation(f"an annotation's question and answer have at most {MAX_CHARS} characters each")
    return question, answer


def add(conn: Connection, question: str, answer: str, source: str, feedback_id: int | None = None) -> int:
    question, answer = _checked(question, answer)
    values = {"question": question, "answer": answer, "source": source, "feedback_id": feedback_id}
    result = conn.execute(insert(annotations).values(created_at=utcnow(), **values))
    return int(result.inserted_primary_key[0])


def from_feedback(conn: Connection, bot_message_id: int, answer: str, feedback_id: int) -> int | None:
    """The annotation a reviewer's reply makes: the user message the bot message answered, and ``answer``.
    None when the bot message answers no stored user message (nothing to match later messages with)."""
    asked = conn.scalar(select(messages.c.reply_to_id).where(messages.c.id == bot_message_id))
    question = conn.scalar(select(messages.c.text).where(messages.c.id == asked)) if asked else None
    if not question or not answer.strip():
        return None
    return add(conn, question, answer, "review", feedback_id)


def enabled(conn: Connection) -> list[tuple[int, str, str]]:
    """(id, question, answer) of every enabled annotation: what the matcher compares messages with."""
    rows = conn.execute(
        select(annotations.c.id, annotations.c.question, annotations.c.answer).where(annotations.c.enabled)
    )
    return [(int(r.id), str(r.question), str(r.answer)) for r in rows]


def listed(conn: Connection) -> list[AnnotationRow]:
    rows = conn.execute(select(annotations).order_by(annotations.c.id)).mappings()
    return [
        AnnotationRow(r["id"], r["question"], r["answer"], r["source"], bool(r["enabled"]), r["hits"],
                      r["last_hit_at"], r["created_at"])
        for r in rows
    ]  # fmt: skip


def hit(conn: Connection, annotation_id: int) -> None:
    conn.execute(
        update(annotations)
        .where(annotations.c.id == annotation_id)
        .values(hits=annotations.c.hits + 1, last_hit_at=utcnow())
    )


def set_enabled(conn: Connection, annotation_id: int, on: bool) -> None:
    done = conn.execute(update(annotations).where(annotations.c.id == annotation_id).values(enabled=on))
    if done.rowcount == 0:
        raise AnnotationNotFound(f"there is no annotation {annotation_id}")


def remove(conn: Connection, annotation_id: int) -> None:
    done = conn.execute(delete(annotations).where(annotations.c.id == annotation_id))
    if done.rowcount == 0:
        raise AnnotationNotFound(f"there is no annotation {annotation_id}")
