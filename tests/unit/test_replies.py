"""The end-to-end reply evaluation (evaluation/replies.py): messages through the app's real turn (in-process:
fake NLU and LLM that implement the contracts, the real router, store and knowledge base), each reply put in
its route class and judged by the kind of message; the figures, the kind x route table and the report."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.contracts import ServingState
from assistant.replies.checks import CheckContext
from assistant.turn.router import Router
from evaluation import replies
from evaluation.replies import Answer
from evaluation.sets import load_sets
from tests.unit.apps import App, app_with_kb
from tests.unit.fakes import FakeNLU

SETS = {
    "talk.yml": """name: talk
kind: reference
cases:
  - {id: hello, message: hello, reference: "Hello there!"}
  - {id: fired, message: you are fired, reference: "Okay, but I'm always up for rehire."}
  - {id: order, message: where is order 4711, reference: "Nice to meet you."}
""",
    "docs.yml": """name: docs
kind: grounded
cases:
  - {id: norway, message: do you ship kettles to norway, reference: "Yes, in six working days.", gold: [shipping]}
  - {id: cup, message: who won the world cup, answerable: false}
""",
    "decline.yml": """name: decline
kind: declined
cases:
  - {id: cup, message: who won the world cup}
  - {id: hello, message: hello}
""",
}
TALK = frozenset({"chitchat", "greet", "goodbye"})


@pytest.fixture
async def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[App]:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    for name, text in SETS.items():
        (tmp_path / name).write_text(text)
    async with app_with_kb(tmp_path, answer="extract") as running:
        yield running


async def through(app: App, sender: str, message: str) -> Answer:
    """What `assistant eval replies` does: the REST channel's stream, its message event."""
    response = await app.http.post("/webhooks/rest/stream", json={"sender": sender, "message": message})
    assert response.status_code == 200, response.text
    blocks = [b.split("\n") for b in response.text.strip().split("\n\n")]
    (event,) = [json.loads(data.removeprefix("data: ")) for name, data in blocks if name == "event: message"]
    return Answer.of_event(event)


async def test_each_message_goes_through_the_turn_and_is_judged_by_its_kind(app: App, tmp_path: Path) -> None:
    app.llm.script.pieces = ["Okay, but I'm always up for rehire."]
    sets = load_sets([tmp_path / name for name in SETS])
    judged = await replies.run(sets, lambda s, m: through(app, s, m), TALK, CheckContext(), "eval-1")
    found = {(j.set, j.id): j for j in judged}
    assert len(found) == 7 and all(j.answer.text for j in judged)
    # small talk: a written reply (greet), the LLM for an unsure one that reads as small talk; an order question's
    # business answer is wrong for a small-talk message
    assert (found["talk", "hello"].route_class, found["talk", "hello"].ok) == ("curated", True)
    fired = found["talk", "fired"]
    assert (fired.route_class, fired.answer.reason, fired.ok) == ("llm", "small_talk", True)
    assert (found["talk", "order"].route_class, found["talk", "order"].ok) == ("business", False)
    # documents: quoted with a citation; what they do not say, and a request to decline, get the abstain reply
    norway = found["docs", "norway"]
    assert (norway.kind, norway.route_class, norway.ok, norway.answer.citations) == ("answerable", "kb", True, 1)
    assert (found["docs", "cup"].kind, found["docs", "cup"].route_class, found["docs", "cup"].ok) == (
        "unanswerable", "abstain", True,
    )  # fmt: skip
    assert (found["decline", "cup"].kind, found["decline", "cup"].ok) == ("out_of_scope", True)
    assert (found["decline", "hello"].route_class, found["decline", "hello"].ok) == ("curated", False)
    # each case was its own conversation, with the prefix
    senders = {r["sender_id"] for r in app.rows("SELECT sender_id FROM conversations")}
    assert senders == {f"eval-1-{s.name}-{c.id}" for s in sets for c in s.cases}


def answer(route: str, reason: str, intent: str | None = None, by: str | None = None, cited: int = 0) -> Answer:
    return Answer("some words here", route, reason, intent, by, cited, 10.0)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (answer("intent", "confident", "greet", "utter_greet"), "curated"),
        (answer("intent", "confident", "chitchat/ask_age", "utter_chitchat/ask_age"), "curated"),
        (answer("intent", "confident", "order_status", "action_order_status"), "business"),
        (answer("llm", "quoted", "out_of_scope", "kb", cited=1), "kb"),
        (answer("llm", "grounded", None, "base", cited=2), "kb"),
        (answer("llm", "no_evidence", "out_of_scope", "kb"), "abstain"),
        (answer("llm", "unsupported", "out_of_scope", "base"), "abstain"),
        (answer("llm", "llm_unavailable", "chitchat", "base"), "fallback"),
        (answer("llm", "low_selection", "chitchat", "llm-0002"), "llm"),
        (answer("llm", "small_talk", "out_of_scope", "annotation-3"), "curated"),
    ],
)
def test_route_class(reply: Answer, expected: str) -> None:
    assert replies.route_class(reply, TALK) == expected


