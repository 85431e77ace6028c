"""`assistant kb` and `assistant eval kb` refuse bad input with a sentence and exit code 1 (no encoder or LLM
needed to say so)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from wiring.cli import app


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASSISTANT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    return CliRunner()


def said(result: object) -> str:
    return " ".join(str(getattr(result, "output", "")).split())  # Rich wraps long sentences


def test_a_missing_file_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["kb", "add", str(tmp_path / "nowhere.md")])
    assert result.exit_code == 1 and "nowhere.md does not exist" in said(result)


def test_an_unsupported_type_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "prices.xlsx").write_bytes(b"PK\x03\x04")
    result = cli.invoke(app, ["kb", "add", str(tmp_path / "prices.xlsx")])
    assert result.exit_code == 1
    assert (
        "prices.xlsx: unsupported type .xlsx; the knowledge base reads .htm, .html, .markdown, .md, .pdf, .txt"
        in said(result)
    )


def test_an_empty_knowledge_base_is_said_so(cli: CliRunner, tmp_path: Path) -> None:
    for command in (["kb", "search", "do you ship to Norway?"], ["kb", "reindex"]):
        result = cli.invoke(app, command)
        assert result.exit_code == 1 and "the knowledge base is empty: add documents with" in said(result), command
    listed = cli.invoke(app, ["kb", "list"])
    assert listed.exit_code == 0 and "the knowledge base is empty" in said(listed)
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"id": "1", "question": "do you ship to Norway?", "answerable": true, "gold_passages": ["a"]}\n')
    result = cli.invoke(app, ["eval", "kb", "--data", str(qa), "--retrieval-only"])
    assert result.exit_code == 1 and "the knowledge base is empty" in said(result)


def test_bad_questions_and_unknown_documents_are_refused(cli: CliRunner, tmp_path: Path) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"id": "1", "answerable": true}\n')
    result = cli.invoke(app, ["eval", "kb", "--data", str(qa)])
    assert result.exit_code == 1 and "qa.jsonl, line 1: a JSON object with at least `question`" in said(result)
    result = cli.invoke(app, ["eval", "kb", "--data", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 1 and "none.jsonl does not exist" in said(result)
    result = cli.invoke(app, ["kb", "remove", "shipping.md"])
    assert result.exit_code == 1 and "the knowledge base has no document 'shipping.md'" in said(result)
    result = cli.invoke(app, ["kb", "search", "  "])
    assert result.exit_code == 1 and "the query is empty" in said(result)


def test_calibration_refuses_unknown_modes_and_sets_without_both_kinds_of_question(
    cli: CliRunner, tmp_path: Path
) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"id": "1", "question": "do you ship to Norway?", "answerable": true, "gold_passages": ["a"]}\n')
    result = cli.invoke(app, ["eval", "kb", "--data", str(qa), "--calibrate", "--modes", "extract,guess"])
    assert result.exit_code == 1 and "unknown answer mode guess: use extract, generate or hybrid" in said(result)
    result = cli.invoke(app, ["eval", "kb", "--data", str(qa), "--calibrate"])
    assert result.exit_code == 1 and "needs answerable and unanswerable questions to calibrate" in said(result)
