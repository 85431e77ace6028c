"""The bottom layer: the typed contracts every backend plugin implements, the values that cross them, and the
project's one base exception. It imports nothing from the project, so anything may import it.

Plugins are classes registered under the entry-point groups below:

* ``assistant.channels``: ``cls(settings)``, a `Channel` (or `DeliveringChannel`);
* ``assistant.nlu`` / ``assistant.llm``: ``cls(settings, serving)``, an `NLUBackend` / `LLMBackend`;
* ``assistant.servers``: ``cls(settings)``, a `ModelServer` (how a model server is launched and what it serves);
  the NLU server also implements `NLUTrainer`;
* ``assistant.actions``: ``cls(settings)``, an `Action`;
* ``assistant.embedders``: ``cls(settings)``, an `Embedder` (the knowledge base's sentence vectors).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from fastapi import APIRouter

CHANNELS = "assistant.channels"
NLU_BACKENDS = "assistant.nlu"
LLM_BACKENDS = "assistant.llm"
SERVERS = "assistant.servers"
ACTIONS = "assistant.actions"
EMBEDDERS = "assistant.embedders"


# ---------------------------------------------------------------- errors


class AssistantError(Exception):
    """Base of every error this project raises on purpose: its message is a sentence for the user (the CLI
    prints it and exits 1). Anything else is a bug and keeps its traceback."""


class BackendUnavailable(AssistantError):
    """A backend is down, timed out or answered with an error; the pipeline falls back."""


class InsecureSettings(AssistantError):
    """A secret is a placeholder or too short, outside ``dev_mode``: the app does not start."""


class NotSupported(AssistantError):
    """The configured backend cannot do what was asked (e.g. an LLM server that cannot load adapters)."""


class DeliveryFailed(AssistantError):
    """A reply could not be delivered. ``retry_after``: the platform said when to try again;
    ``permanent``: trying again cannot help (the chat is gone, the token is wrong)."""

    def __init__(self, message: str, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


# ---------------------------------------------------------------- names


class Role(enum.StrEnum):
    """Who wrote a stored message."""

    USER = "user"
    BOT = "bot"


class Route(enum.StrEnum):
    """Who answers a turn."""

    INTENT = "intent"
    LLM = "llm"


class Reason(enum.StrEnum):
    """Why the router (or the pipeline after it) chose the route."""

    CONFIDENT = "confident"
    LLM_INTENT = "llm_intent"
    LOW_CONFIDENCE = "low_confidence"
    AMBIGUOUS = "ambiguous"
    NO_INTENT = "no_intent"
    NLU_UNAVAILABLE = "nlu_unavailable"
    NO_RESPONSE = "no_response"
    ACTION_FAILED = "action_failed"
    LLM_UNAVAILABLE = "llm_unavailable"
    LLM_EMPTY = "llm_empty"
    CRISIS = "crisis"  # the message spoke of self-harm: the configured crisis reply, no LLM
    GROUNDED = "grounded"  # answered from the knowledge base's passages, with citations
    QUOTED = "quoted"  # the passage's sentences closest to the question, quoted with the source (kb.answer)
    NO_EVIDENCE = "no_evidence"  # an open question the knowledge base has nothing on: the abstain reply
    UNSUPPORTED = "unsupported"  # the LLM's answer was not supported by the passages: the abstain reply
    LOW_SELECTION = "low_selection"  # a retrieval intent whose selected response is not confident enough
    ANNOTATED = "annotated"  # close to a question a reviewer wrote the answer to: that answer, no LLM
    SMALL_TALK = "small_talk"  # unsure or out of scope, but it reads as small talk: the LLM, not the documents


class FeedbackSource(enum.StrEnum):
    """Who gave a piece of feedback: only reviewers and trusted channels are trusted without review."""

    REVIEWER = "reviewer"  # the admin API or the CLI (authenticated)
    TRUSTED = "trusted"  # a channel in feedback.trusted_channels (its users are staff)
    ANONYMOUS = "anonymous"  # any other channel user


class ReviewStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # from a reviewer or a trusted channel: training data as given
    PENDING = "pending"  # anonymous: a signal, waiting for a reviewer
    APPROVED = "approved"  # a reviewer approved it (maybe with an edited correction): training data
    REJECTED = "rejected"


class ModelKind(enum.StrEnum):
    NLU = "nlu"
    LLM = "llm"


class ModelStatus(enum.StrEnum):
    """A registered model version's life: training -> candidate -> active, or rejected / failed; retired
    when another version took over."""

    TRAINING = "training"
    CANDIDATE = "candidate"
    ACTIVE = "active"
    RETIRED = "retired"
    REJECTED = "rejected"
    FAILED = "failed"


# ---------------------------------------------------------------- NLU


@dataclass(frozen=True)
class IntentScore:
    name: str
    confidence: float


@dataclass(frozen=True)
class ParseResult:
    """What the NLU made of one message."""

    intent: IntentScore | None
    ranking: list[IntentScore]
    entities: list[dict[str, Any]]
    model: str | None = None
    # a retrieval intent's selected response key (Rasa's ResponseSelector), e.g. "chitchat/ask_weather"
    retrieval: IntentScore | None = None

    @property
    def label(self) -> IntentScore | None:
        """The intent as training data names it: for a retrieval intent its selected key (``faq/ask_x``), as sure
        as the less sure of the two choices; what the log stores, so auto-labelled turns train the right key."""
        top, selected = self.intent, self.retrieval
        if top is not None and selected is not None and selected.name.startswith(f"{top.name}/"):
            return IntentScore(selected.name, min(top.confidence, selected.confidence))
        return top


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str = ""


@dataclass
class ServingState:
    """What the app serves right now, shared by the pipeline, the backends and the model watcher (one object
    the app owns). ``llm_model``: the name the LLM answers to (base model or adapter); ``nlu_endpoint``: where
    the NLU server that should parse is (None: the configured one; set while the main server loads a model)."""

    llm_model: str
    nlu_endpoint: str | None = None


@runtime_checkable
class NLUBackend(Protocol):
    async def parse(self, text: str) -> ParseResult:
        """Classify ``text`` (with the server ``ServingState.nlu_endpoint`` names); raise BackendUnavailable
        when it cannot."""
        ...

    async def health(self) -> Health: ...

    async def aclose(self) -> None: ...


# ---------------------------------------------------------------- LLM


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Generation:
    """How a reply is sampled; recorded on every LLM turn. ``seed`` fixes sampling (the evaluation uses it)."""

    max_tokens: int = 64
    temperature: float = 0.7
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@runtime_checkable
class LLMBackend(Protocol):
    def stream(
        self, messages: list[ChatMessage], model: str, usage: Usage, generation: Generation | None = None
    ) -> AsyncIterator[str]:
        """Yield the reply's text pieces as they are generated and fill ``usage`` at the end;
        raise BackendUnavailable when the model cannot answer."""
        ...

    async def health(self) -> Health: ...

    async def models(self) -> list[str]:
        """Names the server answers to: the base model and each loaded adapter."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class TokenCounter(Protocol):
    """An LLM backend that can count a prompt's tokens with the served model's own tokenizer."""

    async def count_tokens(self, messages: list[ChatMessage], model: str) -> int | None:
        """Tokens of the prompt as the model sees it (chat template included); None when it cannot tell."""
        ...


