"""Channel options (plugins/channels/options.py): from the credentials file and the environment, or a sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.infra import entry_points
from plugins.channels.options import ChannelConfigError
from wiring.app import create_app


def test_channel_options_from_credentials_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = tmp_path / "credentials.yml"
    credentials.write_text('slack:\n  bot_token: "${MY_SLACK_TOKEN}"\n  signing_secret: from-file\n')
    monkeypatch.setenv("MY_SLACK_TOKEN", "xoxb-from-env")
    monkeypatch.setenv("ASSISTANT_CHANNEL__SLACK__SIGNING_SECRET", "from-variable")
    settings = Settings(credentials_file=credentials)
    assert settings.channel_options("slack") == {"bot_token": "xoxb-from-env", "signing_secret": "from-variable"}


def test_enabled_channel_without_its_secrets_fails_with_a_sentence() -> None:
    with pytest.raises(ChannelConfigError, match=r"the slack channel is enabled but .*bot_token: Field required"):
        create_app(Settings(channels=["rest", "slack"], credentials_file=Path("/nonexistent.yml")))
    with pytest.raises(entry_points.PluginNotFound, match="channels not installed: carrier-pigeon"):
        create_app(Settings(channels=["rest", "carrier-pigeon"]))
