"""Faults on the real stack: Rasa or vLLM hanging or gone. Each turn still answers HTTP 200 with the
documented fallback, and is logged. These run last (they stop parts of the stack), in this order."""

from __future__ import annotations

import json
import signal
import threading
import time

import psutil
import pytest

from tests.conftest import LLM_TALK, Stack

pytestmark = pytest.mark.faults
FALLBACK = "Sorry, I can't answer that right now. Please try again in a moment."


def test_rasa_hanging_times_out_to_the_llm_and_the_message_is_committed_first(stack: Stack) -> None:
    stack.signal_service("rasa", signal.SIGSTOP)
    try:
        result: dict[str, object] = {}
        thread = threading.Thread(target=lambda: result.update(text=stack.reply("hang-nlu", "are you a bot")))
        thread.start()
        time.sleep(1.0)  # the app is now waiting on the frozen Rasa (timeout 2 s)
        stored = stack.rows(
            "SELECT m.text, m.route FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "WHERE c.sender_id = 'hang-nlu'"
        )
        assert stored == [{"text": "are you a bot", "route": None}]  # committed before the NLU answered
        thread.join(60)
    finally:
        stack.signal_service("rasa", signal.SIGCONT)
    user, bot = stack.turn("hang-nlu")
    assert (user["route"], user["reason"], user["intent"]) == ("llm", "nlu_unavailable", None)
    assert "timed out" in user["error"]
    assert (bot["route"], bot["answered_by"], bot["error"]) == ("llm", "base", None)
    assert result["text"] == bot["text"] != FALLBACK


def test_vllm_hanging_times_out_to_the_fallback_reply(stack: Stack) -> None:
    stack.signal_service("vllm", signal.SIGSTOP)
    try:
        assert stack.reply("hang-llm", LLM_TALK[0]) == FALLBACK
    finally:
        stack.signal_service("vllm", signal.SIGCONT)
    user, bot = stack.turn("hang-llm")
    # small talk no written reply covers surely (the stored intent names the closest one)
    assert user["intent"].startswith("chitchat/") and user["route"] == "llm"
    assert (bot["reason"], bot["text"]) == ("llm_unavailable", FALLBACK)
    assert "Timeout" in bot["error"]
    # intent replies never needed the LLM
    assert stack.reply("hang-llm", "what payment methods do you accept").startswith("We accept Visa")


def test_rasa_down_routes_to_the_llm_and_up_restarts_it(stack: Stack) -> None:
    old_pid = stack.services()["rasa"]["pid"]
    stack.signal_service("rasa", signal.SIGKILL)
    psutil.Process(old_pid).wait(10) if psutil.pid_exists(old_pid) else None
    response = stack.send("no-nlu", "are you a bot")
    assert response.status_code == 200
    user, bot = stack.turn("no-nlu")
    assert (user["reason"], bot["route"]) == ("nlu_unavailable", "llm")
    assert response.json()[0]["text"] == bot["text"]
    # `assistant up` notices and starts Rasa again; intent replies come back without an app restart
    stack.wait_until(lambda: stack.services()["rasa"]["pid"] != old_pid and stack.status()["nlu"]["ok"], 180, "Rasa")
    assert stack.reply("no-nlu", "are you a bot").startswith("I'm Penny, a virtual assistant")


def test_both_down_gives_the_fallback_and_logs_the_turn(stack: Stack) -> None:
    stack.signal_service("rasa", signal.SIGKILL)
    stack.signal_service("vllm", signal.SIGKILL)
    time.sleep(1)
    response = stack.send("no-backends", LLM_TALK[0])  # nothing in the documents: the LLM's, which is down
    assert response.status_code == 200
    assert response.json() == [{"recipient_id": "no-backends", "text": FALLBACK}]
    user, bot = stack.turn("no-backends")
    assert (user["text"], user["reason"]) == (LLM_TALK[0], "nlu_unavailable")
    assert (bot["reason"], bot["text"]) == ("llm_unavailable", FALLBACK)
    assert user["error"] and bot["error"]
    assert json.loads(bot["prompt"])[-1]["content"] == LLM_TALK[0]
    # what the documents answer is still answered: quoted, with its source, without either server
    text, custom = stack.send("no-backends-kb", "what payment methods do you accept").json()
    _, bot = stack.turn("no-backends-kb")
    assert (bot["reason"], bot["answered_by"]) == ("quoted", "kb") and "Visa" in text["text"]
    assert custom["custom"]["citations"][0]["source"].endswith("payment.md")