# ---------------------------------------------------------------- model servers


@dataclass(frozen=True)
class ServiceSpec:
    """How to start one server process and how to tell that it is ready (`assistant up`, stand-ins)."""

    name: str
    command: list[str]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    startup_timeout_s: float = 300.0
    ready: Callable[[Any], bool] | None = None  # given the health response; default: HTTP 200


@dataclass(frozen=True)
class ModelVersion:
    """A registered version as a server needs it: its name and its files."""

    version: str
    path: Path


class Reroute(Protocol):
    """Handed to `ModelServer.serve`: send every app's NLU parses to ``endpoint`` (None: back to the configured
    server) and return once they all have switched."""

    def __call__(self, endpoint: str | None) -> Awaitable[None]: ...


@runtime_checkable
class ModelServer(Protocol):
    """A server that serves model versions (Rasa for the NLU, vLLM for the LLM): how `assistant up` launches
    it, health, what it serves, and switching it to another version without downtime."""

    kind: ModelKind
    serves_versions: bool  # False: it serves one fixed model (an OpenAI-compatible server without LoRA)

    def launch(self, model: Path | None) -> ServiceSpec | None:
        """The process `assistant up` starts, serving ``model`` (None: its base model); None when this server is
        not managed here (it already runs somewhere)."""
        ...

    async def health(self) -> Health: ...

    async def serves(self, version: ModelVersion) -> bool:
        """Whether the running server serves ``version`` now (False when it is down)."""
        ...

    async def serve(self, version: ModelVersion | None, reroute: Reroute) -> None:
        """Make the running server serve ``version`` (None: its base model) with no failed request; raise
        NotSupported when it cannot serve versions. A server that is down loads it when it starts."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class TrainedModel:
    path: Path
    mode: Literal["finetune", "full"]
    config_hash: str
    note: str = ""


@dataclass(frozen=True)
class Example:
    """One labelled message of an evaluation set."""

    text: str
    intent: str


Progress = Callable[[int, int, str], None]  # (done, total, what)


@runtime_checkable
class NLUTrainer(Protocol):
    """Trains NLU model versions and classifies with any of them (the Rasa plugin: real `rasa train`)."""

    def bot_model(self, force: bool, on_progress: Progress | None = None) -> tuple[Path, str, str]:
        """The bot's own model trained from its folder (skipped when already trained): (path, data hash,
        config hash)."""
        ...

    def train(
        self,
        data: Path,
        name: str,
        parent: ModelVersion | None,
        parent_config_hash: str | None,
        epochs: int | None,
        on_progress: Progress,
    ) -> TrainedModel:
        """Train a candidate on ``data`` (fine-tuned from ``parent`` when the pipeline is unchanged)."""
        ...

    def evaluating(
        self, model: Path | None = None, endpoint: str | None = None
    ) -> AbstractAsyncContextManager[NLUBackend]:
        """Classify with ``model`` (None: the served one), or with the server at ``endpoint``, for as long as the
        context lasts."""
        ...

    async def aclose(self) -> None:
        """Stop whatever classifying or swapping started (stand-in servers)."""
        ...


# ---------------------------------------------------------------- actions


@dataclass(frozen=True)
class ActionContext:
    sender: str
    text: str
    intent: str
    entities: list[dict[str, Any]]
    slots: dict[str, Any]
    channel: str = ""
    confidence: float | None = None


@dataclass
class ActionResult:
    text: str
    slots: dict[str, Any] = field(default_factory=dict)
    rich: RichResponse | None = None  # buttons, image, ... (an action server's responses carry them)


@runtime_checkable
class Action(Protocol):
    """Code that answers an intent (registered as ``action_<intent>``)."""

    async def run(self, context: ActionContext) -> ActionResult: ...


# ---------------------------------------------------------------- turns, as channels see them


@dataclass(frozen=True)
class IncomingMessage:
    channel: str
    sender: str
    text: str
    metadata: dict[str, Any] | None = None
    external_id: str | None = None  # the channel's own id (Slack event, Telegram update): stored once


@dataclass(frozen=True)
class Accepted:
    """A stored user message waiting for its reply."""

    conversation_id: int
    message_id: int
    slots: dict[str, Any]


@dataclass(frozen=True)
class RichResponse:
    """What a templated response has beyond its text, in Rasa's response fields: ``buttons`` (``{"title",
    "payload"}``; a payload like ``/intent{"entity": "value"}`` is taken without the NLU), an ``image`` URL, an
    ``attachment`` and a ``custom`` payload. Channels render each in their own way."""

    buttons: list[dict[str, Any]] = field(default_factory=list)
    image: str | None = None
    attachment: Any = None
    custom: dict[str, Any] | None = None

    @property
    def empty(self) -> bool:
        return not (self.buttons or self.image or self.attachment or self.custom)

    def stored(self) -> dict[str, Any]:
        """As kept on the reply's row (``metadata.response``)."""
        return {k: v for k, v in asdict(self).items() if v}

    @classmethod
    def from_stored(cls, value: dict[str, Any] | None) -> RichResponse | None:
        if not value:
            return None
        known = {k: value[k] for k in ("buttons", "image", "attachment", "custom") if k in value}
        return cls(**known)


