"""Annotations kept and managed (assistant/store/annotations.py, `assistant annotations`, the admin API): made
only from what a reviewer stands behind, imported and exported as CSV, removed with the conversation they quote
when its person is erased, and refused with a sentence when blank."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from typer.testing import CliRunner

from tests.unit.apps import ADMIN, WIDGET_SENDER, App
from wiring.cli import app as cli_app


def said(result: object) -> str:
    return " ".join(str(getattr(result, "output", "")).split())


async def suggested(app: App, sender: str, text: str, corrections: list[str]) -> int:
    """A widget turn and the visitor's suggested replies; returns the bot message id."""
    await app.http.post("/webhooks/web/stream", json={"sender": sender, "message": text})
    bot_id = int(app.turn(sender)[1]["id"])
    for correction in corrections:
        given = await app.http.post("/webhooks/web/feedback", json={
            "sender": sender, "message_id": bot_id, "rating": "down", "correction": correction})  # fmt: skip
        assert given.status_code == 201, given.text
    return bot_id


async def test_an_approval_makes_one_annotation_only_when_the_reviewer_said_which_reply(running: App) -> None:
    two = await suggested(running, WIDGET_SENDER, "what is your parrot called", ["Pip.", "Visit evil.example!"])
    approved = await running.http.post(f"/api/messages/{two}/review", json={"decision": "approve"}, headers=ADMIN)
    assert approved.status_code == 200
    assert running.rows("SELECT id FROM annotations") == []  # two different replies, no edit: none is chosen
    one = await suggested(running, "s" * 24, "is the parrot real", ["He is a drawing."])
    edited = await running.http.post(f"/api/messages/{one}/review", json={"decision": "edit", "correction": "No."},
                                     headers=ADMIN)  # fmt: skip
    assert edited.status_code == 200
    (row,) = running.rows("SELECT question, answer, source, feedback_id FROM annotations")
    assert (row["question"], row["answer"], row["source"]) == ("is the parrot real", "No.", "review")
    rejected = await suggested(running, "r" * 24, "who draws the parrot", ["Bob."])
    await running.http.post(f"/api/messages/{rejected}/review", json={"decision": "reject"}, headers=ADMIN)
    assert len(running.rows("SELECT id FROM annotations")) == 1


async def test_erasing_a_person_removes_the_annotations_quoting_them(running: App) -> None:
    bot_id = await suggested(running, WIDGET_SENDER, "my name is Ada Lovelace, what is your parrot called", ["Pip."])
    await running.http.post(f"/api/messages/{bot_id}/review", json={"decision": "approve"}, headers=ADMIN)
    assert len(running.rows("SELECT id FROM annotations")) == 1
    erased = await running.http.delete(f"/api/senders/{WIDGET_SENDER}", headers=ADMIN)
    assert erased.status_code == 200, erased.text
    assert erased.json()["annotations"] == 1 and running.rows("SELECT id FROM annotations") == []


async def test_the_admin_api_adds_lists_and_removes_annotations(running: App) -> None:
    added = await running.http.post("/api/annotations", json={"question": "q?", "answer": "a."}, headers=ADMIN)
    assert added.status_code == 201, added.text
    number = added.json()["id"]
    listed = await running.http.get("/api/annotations", headers=ADMIN)
    assert [(a["id"], a["question"], a["hits"], a["enabled"]) for a in listed.json()] == [(number, "q?", 0, True)]
    blank = await running.http.post("/api/annotations", json={"question": "  ", "answer": "a."}, headers=ADMIN)
    assert blank.status_code == 422 and "blank" in blank.json()["message"]
    anonymous = await running.http.post("/api/annotations", json={"question": "q", "answer": "a"})
    assert anonymous.status_code == 401
    assert (await running.http.delete(f"/api/annotations/{number}", headers=ADMIN)).status_code == 204
    missing = await running.http.delete(f"/api/annotations/{number}", headers=ADMIN)
    assert missing.status_code == 404 and f"no annotation {number}" in missing.json()["message"]


def test_csv_import_export_and_the_commands(db: str, tmp_path: Path) -> None:
    cli = CliRunner()
    source = tmp_path / "in.csv"
    source.write_text('question,answer\nhow old is Pip,"Two, in parrot years."\nis Pip real,He is a drawing.\n')
    imported = cli.invoke(cli_app, ["annotations", "import", str(source)])
    assert imported.exit_code == 0 and "imported 2 annotations" in said(imported)
    assert cli.invoke(cli_app, ["annotations", "disable", "2"]).exit_code == 0
    exported = cli.invoke(cli_app, ["annotations", "export"])
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["question"], r["answer"], r["enabled"]) for r in rows] == [
        ("how old is Pip", "Two, in parrot years.", "True"), ("is Pip real", "He is a drawing.", "False"),
    ]  # fmt: skip
    again = tmp_path / "out.csv"
    assert cli.invoke(cli_app, ["annotations", "export", "--out", str(again)]).exit_code == 0
    assert cli.invoke(cli_app, ["annotations", "import", str(again)]).exit_code == 0  # an export reads back
    assert "4 annotations" in said(cli.invoke(cli_app, ["annotations", "list"]))
    removed = cli.invoke(cli_app, ["annotations", "remove", "9"])
    assert removed.exit_code == 1 and "there is no annotation 9" in said(removed)
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,reply\nx,y\n")
    refused = cli.invoke(cli_app, ["annotations", "import", str(bad)])
    assert refused.exit_code == 1 and "needs a header row with `question` and `answer`" in said(refused)
    blank = tmp_path / "blank.csv"
    blank.write_text("question,answer\nfine,ok\n ,nothing\n")
    refused = cli.invoke(cli_app, ["annotations", "import", str(blank)])
    assert refused.exit_code == 1 and "line 3: a question and an answer are needed; nothing was imported" in said(
        refused
    )
