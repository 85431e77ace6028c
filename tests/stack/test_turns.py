"""Turns through the real stack: real Rasa classifies, real vLLM answers, the SQLite log records all."""

from __future__ import annotations

import json
import time

import httpx
from httpx_sse import connect_sse

from assistant.config import Settings
from tests.conftest import LLM_TALK, VLLM_AUTH, Stack, dialogue


def test_intent_gets_its_templated_reply_with_entity_filled(stack: Stack) -> None:
    assert stack.reply("greeter", "hi, I'm Ana") == (
        "Hello Ana! I'm Penny, Northwind's assistant. How can I help you today?"
    )
    user, bot = stack.turn("greeter")
    assert (user["role"], user["text"], user["intent"]) == ("user", "hi, I'm Ana", "greet")
    assert user["confidence"] > 0.5
    ranking = json.loads(user["ranking"])
    assert ranking[0]["name"] == "greet" and len(ranking) > 1
    assert {"entity": "name", "value": "Ana"}.items() <= json.loads(user["entities"])[0].items()
    assert user["nlu_model"].startswith("nlu-") and user["nlu_model"].endswith(".tar.gz")
    assert (user["route"], user["reason"]) == ("intent", "confident")
    assert (bot["route"], bot["reason"], bot["answered_by"]) == ("intent", "confident", "utter_greet")
    assert bot["latency_ms"] > 0 and bot["prompt"] is None


def test_slots_carry_across_turns_into_an_action(stack: Stack) -> None:
    assert stack.reply("shopper", "where is my order") == "Sure, I can check that. What is your order number?"
    assert stack.reply("shopper", "the order number is 12345") == "Order #12345 has shipped and is on its way."
    assert stack.turn("shopper")[1]["answered_by"] == "action_order_status"
    # the order number is remembered for later intents of the same conversation
    assert stack.reply("shopper", "I want to cancel my order").startswith(
        "I've sent a cancellation request for order #12345"
    )
    slots = stack.rows("SELECT slots FROM conversations WHERE sender_id = 'shopper'")[0]["slots"]
    assert json.loads(slots)["order_id"] == "12345"


def test_faq_retrieval_intent_answers_with_the_selected_response(stack: Stack) -> None:
    """The demo's FAQ is a retrieval intent: the real Rasa model's ResponseSelector picks ``faq/ask_gift_cards``
    for a paraphrase it was not trained on, and the reply is ``utter_faq/ask_gift_cards`` (data/faq.yml)."""
    text = stack.reply("faq-asker", "can I purchase a gift card for my friend")
    assert text.startswith("Yes: Northwind gift cards")
    user, bot = stack.turn("faq-asker")
    assert (user["intent"], user["route"], user["reason"]) == ("faq/ask_gift_cards", "intent", "confident")
    assert bot["answered_by"] == "utter_faq/ask_gift_cards" and bot["prompt"] is None
    assert stack.reply("faq-asker", "a competitor has it cheaper, will you match that").startswith("We match")


def test_small_talk_without_a_curated_reply_goes_to_the_llm(stack: Stack) -> None:
    text = stack.reply("chatter", LLM_TALK[0])
    user, bot = stack.turn("chatter")
    # chitchat, but no written reply's selection is sure enough (the stored intent names the closest key)
    assert user["intent"].startswith("chitchat/") and (user["route"], user["reason"]) == ("llm", "low_selection")
    assert (bot["route"], bot["answered_by"], bot["error"]) == ("llm", "base", None)
    assert text == bot["text"] and text.strip() and text != Settings().llm.fallback_reply
    assert bot["prompt_tokens"] > 0 and 0 < bot["completion_tokens"] <= 40
    prompt = json.loads(bot["prompt"])
    assert prompt[0]["role"] == "system" and "Penny" in prompt[0]["content"]
    assert prompt[-1] == {"role": "user", "content": LLM_TALK[0]}