@dataclass(frozen=True)
class BotReply:
    """The stored reply, as channels see it."""

    message_id: int
    user_message_id: int
    text: str
    route: Route
    reason: Reason
    intent: str | None
    confidence: float | None
    model: str | None
    latency_ms: float
    citations: list[Citation] = field(default_factory=list)
    rich: RichResponse | None = None  # a templated response's buttons, image, attachment, custom payload


@dataclass(frozen=True)
class HistoryItem:
    """One message of a conversation as a channel shows it again (the web widget after a reload)."""

    id: int
    role: Role
    text: str
    route: str | None
    rating: str | None
    at: str  # ISO 8601
    citations: list[Citation] = field(default_factory=list)  # a reply from the knowledge base: its sources
    rich: RichResponse | None = None  # a templated response's buttons and image, shown again


class DuplicateMessage(AssistantError):
    """This external id (a platform's event or update id) was stored before: the message is not taken again."""


class MessageNotFound(AssistantError, LookupError):
    """No message has this id (or it belongs to another conversation)."""


class AnnotationNotFound(MessageNotFound):
    """No annotation has this id (HTTP 404, as a message that is not there)."""


class FeedbackLimit(AssistantError):
    """A channel user gave more feedback than ``feedback.max_per_sender`` allows (HTTP 429)."""


