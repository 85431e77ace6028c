"""Backends, channels and actions are found through Python entry points."""

from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.contracts import (
    ACTIONS,
    CHANNELS,
    LLM_BACKENDS,
    NLU_BACKENDS,
    SERVERS,
    Action,
    Channel,
    DeliveringChannel,
    LLMBackend,
    ModelKind,
    ModelServer,
    NLUBackend,
    NLUTrainer,
    ServingState,
)
from assistant.infra import entry_points
from plugins.channels.options import ChannelConfigError
from wiring.app import create_app


def test_builtin_plugins_are_registered() -> None:
    assert {"rest", "web", "slack", "telegram", "callback"} <= entry_points.available(CHANNELS).keys()
    assert "rasa" in entry_points.available(NLU_BACKENDS)
    assert "openai" in entry_points.available(LLM_BACKENDS)
    assert {"rasa", "vllm", "openai"} <= entry_points.available(SERVERS).keys()
    assert {"action_order_status", "action_opening_hours"} <= entry_points.available(ACTIONS).keys()


def test_plugins_implement_their_protocols() -> None:
    settings = Settings(
        channel={
            "slack": {"bot_token": "xoxb-1", "signing_secret": "s"},
            "telegram": {"token": "1:a", "secret_token": "t"},
            "callback": {"url": "http://127.0.0.1:9/replies", "secret": "s"},
        }
    )
    for name in ("rest", "web"):
        channel = entry_points.load(CHANNELS, name)(settings)
        assert isinstance(channel, Channel) and not isinstance(channel, DeliveringChannel)
    for name in ("slack", "telegram", "callback"):
        assert isinstance(entry_points.load(CHANNELS, name)(settings), DeliveringChannel)
    for cls in entry_points.load_all(ACTIONS).values():
        assert isinstance(cls(settings), Action)
    servers = {name: entry_points.load(SERVERS, name)(settings) for name in ("rasa", "vllm", "openai")}
    assert all(isinstance(server, ModelServer) for server in servers.values())
    assert isinstance(servers["rasa"], NLUTrainer) and servers["rasa"].kind == ModelKind.NLU
    assert servers["vllm"].serves_versions and not servers["openai"].serves_versions
    serving = ServingState(llm_model="base")
    assert isinstance(entry_points.load(NLU_BACKENDS, "rasa")(settings, serving), NLUBackend)
    assert isinstance(entry_points.load(LLM_BACKENDS, "openai")(settings, serving), LLMBackend)


def test_unknown_plugin_names_what_is_installed() -> None:
    with pytest.raises(
        entry_points.PluginNotFound, match=r"no plugin named 'nope' in assistant.nlu \(installed: .*rasa"
    ):
        entry_points.load(NLU_BACKENDS, "nope")


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
