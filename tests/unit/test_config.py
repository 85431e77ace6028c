"""The settings (assistant/config.py): sources, generated secrets, and what cannot be read said in a sentence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assistant.config import Settings
from wiring.cli import app as real_app


def test_up_generates_the_servers_secrets_once_and_every_command_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant.config import Settings

    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    monkeypatch.delenv("ASSISTANT_RASA__TOKEN", raising=False)
    monkeypatch.delenv("ASSISTANT_VLLM__API_KEY", raising=False)
    settings = Settings(data_dir=tmp_path)
    assert settings.rasa.token is None and settings.vllm.api_key == "EMPTY"
    settings.generate_server_secrets()
    token, key = settings.rasa.token, settings.vllm.api_key
    assert token and len(token) >= 32 and key and key != "EMPTY"
    assert (tmp_path / "run" / "rasa-token").stat().st_mode & 0o777 == 0o600
    import os

    assert os.environ["ASSISTANT_RASA__TOKEN"] == token  # for the app `up` starts
    monkeypatch.delenv("ASSISTANT_RASA__TOKEN")
    monkeypatch.delenv("ASSISTANT_VLLM__API_KEY")
    again = Settings(data_dir=tmp_path)  # another command on the same data folder
    assert (again.rasa.token, again.vllm.api_key) == (token, key)
    again.generate_server_secrets()
    assert again.rasa.token == token  # not regenerated
    external = Settings(data_dir=tmp_path, rasa={"managed": False})
    assert external.rasa.token is None  # a server `up` does not start keeps its own settings


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


def test_a_rasa_projects_credentials_switch_its_channels_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As in Rasa: the bot's credentials.yml is read (no credentials_file set), a section of one of our channels
    switches it on unless `channels` is set, and Rasa's option names are understood."""
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    monkeypatch.chdir(tmp_path)
    bot = tmp_path / "bot"
    bot.mkdir()
    (bot / "credentials.yml").write_text(
        "rest:\nsocketio:\n  session_persistence: true\nrasa:\n  url: http://localhost:5002/api\n"
        "slack:\n  slack_token: xoxb-rasa-named\n  slack_signing_secret: a-signing-secret-from-rasa\n"
    )
    settings = Settings(bot_dir=bot)
    assert settings.credentials_path == bot / "credentials.yml"
    assert settings.channels == ["rest", "web", "socketio", "slack"]  # `rasa:` is not a channel
    from plugins.channels.options import channel_options
    from plugins.channels.slack import SlackOptions

    options = channel_options(settings, "slack", SlackOptions)
    assert options.bot_token.get_secret_value() == "xoxb-rasa-named"
    assert options.signing_secret.get_secret_value() == "a-signing-secret-from-rasa"
    assert Settings(bot_dir=bot, channels=["rest"]).channels == ["rest"]  # set: as given
    assert Settings(bot_dir=tmp_path / "elsewhere").channels == ["rest", "web"]  # no credentials: the default