class FeedbackTooLong(AssistantError, ValueError):
    """A channel user's suggested reply is longer than ``feedback.max_correction_chars`` (HTTP 422)."""


class NothingToReview(AssistantError, LookupError):
    """The message has no feedback waiting for review (HTTP 409)."""


class Refused(AssistantError):
    """A synchronous turn refused before its message is stored; ``retry_after_s``: when trying again is likely
    to work (the ``Retry-After`` header)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Overloaded(Refused):
    """Too many turns are waiting for a backend (HTTP 503)."""


class InvalidInput(AssistantError, ValueError):
    """A message a channel must not take: not storable text, too long, metadata too big or too deep (HTTP
    ``status``: 413 for sizes, else 422). Nothing is stored."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class RateLimited(Refused):
    """One sender or client address sent more than its share (HTTP 429)."""


class WrongMessageKind(AssistantError, ValueError):
    """The message exists but is not the kind the operation needs (feedback goes on bot replies)."""


class Turns(Protocol):
    """The turn API a channel is given (as Rasa gives its input channels ``on_new_message``)."""

    def run(self, message: IncomingMessage) -> AsyncIterator[str | BotReply]:
        """One turn: the LLM's text pieces as they come, then the stored reply."""
        ...

    async def respond(self, message: IncomingMessage) -> BotReply:
        """One turn, only the final reply."""
        ...

    async def admit(self, message: IncomingMessage, client: str | None = None) -> None:
        """Whether a synchronous turn may start now, before anything is stored: raises Overloaded when the
        backends' queues are full and RateLimited when this sender (or ``client``, its address) sent too much."""
        ...

    async def accept(self, message: IncomingMessage) -> Accepted:
        """Store the message now (DuplicateMessage when its external id was stored before)."""
        ...

    def answer_later(
        self,
        message: IncomingMessage,
        accepted: Accepted,
        while_answering: Callable[[], AbstractAsyncContextManager[Any]] | None = None,
    ) -> None:
        """Answer an accepted message in the background; the reply reaches the channel's ``deliver``."""
        ...

    async def history(self, channel: str, sender: str, limit: int) -> list[HistoryItem]:
        """The conversation's last messages, oldest first."""
        ...

    async def rate(
        self, message_id: int, rating: str | None, correction: str | None, owner: tuple[str, str] | None = None
    ) -> int:
        """Store feedback on a bot reply (``owner``: (channel, sender) it must belong to); returns its id."""
        ...


