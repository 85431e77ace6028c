"""Small talk on the real stack (real Rasa with the demo's chitchat ResponseSelector, real vLLM, the encoder):
curated replies over REST and the widget's endpoint, an approved annotation answering a paraphrase at once, the
abstain reply kept for real open questions, and `assistant eval replies` judging replies end to end."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from tests.conftest import DEMO, Stack
from tests.stack.test_cli import assistant

CHITCHAT = yaml.safe_load((DEMO / "data" / "chitchat.yml").read_text())["responses"]
CURATED = {
    "tell me a joke": "chitchat/tell_joke",
    "nice to meet you": "chitchat/nice_to_meet_you",
    "how old are you?": "chitchat/ask_age",
}


def written(key: str) -> str:
    return str(CHITCHAT[f"utter_{key}"][0]["text"])


@pytest.mark.parametrize("text", list(CURATED))
def test_small_talk_gets_the_curated_reply_over_rest_and_in_the_widget(stack: Stack, text: str) -> None:
    key = CURATED[text]
    sender = f"curated-{uuid.uuid4().hex[:8]}"
    assert stack.reply(sender, text) == written(key)
    user, bot = stack.turn(sender)
    assert (user["intent"], bot["route"], bot["answered_by"]) == (key, "intent", f"utter_{key}")  # intent/key stored
    widget = "w" * 16 + uuid.uuid4().hex[:8]
    response = stack.http.post(f"{stack.url}/webhooks/web/stream", json={"sender": widget, "message": text})
    assert response.status_code == 200
    blocks = [block.split("\n") for block in response.text.strip().split("\n\n")]
    (message,) = [json.loads(lines[-1].removeprefix("data: ")) for lines in blocks if lines[0] == "event: message"]
    assert (message["text"], message["model"]) == (written(key), f"utter_{key}")


def test_an_approved_annotation_answers_a_paraphrase_at_once(stack: Stack) -> None:
    asked = stack.stream(f"annotate-{uuid.uuid4().hex[:6]}", "what is the name of your parrot mascot")
    answer = "Our parrot mascot is called Pip, and he says hello!"
    given = stack.admin(f"/messages/{asked['message_id']}/feedback", {"rating": "down", "correction": answer})
    assert given.status_code == 201, given.text
    sender = f"paraphrase-{uuid.uuid4().hex[:6]}"
    assert stack.reply(sender, "your parrot mascot, what is its name?") == answer
    _, bot = stack.turn(sender)
    (row,) = stack.rows("SELECT id, hits FROM annotations WHERE answer = ?", answer)
    assert (bot["reason"], bot["answered_by"], row["hits"]) == ("annotated", f"annotation-{row['id']}", 1)
    stack.http.delete(f"{stack.url}/api/annotations/{row['id']}", headers={"Authorization": "Bearer test-admin-token"})


def test_an_open_question_the_documents_do_not_answer_still_gets_the_abstain_reply(stack: Stack) -> None:
    sender = f"worldcup-{uuid.uuid4().hex[:6]}"
    reply = stack.reply(sender, "who won the world cup in 2018?")
    assert reply.startswith("I'm sorry, I don't know") and "orders" in reply
    _, bot = stack.turn(sender)
    assert (bot["route"], bot["reason"], bot["answered_by"]) == ("llm", "no_evidence", "kb")


def test_eval_replies_judges_each_kind_through_the_real_turn(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "replies"
    result = assistant("eval", "replies", "--limit", "4", "--out", str(out), env=stack.env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    data = json.loads((out / "replies.json").read_text())
    kinds = {r["kind"] for r in data["replies"]}  # 4 cases of each set (kb.yml's are answerable or not)
    assert {"smalltalk", "behaviour", "out_of_scope"} <= kinds and kinds & {"answerable", "unanswerable"}
    assert len(data["replies"]) == 16 and sum(sum(row.values()) for row in data["confusion"].values()) == 16
    assert all(r["answer"]["text"] and r["route_class"] for r in data["replies"])
    # small talk is never the abstain reply; requests to decline are declined
    assert data["confusion"]["smalltalk"]["abstain"] == 0 and data["figures"]["out_of_scope"]["declined"] >= 0.75
    report = (out / "report.md").read_text()
    assert "## Kind of message x where the reply came from" in report and "## 20 replies as people read them" in report
    assert (out / "routes.png").read_bytes()[:4] == b"\x89PNG"
    # the evaluation's conversations are erased afterwards
    assert stack.rows("SELECT id FROM conversations WHERE sender_id LIKE 'eval-%'") == []
