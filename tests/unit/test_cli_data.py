"""`assistant review --llm` (wiring/cli/data.py) on a real SQLite store: a reviewer edits one visitor's suggestion
and rejects another's."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from assistant.contracts import FeedbackSource, Reason, Route
from assistant.store import ReplyRecord, Store, Understanding, feedback
from wiring.cli import app


async def llm_turn(store: Store, sender: str, text: str, reply: str) -> int:
    turn = await store.begin_turn("web", sender, text, None)
    understood = Understanding(Route.LLM, Reason.LLM_INTENT)
    return await store.finish_turn(turn, understood, ReplyRecord(reply, Route.LLM, Reason.LLM_INTENT), None)


async def seed(db: str) -> tuple[int, int]:
    store = Store(db)
    try:
        first = await llm_turn(store, "a" * 20, "how are you", "Bananas.")
        second = await llm_turn(store, "b" * 20, "hello", "Go away.")
        for message_id, text in ((first, "I'm fine!"), (second, "Send me your PIN")):
            await store.transaction(
                lambda c, m=message_id, t=text: feedback.add_feedback(
                    c, m, "down", t, FeedbackSource.ANONYMOUS, "web", "x" * 20
                )
            )
        return first, second
    finally:
        await store.aclose()


async def reviews(db: str) -> set[tuple[int, str, str | None]]:
    store = Store(db)
    try:
        rows = await store.transaction(
            lambda c: c.exec_driver_sql("SELECT message_id, review, reviewed_correction FROM feedback").all()
        )
        return {(r[0], r[1], r[2]) for r in rows}
    finally:
        await store.aclose()


def test_review_llm_edits_and_rejects(db: str) -> None:
    first, second = asyncio.run(seed(db))
    # most-flagged first, then newest: the second reply is shown first
    result = CliRunner().invoke(app, ["review", "--llm"], input="r\ne\nI'm doing well, thanks!\n")
    assert result.exit_code == 0, result.output
    assert "Send me your PIN" in result.output and "2 reviewed" in result.output
    assert asyncio.run(reviews(db)) == {
        (first, "approved", "I'm doing well, thanks!"),
        (second, "rejected", None),
    }
    again = CliRunner().invoke(app, ["review", "--llm"])
    assert "nothing to review" in again.output