# ---------------------------------------------------------------- channels


@runtime_checkable
class Channel(Protocol):
    """Where messages come from: an HTTP router whose endpoints feed ``turns``. Built as ``cls(settings)``;
    options from ``settings.channel_options``."""

    name: str

    def router(self, turns: Turns) -> APIRouter: ...


@dataclass(frozen=True)
class Outgoing:
    """One reply to deliver out of band, attempt ``attempt``, with an idempotency ``key`` that stays the same
    across attempts. ``metadata`` is what the user message said about where it came from; ``state`` may be
    updated by the channel to remember progress (parts of a long message already sent)."""

    key: str
    channel: str
    sender: str
    text: str
    message_id: int
    reply_to: int
    metadata: dict[str, Any]
    attempt: int
    state: dict[str, Any]
    citations: list[Citation] = field(default_factory=list)  # the sources of a reply from the knowledge base
    rich: RichResponse | None = None  # a templated response's buttons, image, attachment, custom payload


@runtime_checkable
class DeliveringChannel(Channel, Protocol):
    """A channel that answers out of band (Slack, Telegram, REST callbacks): its replies go through the
    outbox and the delivery worker calls ``deliver`` until it returns."""

    async def deliver(self, reply: Outgoing) -> None: ...

    async def aclose(self) -> None: ...


# ---------------------------------------------------------------- knowledge base


@dataclass(frozen=True)
class Passage:
    """A chunk of a knowledge-base document as retrieval found it. ``score`` is the fused rank score;
    ``dense`` the cosine similarity to the query, ``keyword`` the keyword rank score (None: not found that way)."""

    chunk_id: int
    source: str  # the document's path or URL, as added
    title: str
    text: str
    position: int  # the chunk's place in its document (0, 1, ...)
    score: float = 0.0
    dense: float | None = None
    keyword: float | None = None
    sentences: tuple[float, ...] = ()  # cosine of each sentence of ``text`` to the query (empty: not indexed)

    @property
    def best_sentence(self) -> float | None:
        """The cosine of the passage's sentence closest to the query (None: no sentence vectors)."""
        return max(self.sentences) if self.sentences else None


@dataclass(frozen=True)
class Citation:
    """A passage a reply cites: ``n`` is its number in the reply's ``[n]`` markers."""

    n: int
    chunk_id: int
    title: str
    source: str


@dataclass(frozen=True)
class Retrieval:
    """What one query retrieved, with the knowledge base version it came from (recorded on the turn)."""

    query: str
    passages: list[Passage]
    kb_version: str | None
    latency_ms: float
    evidence: bool  # the answerability score passed the floor (``kb.min_score``)
    answerability: float = 0.0  # how likely the passages answer the message (``retrieval.answerability``)


@runtime_checkable
class Embedder(Protocol):
    """Sentence vectors for the knowledge base: unit length, one row per text (float32)."""

    name: str  # recorded with the vectors: a different embedder means re-indexing
    dimensions: int

    def embed(self, texts: list[str]) -> Any:  # numpy.ndarray of shape (len(texts), dimensions)
        ...
