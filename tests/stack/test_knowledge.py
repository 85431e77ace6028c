"""The knowledge base on the real stack: `assistant up` indexed the demo bot's kb/ (real encoder), real Rasa
routes, answers quoted from the passages (the default) and, when calibrating, written by the real vLLM from
them. Through REST and SSE: an answerable question cites the right document, an unanswerable one is declined,
a follow-up retrieves with its context, an edited document replaces its chunks and a removed one is no longer
retrieved or cited; the widget shows the sources in Chromium, also after a reload."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect

from tests.conftest import Stack

ANSWERABLE = "What is the warranty on kettles?"  # warranty.md says 5 years in total
UNANSWERABLE = "What is the name of Northwind's CEO?"  # no document says


def kb(stack: Stack, *args: str, eval_kb: bool = False) -> subprocess.CompletedProcess[str]:
    """`assistant kb ...` (or `assistant eval kb ...`) against the stack's database, as an operator runs it."""
    env = {**stack.env, "COLUMNS": "200"}
    command = ["eval", "kb"] if eval_kb else ["kb"]
    return subprocess.run(
        [sys.executable, "-m", "wiring", *command, *args], env=env, capture_output=True, text=True, timeout=300
    )


def retrieval(bot: dict[str, Any]) -> dict[str, Any]:
    assert bot["retrieval"], f"the turn did not ask the knowledge base: {bot}"
    return json.loads(bot["retrieval"])


def test_up_indexed_the_demo_knowledge_base(stack: Stack) -> None:
    listed = kb(stack, "list")
    assert listed.returncode == 0, listed.stderr
    for name in ("shipping.md", "returns.md", "warranty.md", "payment.md", "privacy.md", "stores.html"):
        assert name in listed.stdout
    assert "knowledge base: 6 added" in stack.log_path.read_text()
    search = kb(stack, "search", "do you ship to Norway?")
    assert search.returncode == 0 and "answered" in search.stdout and "Shipping and delivery" in search.stdout


def test_an_answerable_question_cites_its_document(stack: Stack) -> None:
    response = stack.send("kb-answer", ANSWERABLE)
    assert response.status_code == 200
    text, custom = response.json()
    user, bot = stack.turn("kb-answer")
    assert user["route"] == "llm" and (bot["reason"], bot["answered_by"]) == ("quoted", "kb")
    assert "5 years" in bot["text"] or "five years" in bot["text"], bot["text"]  # the document's own words
    assert text["text"] == bot["text"] and re.search(r"\[\d\]", bot["text"]), bot["text"]
    citations = custom["custom"]["citations"]
    assert citations and all(c["source"].endswith("/bots/demo/kb/warranty.md") for c in citations)
    found = retrieval(bot)
    assert found["kb_version"].startswith("kb-") and found["passages"][0]["source"].endswith("warranty.md")
    assert {c["chunk_id"] for c in citations} <= {p["chunk_id"] for p in found["passages"]}
    page = stack.http.get(f"{stack.url}/kb/passages/{citations[0]['chunk_id']}")
    assert page.status_code == 200 and page.text.startswith("Warranty (warranty.md)")


def test_the_stream_carries_the_citations(stack: Stack) -> None:
    message = stack.stream("kb-stream", ANSWERABLE)
    assert message["reason"] == "quoted" and message["citations"]
    assert message["citations"][0]["title"] == "Warranty"


def test_an_unanswerable_question_is_declined(stack: Stack) -> None:
    reply = stack.reply("kb-decline", UNANSWERABLE)
    _, bot = stack.turn("kb-decline")
    assert reply.startswith("I'm sorry, I don't know") and bot["reason"] in ("no_evidence", "unsupported")
    assert retrieval(bot)["citations"] == []


