"""Backends, channels and actions are found through Python entry points."""

import pytest

from assistant import plugins
from assistant.protocols import ACTIONS, CHANNELS, LLM_BACKENDS, NLU_BACKENDS, Action, Channel


def test_builtin_plugins_are_registered() -> None:
    assert "rest" in plugins.available(CHANNELS)
    assert "rasa" in plugins.available(NLU_BACKENDS)
    assert "openai" in plugins.available(LLM_BACKENDS)
    assert {"action_order_status", "action_opening_hours"} <= plugins.available(ACTIONS).keys()


def test_plugins_implement_their_protocols() -> None:
    from assistant.config import Settings

    settings = Settings()
    assert isinstance(plugins.load(CHANNELS, "rest")(settings), Channel)
    for cls in plugins.load_all(ACTIONS).values():
        assert isinstance(cls(settings), Action)


def test_unknown_plugin_names_what_is_installed() -> None:
    with pytest.raises(plugins.PluginNotFound, match=r"no plugin named 'nope' in assistant.nlu \(installed: .*rasa"):
        plugins.load(NLU_BACKENDS, "nope")
