"""Finds plugins by name among the installed Python entry points (see assistant.contracts for the groups)."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from assistant.contracts import AssistantError


class PluginNotFound(AssistantError, LookupError):
    pass


def available(group: str) -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=group)}


def load(group: str, name: str) -> Any:
    """The class registered as ``name`` in ``group``."""
    found = available(group)
    if name not in found:
        installed = ", ".join(sorted(found)) or "none"
        raise PluginNotFound(f"no plugin named {name!r} in {group} (installed: {installed})")
    return found[name].load()


def load_all(group: str) -> dict[str, Any]:
    return {name: ep.load() for name, ep in available(group).items()}
