"""What `assistant review` lists (training/review.py): unlabelled user messages the router sent to the LLM or was
unsure of, newest first; a label takes one off the list."""

from __future__ import annotations

import pytest

from assistant.contracts import AssistantError, Reason, Route
from assistant.store import ReplyRecord, Store, Understanding
from training.review import pending, save_label

pytestmark = pytest.mark.database  # on SQLite, and on PostgreSQL when ASSISTANT_TEST_POSTGRES_URL is set


async def said(store: Store, text: str, route: Route, confidence: float | None) -> int:
    turn = await store.begin_turn("rest", "reviewed", text, None)
    reason = Reason.LLM_INTENT if route == Route.LLM else Reason.CONFIDENT
    understood = Understanding(route, reason, intent="greet", confidence=confidence)
    await store.finish_turn(turn, understood, ReplyRecord("ok", route, reason), None)
    return turn.message_id


async def test_pending_lists_unsure_and_llm_turns_newest_first_until_labelled(store_url: str) -> None:
    store = Store(store_url)
    try:
        llm = await said(store, "tell me a joke", Route.LLM, 0.9)
        unsure = await said(store, "hmm hello?", Route.INTENT, 0.4)
        await said(store, "hello", Route.INTENT, 0.95)  # sure: nothing to review
        listed = await pending(store, below=0.5, limit=10)
        assert [(item.message_id, item.text) for item in listed] == [(unsure, "hmm hello?"), (llm, "tell me a joke")]
        assert len(await pending(store, below=0.5, limit=1)) == 1
        await save_label(store, unsure, "greet")
        assert [item.message_id for item in await pending(store, below=0.5, limit=10)] == [llm]
        with pytest.raises(AssistantError):
            await save_label(store, llm, "not an intent name!")
    finally:
        await store.aclose()
