"""Backends, channels and actions are found through Python entry points."""

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