def test_history_reaches_the_llm_prompt(stack: Stack) -> None:
    """The LLM sees earlier turns of this conversation (intent and LLM ones), and only this one's."""
    stack.reply("other-sender", LLM_TALK[1])
    first = stack.reply("historian", LLM_TALK[1])
    stack.reply("historian", "what payment methods do you accept")
    stack.reply("historian", LLM_TALK[2])
    _, bot = stack.turn("historian")
    prompt, history = json.loads(bot["prompt"]), dialogue(bot)
    assert prompt[0]["role"] == "system" and json.loads(bot["generation"])["examples"] <= 2  # curated, then these
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant", "user"]
    assert history[0:2] == [{"role": "user", "content": LLM_TALK[1]}, {"role": "assistant", "content": first}]
    assert history[2]["content"] == "what payment methods do you accept"
    assert history[3]["content"].startswith("We accept Visa")
    # vLLM itself counted exactly this prompt: its tokenizer gives the prompt_tokens it reported for the turn
    tokenized = httpx.post(
        f"{stack.vllm_url}/tokenize",
        json={"model": "base", "messages": prompt, "add_generation_prompt": True},
        headers=VLLM_AUTH,
        timeout=30,
    ).json()
    assert tokenized["count"] == bot["prompt_tokens"]


def test_history_is_limited_to_the_configured_turns(stack: Stack) -> None:
    for i in range(8):
        stack.reply("long-talker", f"thanks {i}")
    stack.reply("long-talker", LLM_TALK[0])
    assert len(dialogue(stack.turn("long-talker")[1])) == 2 * 6 + 1  # history_turns (6) user/bot pairs + this one


def test_stream_emits_llm_tokens_as_they_arrive(stack: Stack) -> None:
    tokens: list[tuple[float, str]] = []
    final = None
    started = time.monotonic()
    with connect_sse(
        stack.http,
        "POST",
        f"{stack.url}/webhooks/rest/stream",
        json={"sender": "streamer", "message": LLM_TALK[1]},
    ) as sse:
        assert sse.response.headers["content-type"].startswith("text/event-stream")
        for event in sse.iter_sse():
            if event.event == "token":
                tokens.append((time.monotonic() - started, json.loads(event.data)["text"]))
            elif event.event == "message":
                final = (time.monotonic() - started, json.loads(event.data))
    assert final is not None and len(tokens) >= 5
    assert "".join(t for _, t in tokens) == final[1]["text"]
    assert tokens[0][0] < final[0] - 0.2  # the first token came well before the end of the reply
    assert (final[1]["recipient_id"], final[1]["route"], final[1]["reason"]) == ("streamer", "llm", "low_selection")
    _user, bot = stack.turn("streamer")
    assert bot["id"] == final[1]["message_id"] and bot["text"] == final[1]["text"]


def test_stream_sends_intent_replies_whole(stack: Stack) -> None:
    with connect_sse(
        stack.http, "POST", f"{stack.url}/webhooks/rest/stream", json={"sender": "s2", "message": "are you a bot"}
    ) as sse:
        events = [(e.event, json.loads(e.data)) for e in sse.iter_sse()]
    assert [name for name, _ in events] == ["message", "done"]
    assert events[0][1]["text"].startswith("I'm Penny, a virtual assistant")
    assert events[0][1]["route"] == "intent"


def test_metadata_is_stored_and_numeric_senders_accepted(stack: Stack) -> None:
    response = stack.send(4711, "hello", metadata={"locale": "de"})  # Rasa clients may send numeric ids
    assert response.status_code == 200 and response.json()[0]["recipient_id"] == "4711"
    user, _ = stack.turn("4711")
    assert json.loads(user["metadata"]) == {"locale": "de"}


def test_status_reports_services_and_active_models(stack: Stack) -> None:
    status = stack.status()
    assert status["nlu"]["ok"] and "Rasa: 3.6.21" in status["nlu"]["detail"]
    assert status["llm"]["ok"] and status["llm"]["active_model"] == "base"
    metrics = stack.http.get(f"{stack.url}/metrics").text
    assert 'assistant_turns_total{reason="confident",route="intent"}' in metrics


def test_client_leaving_mid_stream_still_logs_the_partial_reply(stack: Stack) -> None:
    with connect_sse(
        stack.http, "POST", f"{stack.url}/webhooks/rest/stream", json={"sender": "leaver", "message": LLM_TALK[1]}
    ) as sse:
        for event in sse.iter_sse():
            if event.event == "token":
                break  # hang up after the first token
    stack.wait_until(lambda: stack.turn("leaver")[1]["error"] is not None, 30, "the interrupted reply to be logged")
    user, bot = stack.turn("leaver")
    assert user["text"] == LLM_TALK[1] and user["route"] == "llm"
    assert bot["error"].startswith("interrupted") and bot["route"] == "llm"