def judged(kind: str, cls: str, ok: bool, similarity: float | None = None, text: str = "fine thanks") -> replies.Judged:
    reply = Answer(text, "llm", "llm_intent", None, "base", 0, 100.0)
    return replies.Judged("s", f"{kind}-{cls}-{ok}-{text}", kind, "m", "r", reply, cls, ok, [], similarity)


def test_figures_and_the_kind_by_route_table_add_up(tmp_path: Path) -> None:
    items = [
        judged("smalltalk", "curated", True, 1.0),
        judged("smalltalk", "abstain", False, 0.2),
        judged("smalltalk", "business", False, 0.0, "other"),
        judged("smalltalk", "llm", True, 0.6, "yet another"),
        judged("answerable", "kb", True),
        judged("out_of_scope", "abstain", True),
        judged("out_of_scope", "llm", False),
    ]
    evaluation = replies.evaluate(items)
    talk = evaluation.figures["smalltalk"]
    assert (talk["cases"], talk["ok"], talk["abstained"], talk["business"]) == (4, 0.5, 0.25, 0.25)
    assert talk["similarity"] == pytest.approx(0.45)
    assert evaluation.figure("out_of_scope", "declined") == 0.5
    assert evaluation.confusion["smalltalk"] == {"curated": 1, "business": 1, "kb": 0, "abstain": 1, "llm": 1,
                                                 "fallback": 0}  # fmt: skip
    assert "behaviour" not in evaluation.figures
    path = replies.write_report(tmp_path / "out", evaluation, "Replies", "a note")
    text = path.read_text()
    assert "| smalltalk | 1 | 1 | 0 | 1 | 1 | 0 |" in text and "## 20 replies as people read them" in text
    assert (tmp_path / "out" / "routes.png").read_bytes()[:4] == b"\x89PNG"
    assert len(json.loads((tmp_path / "out" / "replies.json").read_text())["replies"]) == 7


def test_the_sample_is_stable_and_half_small_talk() -> None:
    items = [judged("smalltalk", "llm", True, text=f"t{i}") for i in range(30)]
    items += [judged("answerable", "kb", True, text=f"a{i}") for i in range(30)]
    first, again = replies.samples(items), replies.samples(list(reversed(items)))
    assert [j.id for j in first] == [j.id for j in again] and len(first) == 20
    assert sum(j.kind == "smalltalk" for j in first) == 10


def test_similarity_is_scored_for_small_talk_only() -> None:
    items = [judged("smalltalk", "llm", True), judged("answerable", "kb", True)]
    replies.add_similarity(items, lambda texts: [[1.0, 0.0] for _ in texts])
    assert [j.similarity for j in items] == [1.0, None]


async def test_the_nlu_gate_counts_small_talk_answered_by_business_and_requests_answered_by_an_intent(
    tmp_path: Path,
) -> None:
    """What the retrain's NLU gate compares (`nlu_routes`): the fake NLU answers "where is order 4711" with
    order_status (a business answer to small talk) and "hello" with greet (an intent answering a request to
    decline); "who won the world cup" is chitchat at 0.9 with no selected reply (the fake's default), which
    goes on to the LLM's side of the turn (documents, abstain reply)."""
    for name, text in SETS.items():
        (tmp_path / name).write_text(text)
    settings = Settings(data_dir=tmp_path)
    nlu = FakeNLU(settings, ServingState("base"))
    sets = load_sets([tmp_path / name for name in SETS])
    routes = await replies.nlu_routes(nlu, sets, Router(settings.router), TALK)
    assert routes["smalltalk_messages"] == 3 and routes["smalltalk_not_business"] == round(2 / 3, 4)
    assert routes["out_of_scope_messages"] == 2 and routes["out_of_scope_not_answered"] == 0.5
    assert await replies.nlu_routes(nlu, [], Router(settings.router), TALK) == {
        "smalltalk_not_business": None, "smalltalk_messages": 0,
        "out_of_scope_not_answered": None, "out_of_scope_messages": 0,
    }  # fmt: skip
