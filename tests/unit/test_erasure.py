"""Erasure and retention (in-process app with the contracts' fakes, SQLite): forgetting a sender deletes their
conversations and everything derived, scrubs the files quoting them, and the sender can start again; retention
deletes old turns only; the CLI and the admin API say what they did, or why nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from assistant.store.tables import Message
from assistant.workers.erasure import RetentionWorker, scrub_files
from tests.unit.apps import ADMIN, App, settings_for, start
from wiring.cli import app as cli


@pytest.fixture
async def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    async with start(settings_for(tmp_path)) as app:
        yield app


def counts(app: App, sender: str) -> dict[str, int]:
    rows = app.rows
    where = "FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.sender_id = ?"
    return {
        "conversations": len(rows("SELECT id FROM conversations WHERE sender_id = ?", sender)),
        "messages": len(rows(f"SELECT m.id {where}", sender)),
        "feedback": len(rows(f"SELECT f.id FROM feedback f WHERE f.message_id IN (SELECT m.id {where})", sender)),
        "labels": len(rows(f"SELECT l.id FROM labels l WHERE l.message_id IN (SELECT m.id {where})", sender)),
    }


async def talk(app: App, sender: str, text: str) -> tuple[int, int]:
    await app.say(sender, text)
    user, bot = app.turn(sender)
    return user["id"], bot["id"]


async def test_forget_erases_a_sender_and_everything_derived(app: App, tmp_path: Path) -> None:
    secret = "my card is 4111 1111 1111 1111 and I live at 12 Elm Street"
    user_id, bot_id = await talk(app, "ana", secret)
    correction = "A much better reply that Ana suggested herself"
    await app.http.post(f"/api/messages/{bot_id}/feedback", json={"rating": "down", "correction": correction},
                        headers=ADMIN)  # fmt: skip
    await app.http.post(f"/api/messages/{user_id}/label", json={"intent": "chitchat"}, headers=ADMIN)
    await talk(app, "bob", "how are you")  # someone else: kept
    export = tmp_path / "retrain" / "run-0001"
    export.mkdir(parents=True)
    (export / "sft_train.jsonl").write_text(
        json.dumps({"messages": [{"role": "user", "content": secret}, {"role": "assistant", "content": correction}]})
        + "\n" + json.dumps({"messages": [{"role": "user", "content": "how are you"}]}) + "\n"
    )  # fmt: skip
    (export / "nlu.yml").write_text(f"nlu:\n- intent: chitchat\n  examples: |\n    - {secret}\n    - hello\n")
    report = tmp_path / "reports" / "retrain-0001"
    report.mkdir(parents=True)
    (report / "report.md").write_text(f"| sample | {correction} |\n| other | hello there |\n")
    assert counts(app, "ana") == {"conversations": 1, "messages": 2, "feedback": 1, "labels": 1}

    refused = await app.http.delete("/api/senders/ana")
    assert refused.status_code == 401  # the admin API only
    erased = await app.http.delete("/api/senders/ana", headers=ADMIN)
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert (body["conversations"], body["messages"], body["feedback"], body["labels"]) == (1, 2, 1, 1)
    assert counts(app, "ana") == {"conversations": 0, "messages": 0, "feedback": 0, "labels": 0}
    assert counts(app, "bob")["messages"] == 2
    sft = (export / "sft_train.jsonl").read_text()
    assert secret not in sft and correction not in sft and "how are you" in sft
    nlu = (export / "nlu.yml").read_text()
    assert secret not in nlu and "- hello" in nlu
    assert (report / "report.md").read_text() == "| sample | [forgotten] |\n| other | hello there |\n"
    assert sorted(Path(p).name for p in body["files"]) == ["nlu.yml", "report.md", "sft_train.jsonl"]

    again = await app.http.delete("/api/senders/ana", headers=ADMIN)
    assert again.status_code == 404 and "nothing was erased" in again.json()["message"]
    # the sender can talk again: the cached conversation id of the erased conversation is not reused
    await talk(app, "ana", "hello")
    assert counts(app, "ana")["messages"] == 2


async def test_another_replica_with_a_stale_cache_starts_a_new_conversation(app: App) -> None:
    await talk(app, "cy", "hello")
    store = app.app.state.store
    from assistant.store.purge import forget

    await store.transaction(lambda conn: forget(conn, "cy"))  # as another replica would: this cache still has it
    await talk(app, "cy", "hello again")
    assert counts(app, "cy") == {"conversations": 1, "messages": 2, "feedback": 0, "labels": 0}


async def test_retention_deletes_old_turns_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    settings = settings_for(tmp_path, retention_days=30)
    async with start(settings) as app:
        old_user, old_bot = await talk(app, "old", "an old question about my parcel 4711")
        await talk(app, "mixed", "first")
        mixed_old = app.turn("mixed")
        await talk(app, "mixed", "second")
        store = app.app.state.store
        long_ago = datetime.now(UTC) - timedelta(days=40)
        messages = Message.__table__
        ids = [old_user, old_bot, mixed_old[0]["id"]]  # a user message older than the limit, its reply newer
        await store.transaction(
            lambda conn: conn.execute(update(messages).where(messages.c.id.in_(ids)).values(created_at=long_ago))
        )
        from sqlalchemy import text

        await store.transaction(lambda conn: conn.execute(
            text("UPDATE conversations SET updated_at = :t WHERE sender_id = 'old'"), {"t": long_ago}
        ))  # fmt: skip
        erased = await RetentionWorker(settings, store).run_once()
        assert erased.messages == 4 and erased.conversations == 1  # both turns; "old" is left empty
        assert counts(app, "old")["conversations"] == 0
        assert [r["text"] for r in app.rows(
            "SELECT m.text FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.sender_id = 'mixed'"
            " AND m.role = 'user'")] == ["second"]  # fmt: skip
        await talk(app, "old", "back again")  # its conversation was deleted: a new one starts


def test_the_cli_forgets_with_a_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["forget", "nobody", "--channel", "rest"])
    assert result.exit_code == 1 and "no conversation of 'nobody' on rest is stored" in " ".join(result.output.split())


def test_scrubbing_leaves_short_texts_inside_other_lines_alone(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("hi there, hi\n- hi\n")
    assert scrub_files([tmp_path], ["hi"]) == [tmp_path / "a.md"]
    assert (tmp_path / "a.md").read_text() == "hi there, hi\n"
