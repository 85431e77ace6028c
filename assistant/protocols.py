"""The small typed contracts every backend plugin implements, and the values that cross them.

A plugin is a class registered under one of the entry-point groups below and built as ``cls(settings)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from fastapi import APIRouter

    from assistant.store.outbox import Pending

CHANNELS = "assistant.channels"
NLU_BACKENDS = "assistant.nlu"
LLM_BACKENDS = "assistant.llm"
ACTIONS = "assistant.actions"


class BackendUnavailable(Exception):
    """A backend is down, timed out or answered with an error; the pipeline falls back."""


@dataclass(frozen=True)
class IntentScore:
    name: str
    confidence: float


@dataclass(frozen=True)
class ParseResult:
    """What the NLU made of one message (Rasa's /model/parse, typed)."""

    intent: IntentScore | None
    ranking: list[IntentScore]
    entities: list[dict[str, Any]]
    model: str | None = None


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str = ""


@runtime_checkable
class NLUBackend(Protocol):
    async def parse(self, text: str) -> ParseResult:
        """Classify ``text``; raise BackendUnavailable when it cannot."""
        ...

    async def health(self) -> Health: ...

    def use_url(self, url: str | None) -> None:
        """Parse with another server of the same kind from now on (None: the configured one again).

        A hot-swap sends parses to a stand-in while the main server loads a new model."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@runtime_checkable
class LLMBackend(Protocol):
    def stream(self, messages: list[ChatMessage], model: str, usage: Usage) -> AsyncIterator[str]:
        """Yield the reply's text pieces as they are generated and fill ``usage`` at the end;
        raise BackendUnavailable when the model cannot answer."""
        ...

    async def health(self) -> Health: ...

    async def models(self) -> list[str]:
        """Names the server answers to: the base model and each loaded adapter."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class ActionContext:
    sender: str
    text: str
    intent: str
    entities: list[dict[str, Any]]
    slots: dict[str, Any]


@dataclass
class ActionResult:
    text: str
    slots: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Action(Protocol):
    """Code that answers an intent (registered as ``action_<intent>``)."""

    async def run(self, context: ActionContext) -> ActionResult: ...


@runtime_checkable
class Channel(Protocol):
    """Where messages come from: an HTTP router whose endpoints feed the turn pipeline
    (``assistant.app.get_pipeline``). Built as ``cls(settings)``; options from ``settings.channel_options``."""

    name: str

    def router(self) -> APIRouter: ...


class DeliveryFailed(Exception):
    """A reply could not be delivered. ``retry_after``: the platform said when to try again;
    ``permanent``: trying again cannot help (the chat is gone, the token is wrong)."""

    def __init__(self, message: str, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


@runtime_checkable
class DeliveringChannel(Channel, Protocol):
    """A channel that answers out of band (Slack, Telegram, REST callbacks): its replies go through the
    outbox and the delivery worker calls ``deliver`` until it returns, with the same ``reply.key`` each time.
    ``reply.state`` may be updated to remember progress (e.g. parts of a long message already sent)."""

    async def deliver(self, reply: Pending) -> None: ...

    async def aclose(self) -> None: ...
