"""Plugins written against earlier releases (see ``compat``): the app factory builds every plugin through these,
so an old one still runs, with a DeprecationWarning that says what to change."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

from fastapi import Request

from assistant.config import Settings
from assistant.contracts import Channel, ServingState
from assistant.turn.pipeline import TurnPipeline


def get_pipeline(request: Request) -> TurnPipeline:
    """Deprecated: channels get the turn API as ``router(turns)``. Kept for channel plugins written against
    earlier releases, which took the pipeline as a FastAPI dependency."""
    return request.app.state.pipeline


def _takes(function: Callable[..., Any], count: int) -> bool:
    """Whether ``function`` accepts ``count`` positional arguments."""
    try:
        inspect.signature(function).bind(*([None] * count))
    except TypeError:
        return False
    return True


def backend(make: Callable[..., Any], settings: Settings, serving: ServingState) -> Any:
    """An NLU or LLM backend, built as ``cls(settings, serving)``; plugins written before the serving state existed
    take only the settings (and are told to update)."""
    if _takes(make, 2):
        return make(settings, serving)
    warnings.warn(
        f"{getattr(make, '__name__', make)} takes only settings: backends are built as cls(settings, serving)",
        DeprecationWarning,
        stacklevel=2,
    )
    return make(settings)


class _WithoutSampling:
    """An LLM backend written before `Generation` existed: its stream takes no sampling settings, so the
    configured ones (and the evaluation's seed) do not reach it."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def stream(self, messages: Any, model: str, usage: Any, generation: Any = None) -> Any:
        return self.backend.stream(messages, model, usage)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)


def llm(backend: Any) -> Any:
    if _takes(backend.stream, 4):
        return backend
    warnings.warn(
        f"{type(backend).__name__}.stream() takes no sampling settings: LLM backends get stream(messages, model, "
        "usage, generation)",
        DeprecationWarning,
        stacklevel=2,
    )
    return _WithoutSampling(backend)


def router(channel: Channel, turns: Any) -> Any:
    """The channel's routes, handed the turn API; channels written before it existed take nothing (and use the
    deprecated `get_pipeline` dependency)."""
    if _takes(channel.router, 1):
        return channel.router(turns)
    warnings.warn(
        f"the {channel.name} channel's router() takes no turn API: channels are given it as router(turns)",
        DeprecationWarning,
        stacklevel=2,
    )
    return channel.router()  # type: ignore[call-arg]
