"""Storing a reply for a stored message, as the pipeline does, in one line (store-level tests)."""

from __future__ import annotations

from assistant.contracts import Accepted, Reason, Route
from assistant.store import ReplyRecord, Store, Understanding

REASONS = {Route.LLM: Reason.LLM_INTENT, Route.INTENT: Reason.CONFIDENT}


async def answer(store: Store, turn: Accepted, text: str, route: str = "llm", deliver_via: str | None = None) -> int:
    """Store ``text`` as the reply to ``turn``; returns the reply's message id."""
    kind = Route(route)
    understood, reply = Understanding(kind, REASONS[kind]), ReplyRecord(text, kind, REASONS[kind])
    return await store.finish_turn(turn, understood, reply, None, deliver_via)
