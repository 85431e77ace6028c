"""How an LLM reply is made: the prompt (persona, the history that fits the model's context, the message),
the sampling settings and the guards. Live turns (``assistant.turn.pipeline``) and ``assistant eval llm`` both
use this one path, so the evaluation measures what users get."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from assistant.config import Settings
from assistant.contracts import ChatMessage, Generation, LLMBackend, Passage, Role, TokenCounter, Usage
from assistant.domain import Domain
from assistant.knowledge.grounding import question_with_passages
from assistant.replies.checks import CheckContext
from assistant.replies.examples import ExampleFinder
from assistant.replies.guards import CRISIS_GUARD, ReplyGuard, speaks_of_self_harm

CHARS_PER_TOKEN = 3  # the estimate when the server cannot count tokens (errs towards too many)


@dataclass(frozen=True)
class Prompt:
    messages: list[ChatMessage]
    history_kept: int  # earlier messages that fitted
    history_dropped: int
    tokens: int | None  # as counted by the served model's tokenizer, when it could
    examples: int = 0  # curated exchanges shown before the conversation


@dataclass
class Written:
    """One reply written outside a turn (the evaluation): the text, what the model wrote, the cost."""

    text: str
    raw: str
    guards: list[str]
    usage: Usage
    seconds: float
    first_token_s: float | None
    prompt: Prompt


@dataclass
class Record:
    """What is stored with an LLM turn (``messages.generation``): the settings, what the guards did."""

    settings: dict[str, Any]
    history_kept: int = 0
    history_dropped: int = 0
    prompt_tokens_counted: int | None = None
    examples: int = 0
    guards: list[str] = field(default_factory=list)
    raw: str | None = None  # the model's own text, when the guards changed it


class ReplyWriter:
    def __init__(
        self, settings: Settings, llm: LLMBackend, domain: Domain, examples: ExampleFinder | None = None
    ) -> None:
        self.settings = settings
        self.llm = llm
        self.domain = domain
        self.examples = examples
        cfg = settings.llm
        self.generation = cfg.generation()
        self.context = CheckContext(system_prompt=domain.persona, allowed_text=domain.persona, max_words=cfg.max_words)
        self.context_tokens = cfg.context_tokens or settings.vllm.max_model_len

    def canned(self, message: str) -> str | None:
        """The input guard: the crisis reply for a message that speaks of self-harm (no LLM), else None."""
        if self.settings.llm.guards and speaks_of_self_harm(message):
            return self.settings.llm.crisis_reply
        return None

    def guard(self, passages: Sequence[Passage] = ()) -> ReplyGuard:
        """The output guard; a grounded reply may have more sentences, and repeat contacts its passages give."""
        cfg = self.settings.llm
        if not passages:
            return ReplyGuard(self.context, cfg.max_sentences, cfg.guard_reply, enabled=cfg.guards)
        allowed = "\n".join([self.context.allowed_text, *(p.text for p in passages)])
        context = replace(self.context, allowed_text=allowed, max_words=self.context.max_words * 2)
        return ReplyGuard(context, self.settings.kb.max_sentences, cfg.guard_reply, enabled=cfg.guards)

    def generation_for(self, passages: Sequence[Passage] = ()) -> Generation:
        """Grounded answers get ``kb.max_tokens`` (they quote) and stop only at a blank line (the model often
        starts "The answer is:" on a line of its own); small talk the LLM's own settings."""
        if not passages:
            return self.generation
        return replace(self.generation, max_tokens=self.settings.kb.max_tokens, stop=("\n\n",))

    def record(self, prompt: Prompt | None, guard: ReplyGuard | None, generation: Generation | None = None) -> Record:
        record = Record(settings=asdict(generation or self.generation))
        if prompt is not None:
            record.history_kept, record.history_dropped = prompt.history_kept, prompt.history_dropped
            record.prompt_tokens_counted = prompt.tokens
            record.examples = prompt.examples
        if guard is not None:
            record.guards = list(guard.applied)
            if guard.applied:
                record.raw = guard.raw
        return record

    async def prompt(
        self, history: Sequence[tuple[str, str]], message: str, model: str, passages: Sequence[Passage] = ()
    ) -> Prompt:
        """System persona, the curated exchanges closest to a small-talk message (``examples``), then as much
        of the recent ``history`` (oldest first) as fits the model's context next to the reply's ``max_tokens``,
        counted with the served model's tokenizer; oldest dropped first. With ``passages`` the message comes
        with them, numbered, and the instruction to answer from them."""
        budget = self.context_tokens - self.generation_for(passages).max_tokens
        turns = [ChatMessage("user" if role == Role.USER else "assistant", text) for role, text in history]
        head = [ChatMessage("system", self.domain.persona)] if self.domain.persona else []
        shots = await self.examples.closest(message) if self.examples and not passages else []
        for shot in shots:
            head += [ChatMessage("user", shot.message), ChatMessage("assistant", shot.reply)]
        tail = [ChatMessage("user", question_with_passages(message, list(passages)) if passages else message)]
        dropped = 0
        while True:
            messages = head + turns[dropped:] + tail
            tokens = await self._count(messages, model)
            if tokens <= budget or dropped >= len(turns):
                counted = tokens if isinstance(self.llm, TokenCounter) else None
                return Prompt(messages, len(turns) - dropped, dropped, counted, len(shots))
            # drop whole exchanges: the oldest message, and the reply to it
            dropped = min(len(turns), dropped + (2 if len(turns) - dropped >= 2 else 1))

    async def _count(self, messages: list[ChatMessage], model: str) -> int:
        if isinstance(self.llm, TokenCounter):
            counted = await self.llm.count_tokens(messages, model)
            if counted is not None:
                return counted
        return sum(len(m.content) + 8 for m in messages) // CHARS_PER_TOKEN

    async def write(
        self,
        history: Sequence[tuple[str, str]],
        message: str,
        model: str,
        seed: int | None = None,
        observe: bool = False,
        passages: Sequence[Passage] = (),
    ) -> Written:
        """A whole reply, the way a live turn makes it (with ``seed``: reproducibly sampled). ``observe``:
        let the model write on after the guards stopped it (the reply is the same), so that ``raw`` shows
        what the model itself would have said: the evaluation measures the model, not only the guards."""
        canned = self.canned(message)
        if canned is not None:
            empty = Prompt([], 0, 0, None)
            return Written(canned, "", [CRISIS_GUARD], Usage(), 0.0, None, empty)
        prompt = await self.prompt(history, message, model, passages)
        generation = self.generation_for(passages)
        generation = generation if seed is None else replace(generation, seed=seed)
        guard, usage = self.guard(passages), Usage()
        started, first = time.perf_counter(), None
        async with contextlib.aclosing(self.llm.stream(prompt.messages, model, usage, generation)) as pieces:
            async for piece in pieces:
                first = first if first is not None else time.perf_counter() - started
                guard.feed(piece)
                if guard.stopped and not observe:
                    break  # closing the stream aborts the request
        text = guard.finish()
        return Written(text, guard.raw, list(guard.applied), usage, time.perf_counter() - started, first, prompt)
