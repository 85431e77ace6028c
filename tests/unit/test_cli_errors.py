"""Known errors end a command with their sentence and exit code 1; anything else is a bug and keeps its
traceback; --debug shows the traceback for both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from assistant.config import Settings
from assistant.contracts import AssistantError
from wiring.cli import app as real_app
from wiring.cli.context import DEBUG, command

app = typer.Typer()


@command(app, "known")
def known() -> None:
    raise AssistantError("the model file of nlu-0003 is gone")


@command(app, "bug")
def bug() -> None:
    raise ZeroDivisionError("a bug")


def test_known_errors_are_a_sentence_and_exit_1() -> None:
    result = CliRunner().invoke(app, ["known"])
    assert result.exit_code == 1
    assert "error: the model file of nlu-0003 is gone" in result.output and "Traceback" not in result.output


def test_bugs_keep_their_traceback() -> None:
    result = CliRunner().invoke(app, ["bug"])
    assert result.exit_code == 1 and isinstance(result.exception, ZeroDivisionError)


def test_debug_shows_the_traceback_of_known_errors_too() -> None:
    DEBUG["on"] = True
    try:
        result = CliRunner().invoke(app, ["known"])
    finally:
        DEBUG["on"] = False
    assert isinstance(result.exception, AssistantError)


def test_the_real_cli_takes_debug_and_refuses_bad_options_with_a_sentence() -> None:
    assert "--debug" in CliRunner().invoke(real_app, ["--help"]).output
    result = CliRunner().invoke(real_app, ["models", "rollback", "everything"])
    assert result.exit_code == 1 and "cannot roll back 'everything': choose nlu or llm" in result.output


def test_serve_refuses_placeholder_and_short_secrets_outside_dev_mode(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASSISTANT_ADMIN_TOKEN", "change-me-three")
    monkeypatch.setenv("ASSISTANT_RASA__TOKEN", "short")
    monkeypatch.setenv("ASSISTANT_CHANNELS", '["rest", "callback"]')
    monkeypatch.setenv("ASSISTANT_CHANNEL__CALLBACK__URL", "http://127.0.0.1:9/replies")
    monkeypatch.setenv("ASSISTANT_CHANNEL__CALLBACK__SECRET", "a-long-and-random-callback-secret")
    for name in ("serve", "up"):
        result = CliRunner().invoke(real_app, [name])
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        said = " ".join(result.output.split())
        assert "refusing to start: admin_token, rasa.token are placeholders or shorter than 16" in said, said
        assert "callback" not in said
    monkeypatch.setenv("ASSISTANT_DEV_MODE", "true")
    assert Settings().weak_secrets() == ["admin_token", "rasa.token"]  # dev mode: allowed, still known
    from wiring.app import create_app

    create_app(Settings())  # builds


def test_unreadable_settings_are_a_sentence(tmp_path: Path, monkeypatch: Any) -> None:
    """A settings file or the bot's credentials.yml that is not YAML, or a value of the wrong kind: every command
    says so in a sentence and exits 1."""
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path))
    broken = tmp_path / "assistant.yml"
    broken.write_text("channels: [rest,\n")
    monkeypatch.setenv("ASSISTANT_CONFIG", str(broken))
    for args in (["status"], ["db", "upgrade"], ["kb", "list"], ["models", "list"]):
        result = CliRunner().invoke(real_app, args)
        said = " ".join(result.output.split())
        assert result.exit_code == 1 and "a settings file is not valid YAML" in said, (args, result.output)
        assert "Traceback" not in result.output

    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    bot = tmp_path / "bot"
    bot.mkdir()
    (bot / "credentials.yml").write_text("socketio: [\n")
    monkeypatch.setenv("ASSISTANT_BOT_DIR", str(bot))
    result = CliRunner().invoke(real_app, ["status"])
    said = "".join(result.output.split())  # the path may be wrapped anywhere
    assert result.exit_code == 1 and f"{bot}/credentials.ymlisnotvalidYAML" in said, result.output

    monkeypatch.delenv("ASSISTANT_BOT_DIR")
    monkeypatch.setenv("ASSISTANT_PORT", "eighty")
    result = CliRunner().invoke(real_app, ["status"])
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and "the settings are wrong (port: Input should be a valid integer" in said, said
