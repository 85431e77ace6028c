"""Training data out of the log: NLU (Rasa YAML, merged with the bot's data) and SFT (chat JSONL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from assistant.config import Settings
from assistant.contracts import ChatMessage, Reason, Route
from assistant.store import ReplyRecord, Store, Understanding, feedback
from training.export import export_nlu, export_sft

pytestmark = pytest.mark.database  # on SQLite, and on PostgreSQL when ASSISTANT_TEST_POSTGRES_URL is set


async def turn(
    store: Store, sender: str, text: str, reply: str, route: str = "llm", **analysis: Any
) -> tuple[int, int]:
    t = await store.begin_turn("rest", sender, text, None)
    reason = Reason(analysis.pop("reason", Reason.LLM_INTENT if route == "llm" else Reason.CONFIDENT))
    understood = Understanding(Route(route), reason, **analysis)
    bot = await store.finish_turn(t, understood, ReplyRecord(reply, Route(route), reason), None)
    return t.message_id, bot


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=store_url)


async def test_nlu_export_merges_labels_with_the_bot_data_and_reports_conflicts(
    settings: Settings, tmp_path: Path
) -> None:
    store = Store(settings.db_url)
    try:
        labelled = {
            "how many stars are in my wallet": ("loyalty_points", []),
            "hi": ("goodbye", []),  # the bot's data says greet: a conflict, the human label wins
            "bye": ("goodbye", []),  # the same as the bot's data: no duplicate
            "send my order to Paris": (
                "update_address",
                [{"entity": "city", "value": "Paris", "start": 17, "end": 22}],
            ),
            "pay with 4111 1111 1111 1111 and mail jo@example.com": ("pay", []),
        }
        for text, (intent, entities) in labelled.items():
            user_id, _ = await turn(store, "s1", text, "ok")
            await store.transaction(lambda c, u=user_id, i=intent, e=entities: feedback.set_label(c, u, i, e))
        confident, _ = await turn(
            store, "s2", "hello there friend", "Hi!", route="intent", intent="greet", confidence=0.99
        )
        assert confident

        plain = await export_nlu(settings, store, tmp_path / "plain")
        auto = await export_nlu(settings, store, tmp_path / "auto", auto_label_confidence=0.95)
    finally:
        await store.aclose()

    data = yaml.safe_load(plain.train.read_text())
    examples = {
        line.removeprefix("- "): item["intent"]
        for item in data["nlu"]
        if "intent" in item
        for line in item["examples"].splitlines()
    }
    assert examples["how many stars are in my wallet"] == "loyalty_points"
    assert examples["hi"] == "goodbye"
    assert examples["send my order to [Paris](city)"] == "update_address"
    assert examples["pay with <CARD> and mail <EMAIL>"] == "pay"  # scrubbed like the SFT export
    assert "4111" not in plain.train.read_text() + plain.test.read_text()
    assert list(examples).count("bye") == 1
    assert [c["text"] for c in plain.conflicts] == ["hi"] and plain.conflicts[0]["kept"] == "goodbye"
    assert plain.counts["human_labels"] == 5 and plain.counts["auto_labels"] == 0
    assert auto.counts["auto_labels"] == 1 and "hello there friend" in auto.train.read_text()
    assert json.loads((tmp_path / "plain" / "conflicts.json").read_text())[0]["text"] == "hi"
    # held-out examples are the bot's test examples, never also in training
    test = yaml.safe_load(plain.test.read_text())
    held = {line for item in test["nlu"] for line in item["examples"].splitlines()}
    assert held and not held & {f"- {text}" for text in examples}
    # the FAQ retrieval intent's answers travel with its examples (Rasa's ResponseSelector needs them)
    assert examples["do you sell gift cards"] == "faq/ask_gift_cards"
    assert data["responses"]["utter_faq/ask_gift_cards"][0]["text"].startswith("Yes: Northwind gift cards")


async def test_sft_export_uses_corrections_and_good_replies_scrubbed_and_split_by_conversation(
    settings: Settings, tmp_path: Path
) -> None:
    store = Store(settings.db_url)
    try:
        for n in range(10):
            sender = f"conv-{n}"
            await turn(store, sender, "hello", "Hi!", route="intent")
            _, bot = await turn(store, sender, f"tell me a joke number {n}", f"a dull joke {n}")
            correction = f"A better joke {n}; write to ana{n}@example.com or call +44 20 7946 0{n}58"
            await store.transaction(lambda c, b=bot, t=correction: feedback.add_feedback(c, b, "down", t))
        _, liked = await turn(store, "liked", "how are you", "Splendid, thanks!")
        await store.transaction(lambda c: feedback.add_feedback(c, liked, "up", None))
        _, disliked = await turn(store, "disliked", "how old are you", "I am 900 years old")
        await store.transaction(lambda c: feedback.add_feedback(c, disliked, "down", None))
        _, intent_reply = await turn(store, "intent", "bye", "Goodbye!", route="intent")
        await store.transaction(lambda c: feedback.add_feedback(c, intent_reply, "up", None))

        scrubbed = await export_sft(settings, store, tmp_path / "sft")
        raw = await export_sft(settings, store, tmp_path / "raw", scrub=False)
    finally:
        await store.aclose()

    rows = [
        json.loads(line) for path in (scrubbed.train, scrubbed.validation) for line in path.read_text().splitlines()
    ]
    targets = [row["messages"][-1]["content"] for row in rows]
    assert scrubbed.counts["examples"] == 11  # 10 corrections + 1 rated up; not the rated-down, not the intent reply
    assert "Splendid, thanks!" in targets and not any("900" in t or "Goodbye" in t for t in targets)
    joke = next(row for row in rows if row["messages"][-1]["content"].startswith("A better joke 3"))
    assert [m["role"] for m in joke["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert joke["messages"][1:4] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "tell me a joke number 3"},
    ]
    assert "<EMAIL>" in joke["messages"][-1]["content"] and "<PHONE>" in joke["messages"][-1]["content"]
    assert "ana3@example.com" not in scrubbed.train.read_text() + scrubbed.validation.read_text()
    assert "ana3@example.com" in raw.train.read_text() + raw.validation.read_text()
    train_ids = {json.loads(line)["conversation_id"] for line in scrubbed.train.read_text().splitlines()}
    validation_ids = {json.loads(line)["conversation_id"] for line in scrubbed.validation.read_text().splitlines()}
    assert train_ids and validation_ids and not train_ids & validation_ids


async def test_a_grounded_answer_is_learnt_with_its_passages(settings: Settings, tmp_path: Path) -> None:
    """An approved correction of a reply from the knowledge base becomes an example whose prompt holds the
    numbered passages it was answered from, so the adapter learns to answer from them and cite them. A quoted
    reply (the documents' sentences, no LLM, no prompt) is not an example: it would teach answering from
    memory."""
    store = Store(settings.db_url)
    try:
        t = await store.begin_turn("rest", "kb", "what is the warranty on kettles?", None)
        prompt = [
            ChatMessage("system", "You are Penny."),
            ChatMessage(
                "user", "Answer ... Passages:\n[1] Warranty\nKettles: 5 years.\n\nQuestion: what is the warranty?"
            ),
        ]
        record = ReplyRecord(
            "Kettles have a 5 year warranty [1].", Route.LLM, Reason.GROUNDED, prompt=prompt,
            retrieval={"evidence": True, "passages": [{"chunk_id": 1}], "citations": [{"n": 1}]},
        )  # fmt: skip
        bot = await store.finish_turn(t, Understanding(Route.LLM, Reason.LOW_CONFIDENCE), record, None)
        better = "Kettles have 5 years of warranty in total [1]."
        await store.transaction(lambda c: feedback.add_feedback(c, bot, None, better))
        q = await store.begin_turn("rest", "kb-quoted", "do kettles have a warranty?", None)
        quoted = ReplyRecord(
            "Kettles: 5 years [1].", Route.LLM, Reason.QUOTED, answered_by="kb",
            retrieval={"evidence": True, "passages": [{"chunk_id": 1}], "citations": [{"n": 1}]},
        )  # fmt: skip
        quoted_id = await store.finish_turn(q, Understanding(Route.LLM, Reason.LOW_CONFIDENCE), quoted, None)
        await store.transaction(lambda c: feedback.add_feedback(c, quoted_id, "up", "Yes, 5 years."))
        exported = await export_sft(settings, store, tmp_path / "sft")
    finally:
        await store.aclose()
    (row,) = [json.loads(line) for p in (exported.train, exported.validation) for line in p.read_text().splitlines()]
    assert row["messages"][:2] == [{"role": m.role, "content": m.content} for m in prompt]
    assert row["messages"][-1] == {"role": "assistant", "content": better}