def test_calibration_compares_quoted_and_generated_answers_through_the_real_llm(stack: Stack, tmp_path: Path) -> None:
    """`assistant eval kb --calibrate`: vLLM answers the demo questions from their passages once; each mode
    and floor is judged on them; the chosen settings come out as YAML for assistant.yml, with a report."""
    out = tmp_path / "calibration"
    result = kb(stack, "--data", "bots/demo/evals/kb.yml", "--limit", "6", "--calibrate", "--modes",
                "extract,generate,hybrid", "--out", str(out), eval_kb=True)  # fmt: skip
    said = result.stdout
    assert result.returncode == 0, said[-2000:] + result.stderr[-2000:]
    assert "the LLM (base) answered 6 questions from their passages" in " ".join(said.split())
    rows = {line.split("│")[1].strip().split(" ")[0]: line for line in said.splitlines() if line.count("│") > 5}
    assert {"extract", "generate", "hybrid"} <= set(rows), said  # each mode at its best settings
    assert "put this in assistant.yml" in said and re.search(r"answer: (extract|generate|hybrid)", said)
    chosen = json.loads((out / "kb_eval.json").read_text())["figures"]["chosen"]
    assert f"min_score: {chosen['min_score']}" in said and "(chosen)" in rows[chosen["answer"]]


def test_a_follow_up_retrieves_with_the_conversation(stack: Stack) -> None:
    stack.reply("kb-follow", "Do you ship to Norway?")
    stack.reply("kb-follow", "And to Sweden?")
    _, bot = stack.turn("kb-follow")
    found = retrieval(bot)
    assert found["query"] == "Do you ship to Norway? And to Sweden?"
    assert found["passages"][0]["source"].endswith("shipping.md")


def test_an_edited_document_replaces_its_chunks_and_a_removed_one_is_gone(stack: Stack, tmp_path: Path) -> None:
    doc = tmp_path / "engraving.md"
    doc.write_text("# Engraving\n\nNorthwind engraves any watch or pen for 3.50 EUR, ready in two days.\n")
    added = kb(stack, "add", str(tmp_path))
    assert added.returncode == 0 and "1 added" in added.stdout, added.stdout + added.stderr
    question = "Can you engrave my new watch?"
    stack.reply("kb-edit-1", question)
    first = retrieval(stack.turn("kb-edit-1")[1])
    wrapped = [p for p in first["passages"] if p["source"].endswith("engraving.md")]
    assert wrapped and first["passages"][0] == wrapped[0]

    doc.write_text("# Engraving\n\nNorthwind engraves any watch or pen for free, ready in two days.\n")
    replaced = kb(stack, "add", str(tmp_path))
    assert replaced.returncode == 0 and "1 replaced" in replaced.stdout
    stack.reply("kb-edit-2", question)
    second = retrieval(stack.turn("kb-edit-2")[1])
    new = [p for p in second["passages"] if p["source"].endswith("engraving.md")]
    assert new and new[0]["chunk_id"] != wrapped[0]["chunk_id"] and second["kb_version"] != first["kb_version"]
    old_page = stack.http.get(f"{stack.url}/kb/passages/{wrapped[0]['chunk_id']}")
    assert old_page.status_code == 404  # the old chunk is gone

    removed = kb(stack, "remove", str(doc))
    assert removed.returncode == 0 and "1 removed" in removed.stdout
    reply = stack.reply("kb-edit-3", question)
    third = retrieval(stack.turn("kb-edit-3")[1])
    assert not any(p["source"].endswith("engraving.md") for p in third["passages"])
    assert "engraving" not in json.dumps(third["citations"]) and "3.50" not in reply


def test_the_widget_shows_the_sources_as_links(browser: Browser, stack: Stack) -> None:
    page = browser.new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(f"{stack.url}/chat")
        page.get_by_label("Your message").fill(ANSWERABLE)
        page.keyboard.press("Enter")
        reply = page.locator(".aw-bot[data-message-id]").last
        expect(reply).to_be_visible()
        links = reply.locator(".aw-sources a")
        expect(links.first).to_have_text("Warranty")
        href = links.first.get_attribute("href")
        assert href is not None and "/kb/passages/" in href
        assert page.request.get(href).text().startswith("Warranty (warranty.md)")
        page.reload()  # the conversation comes back from the server, with the reply's sources
        expect(page.locator(".aw-bot[data-message-id]").last.locator(".aw-sources a").first).to_have_text("Warranty")
    finally:
        page.close()
