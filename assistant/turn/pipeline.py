"""One turn, one readable path:

channel -> store the user message -> NLU parse -> router -> intent reply / action, or LLM -> store the
reply -> channel.

``TurnPipeline.run`` yields the LLM's text pieces as they arrive and, last, the stored ``BotReply``;
``respond`` is the same turn for channels that want only the final reply.

Channels that must acknowledge at once and answer later (Slack, Telegram, REST callbacks) call ``accept``
(the message is stored, duplicates refused) and then ``answer_later``: the turn runs in the background and
its reply is stored together with an outbox row, which ``assistant.workers.delivery`` sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from assistant.config import Settings
from assistant.contracts import (
    Accepted,
    Action,
    ActionContext,
    BackendUnavailable,
    BotReply,
    ChatMessage,
    FeedbackLimit,
    FeedbackSource,
    FeedbackTooLong,
    Generation,
    HistoryItem,
    IncomingMessage,
    LLMBackend,
    NLUBackend,
    ParseResult,
    Passage,
    Reason,
    Retrieval,
    RichResponse,
    Role,
    Route,
    ServingState,
    Usage,
)
from assistant.domain import Domain
from assistant.infra import prometheus
from assistant.knowledge import grounding
from assistant.knowledge.annotation_matcher import AnnotationMatcher
from assistant.knowledge.retrieval import HybridRetriever as Retriever
from assistant.replies.examples import example_finder
from assistant.replies.guards import ReplyGuard
from assistant.replies.writer import Prompt, Record, ReplyWriter
from assistant.store import AlreadyAnswered, ReplyRecord, Store, Understanding, feedback
from assistant.turn.admission import Admission, Capacity
from assistant.turn.inputs import check_message
from assistant.turn.router import Decision, Router, payload_parse, smalltalk_share

log = logging.getLogger(__name__)


@dataclass
class _Draft:
    """What is known about the reply while it is being made."""

    decision: Decision
    parse: ParseResult | None
    slots: dict[str, Any]
    text: str = ""
    reason: Reason = Reason.CONFIDENT
    answered_by: str | None = None
    prompt: list[ChatMessage] | None = None
    generation: Record | None = None
    usage: Usage = field(default_factory=Usage)
    nlu_error: str | None = None
    error: str | None = None
    done: bool = False
    retrieval: Retrieval | None = None  # open questions: what the knowledge base gave
    checked: grounding.Checked | None = None  # grounded answers: what the passages support
    rich: RichResponse | None = None  # templated responses: buttons, image, attachment, custom payload


_DONE = object()


class LLMCall:
    """One LLM generation running as its own task, so that it can start before the router decides.

    Pieces are queued as they arrive and read with ``pieces()``; ``cancel()`` aborts the request.
    """

    def __init__(
        self,
        llm: LLMBackend,
        model: str,
        prompt: Callable[[], Awaitable[Prompt]],
        generation: Generation,
        passages: list[Passage] | None = None,
        capacity: Capacity | None = None,
    ) -> None:
        self.model = model
        self.passages = passages or []  # a grounded answer's numbered passages
        self.usage = Usage()
        self.prompt: Prompt | None = None
        self.pieces_received = 0
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._task = asyncio.create_task(self._run(llm, prompt, generation, capacity or Capacity("llm", 1 << 16)))

    async def _run(
        self, llm: LLMBackend, prompt: Callable[[], Awaitable[Prompt]], generation: Generation, capacity: Capacity
    ) -> None:
        try:
            self.prompt = await prompt()
            async with capacity.slot():  # the wait in line is not part of the LLM's timeout
                async for piece in llm.stream(self.prompt.messages, self.model, self.usage, generation):
                    self.pieces_received += 1
                    self._queue.put_nowait(piece)
            self._queue.put_nowait(_DONE)
        except Exception as exc:  # handed to the reader, which decides
            self._queue.put_nowait(exc)

    async def pieces(self) -> AsyncIterator[str]:
        while (item := await self._queue.get()) is not _DONE:
            if isinstance(item, Exception):
                raise item
            yield str(item)

    def cancel(self) -> None:
        self._task.cancel()


class TurnPipeline:
    """Runs turns; it is the `Turns` API the channels are given."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        nlu: NLUBackend,
        llm: LLMBackend,
        actions: dict[str, Action],
        domain: Domain,
        serving: ServingState,
        replies_waiting: asyncio.Event | None = None,
        retriever: Retriever | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.nlu = nlu
        self.llm = llm
        self.actions = actions
        self.domain = domain
        self.serving = serving
        self.router = Router(settings.router)
        self.retriever = retriever if settings.kb.enabled else None
        embedder = self.retriever.embedder if self.retriever else None
        self.writer = ReplyWriter(settings, llm, domain, example_finder(settings, domain, embedder))
        self.smalltalk_intents = frozenset(settings.kb.smalltalk_intents)
        self.smalltalk_floor = settings.kb.smalltalk_share
        self.annotations = (
            AnnotationMatcher(store, retriever.embedder, settings.kb.annotation_threshold) if self.retriever else None
        )
        self._storing: set[asyncio.Future[BotReply]] = set()  # replies being logged (kept referenced)
        self._answering: dict[int, asyncio.Task[None]] = {}  # background turns by user message id
        self.replies_waiting = replies_waiting or asyncio.Event()  # set when an out-of-band reply is stored
        self.admission = admission or Admission(settings.limits)

    async def respond(self, message: IncomingMessage, turn: Accepted | None = None, deliver: bool = False) -> BotReply:
        async for event in self.run(message, turn, deliver):
            if isinstance(event, BotReply):
                return event
        raise AssertionError("a turn always ends with its reply")

    def check(self, message: IncomingMessage) -> None:
        """What every message must be before it is stored (``assistant.turn.inputs``): InvalidInput, a 4xx with
        a sentence, otherwise. ``admit`` and ``accept`` call it, so a channel cannot skip it."""
        check_message(message, self.settings.limits, self.settings.max_message_chars)

    async def admit(self, message: IncomingMessage, client: str | None = None) -> None:
        """Refuse a synchronous turn before it is stored when the backends' lines are full or its sender or
        address sent too much (``assistant.turn.admission``). The message is checked first (``check``)."""
        self.check(message)
        await self.admission.admit(message, client)

    async def accept(self, message: IncomingMessage) -> Accepted:
        """Store the message now (raises DuplicateMessage if its external id was stored before), once it has
        passed ``check``: no channel can store a message that skipped it."""
        self.check(message)
        return await self.store.begin_turn(
            message.channel, message.sender, message.text, message.metadata, message.external_id
        )

    def answer_later(
        self,
        message: IncomingMessage,
        turn: Accepted,
        while_answering: Callable[[], AbstractAsyncContextManager[Any]] | None = None,
    ) -> None:
        """Answer an accepted message in the background; its channel delivers the reply from the outbox."""

        async def answer() -> None:
            try:
                async with while_answering() if while_answering else contextlib.nullcontext():
                    await self.respond(message, turn, deliver=True)
            except AlreadyAnswered:
                log.info("message %s was answered elsewhere", turn.message_id)
            except Exception:
                log.exception("answering message %s failed; it is retried later", turn.message_id)

        if turn.message_id in self._answering:
            return
        if len(self._answering) >= self.settings.limits.max_background_turns:
            # stored already: the delivery worker's recovery answers it once the running ones are done
            log.info("%d background turns running: message %s waits", len(self._answering), turn.message_id)
            prometheus.REFUSED.labels("deferred").inc()
            return
        task = asyncio.create_task(answer())
        self._answering[turn.message_id] = task
        task.add_done_callback(lambda _: self._answering.pop(turn.message_id, None))

    def is_answering(self, message_id: int) -> bool:
        return message_id in self._answering

    async def history(self, channel: str, sender: str, limit: int) -> list[HistoryItem]:
        return await self.store.transaction(lambda conn: feedback.conversation_messages(conn, channel, sender, limit))

    async def rate(
        self, message_id: int, rating: str | None, correction: str | None, owner: tuple[str, str] | None = None
    ) -> int:
        """Feedback from a channel user (``owner``: channel, sender) on a reply of their own conversation.
        It is recorded as anonymous (pending review) unless the channel is trusted, and capped per sender."""
        cfg = self.settings.feedback
        source, channel, sender = FeedbackSource.REVIEWER, None, None
        if owner is not None:
            channel, sender = owner
            trusted = channel in cfg.trusted_channels
            source = FeedbackSource.TRUSTED if trusted else FeedbackSource.ANONYMOUS
            if correction is not None and len(correction) > cfg.max_correction_chars:
                raise FeedbackTooLong(f"a suggested reply may have at most {cfg.max_correction_chars} characters")

        def work(conn: Any) -> int:
            if owner is not None:
                feedback.check_owner(conn, message_id, *owner)
                since = datetime.now(UTC) - timedelta(seconds=cfg.window_s)
                count, chars = feedback.given_since(conn, channel, sender, since)
                if count >= cfg.max_per_sender or chars + len(correction or "") > cfg.max_chars_per_sender:
                    raise FeedbackLimit(
                        f"this conversation has given as much feedback as is taken in {cfg.window_s / 3600:g} hours; "
                        "thank you, please try again later"
                    )
            return feedback.add_feedback(conn, message_id, rating, correction, source, channel, sender)

        return await self.store.transaction(work)

    async def aclose(self, grace_s: float = 10.0) -> None:
        """Give background turns a moment to finish; the rest are answered after the next start."""
        if self._answering:
            await asyncio.wait(list(self._answering.values()), timeout=grace_s)
        for task in list(self._answering.values()):
            task.cancel()

    async def run(
        self, message: IncomingMessage, turn: Accepted | None = None, deliver: bool = False
    ) -> AsyncIterator[str | BotReply]:
        """One turn. ``turn``: the message was stored by ``accept`` already. ``deliver``: the reply goes
        to the outbox for ``message.channel`` to send (and an unfinished one is not stored: it is redone)."""
        started = time.perf_counter()
        turn = turn or await self.accept(message)
        # With speculative_start the LLM starts while the NLU parses, and is cancelled if not needed.
        call = self._llm_call(turn, message) if self.settings.llm.speculative_start else None
        try:
            draft = await self._understand(turn, message)
        except BaseException:
            if call:
                call.cancel()
            raise
        try:
            await self._annotated(message, draft)
            if self._open_question(draft):
                grounded = await self._retrieve(turn, message, draft)
                if grounded is not None or draft.text:
                    if call:
                        call.cancel()  # it was started with the small-talk prompt
                    call = grounded
            if draft.decision.route == Route.LLM and not draft.text:
                call = call or self._llm_call(turn, message)
                generate = self._generate_grounded if call.passages else self._generate
                async for piece in generate(draft, call):
                    yield piece
            elif call:
                call.cancel()
            draft.done = True
        finally:
            # Also reached when a streaming client goes away mid-reply: the LLM request is aborted and the
            # partial reply still logged (shielded, so the request's cancellation does not cancel it).
            if call:
                call.cancel()
            # A reply to deliver out of band is stored only when complete: an interrupted one (shutdown) is
            # left to recovery, which answers the message again.
            if draft.done or not deliver:
                via = message.channel if deliver else None
                storing = asyncio.ensure_future(self._store_reply(turn, draft, started, via))
                self._storing.add(storing)
                storing.add_done_callback(self._storing.discard)
                reply = await asyncio.shield(storing)
        yield reply

    async def _understand(self, turn: Accepted, message: IncomingMessage) -> _Draft:
        """Parse, route, and for intent routes make the reply (templated response or action)."""
        parse: ParseResult | None = None
        nlu_error = None
        try:
            parse = payload_parse(message.text)  # a button's `/intent{...}`: no NLU, as in Rasa
            if parse is None:
                async with self.admission.nlu.slot():  # waiting in line is not the NLU's timeout: busy is not down
                    parse = await self.nlu.parse(message.text)
        except BackendUnavailable as exc:
            nlu_error = str(exc)
            log.warning("NLU unavailable, routing to the LLM: %s", exc)
        decision = self.router.decide(parse)
        top = parse.intent.name if parse and parse.intent else None
        slots = self.domain.fill_slots(dict(turn.slots), top, parse.entities if parse else [], message.text)
        draft = _Draft(decision=decision, parse=parse, slots=slots, reason=decision.reason, nlu_error=nlu_error)
        if decision.route == Route.INTENT and decision.intent:
            await self._intent_reply(decision.intent, message, draft)
        elif decision.route == Route.LLM and (canned := self.writer.canned(message.text)) is not None:
            # the input guard: no generated text for this; the configured crisis reply
            draft.text, draft.reason, draft.answered_by = canned, Reason.CRISIS, "crisis_reply"
        return draft

    async def _intent_reply(self, intent: str, message: IncomingMessage, draft: _Draft) -> None:
        action_name = self.domain.action_for(intent)
        action = self.actions.get(action_name)
        if action is not None:
            top = draft.parse.intent if draft.parse else None
            context = ActionContext(
                sender=message.sender,
                text=message.text,
                intent=intent,
                entities=draft.parse.entities if draft.parse else [],
                slots=draft.slots,
                channel=message.channel,
                confidence=top.confidence if top else None,
            )
            try:
                result = await action.run(context)
            except Exception as exc:  # an action's bug or its server down must not lose the turn
                log.exception("%s failed", action_name)
                # the intent's own response if the bot has one, else the fallback reply
                rendered = self.domain.response(f"utter_{intent}", draft.slots, message.channel)
                draft.text = rendered.text if rendered else self.settings.llm.fallback_reply
                draft.rich, draft.reason = (rendered.rich if rendered else None), Reason.ACTION_FAILED
                draft.error = f"{action_name}: {exc!r}"
                return
            draft.text, draft.rich, draft.answered_by = result.text, result.rich, action_name
            draft.slots.update(result.slots)
            return
        rendered = self.domain.response(f"utter_{intent}", draft.slots, message.channel)
        if rendered is None:  # no response written for this intent: let the LLM answer
            draft.decision = Decision(Route.LLM, Reason.NO_RESPONSE, intent)
            draft.reason = Reason.NO_RESPONSE
        else:
            draft.text, draft.rich, draft.answered_by = rendered.text, rendered.rich, f"utter_{intent}"

    async def _annotated(self, message: IncomingMessage, draft: _Draft) -> None:
        """A message close to an annotated question gets the reviewer's answer, before the documents and the
        LLM (``answered_by`` = ``annotation-N``)."""
        if self.annotations is None or draft.decision.route != Route.LLM or draft.text:
            return
        try:
            found = await self.annotations.match(message.text)
        except Exception as exc:  # the annotations must not lose the turn: answer without them
            log.exception("matching annotations failed")
            draft.error = f"annotations: {exc!r}"
            return
        if found is not None:
            draft.text, draft.reason, draft.answered_by = found.answer, Reason.ANNOTATED, found.name

    def _open_question(self, draft: _Draft) -> bool:
        """Every LLM-routed message asks the knowledge base first (a follow-up such as "and to Sweden?" reads as
        small talk to the NLU). What the documents do not answer gets the abstain reply only if it is not small
        talk: a small-talk intent, or a ranking that gives those intents ``kb.smalltalk_share`` (``_retrieve``)."""
        decision = draft.decision
        return self.retriever is not None and decision.route == Route.LLM and not draft.text

    def _small_talk(self, draft: _Draft) -> bool:
        if draft.decision.intent in self.smalltalk_intents:
            return True
        return draft.parse is not None and smalltalk_share(draft.parse, self.smalltalk_intents) >= self.smalltalk_floor

    async def _retrieve(self, turn: Accepted, message: IncomingMessage, draft: _Draft) -> LLMCall | None:
        """Retrieve for an open question: passages with evidence give the quoted answer (``kb.answer:
        extract``) or a grounded LLM call; none gives the abstain reply; an empty knowledge base leaves the
        message to the LLM as before."""
        assert self.retriever is not None
        history = await self.store.history(turn, 2 * self.settings.kb.context_turns)
        context = [text for role, text in history if role == Role.USER]
        try:
            draft.retrieval = retrieval = await self.retriever.retrieve(message.text, context)
        except Exception as exc:  # the knowledge base must not lose the turn: answer without it
            log.exception("retrieval failed; the LLM answers without the knowledge base")
            draft.error = f"retrieval: {exc!r}"
            return None
        prometheus.observe_retrieval(retrieval.latency_ms / 1000, retrieval.evidence)
        if not retrieval.passages:  # no documents: the LLM answers as it did before there was a knowledge base
            return None
        if not retrieval.evidence:
            if draft.decision.reason == Reason.NLU_UNAVAILABLE:
                return None  # without the NLU it may be small talk: the LLM answers as it did before
            if self._small_talk(draft):  # nothing in the documents, and not a question for them: the LLM talks
                if draft.decision.intent not in self.smalltalk_intents:
                    draft.reason = Reason.SMALL_TALK
                return None
            draft.text, draft.reason, draft.answered_by = self.settings.kb.abstain_reply, Reason.NO_EVIDENCE, "kb"
            return None
        if self.settings.kb.answer == "extract":
            draft.checked = grounding.extract(message.text, retrieval.passages, self.settings.kb.max_sentences)
            draft.text, draft.reason, draft.answered_by = draft.checked.text, Reason.QUOTED, "kb"
            return None
        return self._llm_call(turn, message, retrieval.passages)

    def _llm_call(self, turn: Accepted, message: IncomingMessage, passages: list[Passage] | None = None) -> LLMCall:
        model = self.serving.llm_model
        history_turns = self.settings.llm.history_turns

        async def prompt() -> Prompt:
            history = await self.store.history(turn, 2 * history_turns)
            return await self.writer.prompt(history, message.text, model, passages or ())

        generation = self.writer.generation_for(passages or ())
        return LLMCall(self.llm, model, prompt, generation, passages, self.admission.llm)

    async def _generate(self, draft: _Draft, call: LLMCall) -> AsyncIterator[str]:
        guard = self.writer.guard()
        try:
            async with contextlib.aclosing(self._pieces(draft, call)) as pieces:
                async for piece in pieces:
                    shown = guard.feed(piece)
                    if shown:
                        yield shown
                    if guard.stopped:
                        call.cancel()  # the guard cut the reply: no need for the rest
                        break
            if draft.error is None:
                draft.text = guard.finish()
                rest = guard.remainder(draft.text)
                if rest:
                    yield rest
        finally:  # also when the client went away mid-reply
            self._finish_generation(draft, call, guard)
        if not draft.text.strip():
            draft.text, draft.reason = self.settings.llm.fallback_reply, Reason.LLM_EMPTY

    async def _generate_grounded(self, draft: _Draft, call: LLMCall) -> AsyncIterator[str]:
        """A grounded answer streams sentence by sentence: each is shown once the passages support it."""
        guard = self.writer.guard(call.passages)
        min_support = self.settings.kb.min_support
        pending, shown = "", 0
        try:
            async with contextlib.aclosing(self._pieces(draft, call)) as pieces:
                async for piece in pieces:
                    pending += guard.feed(piece)
                    *complete, pending = grounding.SENTENCE_END.split(pending)
                    for sentence in complete:
                        judged = grounding.judge(sentence, call.passages, min_support)
                        if judged.kept and judged.passage is not None:
                            yield (" " if shown else "") + grounding.cited(sentence, judged.passage)
                            shown += 1
                    if guard.stopped:
                        call.cancel()
                        break
            if draft.error is None:
                draft.text, draft.reason, draft.checked = grounding.decide(
                    guard.finish(), call.passages, self.settings.kb, draft.retrieval.query if draft.retrieval else ""
                )
                if draft.reason != Reason.GROUNDED:  # the abstain reply, or the quoted sentences (hybrid)
                    yield ("\n\n" if shown else "") + draft.text
        finally:
            self._finish_generation(draft, call, guard)
        if not draft.text.strip():
            draft.text, draft.reason = self.settings.llm.fallback_reply, Reason.LLM_EMPTY

    async def _pieces(self, draft: _Draft, call: LLMCall) -> AsyncIterator[str]:
        """The call's pieces; an unavailable LLM ends them, with the fallback reply recorded on the draft."""
        draft.answered_by, draft.usage = call.model, call.usage
        try:
            async for piece in call.pieces():
                yield piece
        except BackendUnavailable as exc:
            log.warning("LLM unavailable, answering with the fallback reply: %s", exc)
            draft.text, draft.reason, draft.error = self.settings.llm.fallback_reply, Reason.LLM_UNAVAILABLE, str(exc)

    def _finish_generation(self, draft: _Draft, call: LLMCall, guard: ReplyGuard) -> None:
        if not draft.text:  # interrupted: what was generated so far
            draft.text = guard.raw
        if call.usage.completion_tokens == 0 and call.prompt is not None:
            # stopped before the server's usage report: the prompt as counted, one token per streamed piece
            call.usage.prompt_tokens = call.prompt.tokens or 0
            call.usage.completion_tokens = call.pieces_received
        draft.prompt = call.prompt.messages if call.prompt else None
        draft.generation = self.writer.record(call.prompt, guard)

    async def _store_reply(self, turn: Accepted, draft: _Draft, started: float, deliver_via: str | None) -> BotReply:
        if not draft.done and draft.error is None:
            draft.error = "interrupted: the client went away before the reply was complete"
        latency_ms = (time.perf_counter() - started) * 1000
        parse, decision = draft.parse, draft.decision
        top = parse.label if parse else None
        understanding = Understanding(
            intent=top.name if top else None,
            confidence=top.confidence if top else None,
            ranking=parse.ranking if parse else None,
            entities=parse.entities if parse else None,
            nlu_model=parse.model if parse else None,
            route=decision.route,
            reason=decision.reason,
            error=draft.nlu_error,
        )
        usage = draft.usage if decision.route == Route.LLM else None
        reply = ReplyRecord(
            text=draft.text,
            route=decision.route,
            reason=draft.reason,
            answered_by=draft.answered_by,
            prompt=draft.prompt,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            latency_ms=latency_ms,
            error=draft.error,
            generation=asdict(draft.generation) if draft.generation else None,
            retrieval=_retrieval_record(draft),
            rich=draft.rich,
        )
        changed_slots = draft.slots if draft.slots != turn.slots else None
        message_id = await self.store.finish_turn(turn, understanding, reply, changed_slots, deliver_via)
        if deliver_via:
            self.replies_waiting.set()
        prometheus.observe_turn(decision.route, draft.reason, latency_ms / 1000)
        return BotReply(
            message_id=message_id,
            user_message_id=turn.message_id,
            text=draft.text,
            route=decision.route,
            reason=draft.reason,
            intent=top.name if top else None,
            confidence=top.confidence if top else None,
            model=draft.answered_by,
            latency_ms=latency_ms,
            citations=draft.checked.citations if draft.checked and draft.reason in grounding.ANSWERED else [],
            rich=draft.rich,
        )


def _retrieval_record(draft: _Draft) -> dict[str, Any] | None:
    """What is stored with a turn that asked the knowledge base (``messages.retrieval``)."""
    retrieval = draft.retrieval
    if retrieval is None:
        return None
    grounded = draft.checked is not None and draft.reason in grounding.ANSWERED
    return {
        "kb_version": retrieval.kb_version,
        "query": retrieval.query,
        "latency_ms": round(retrieval.latency_ms, 2),
        "evidence": retrieval.evidence,
        "answerability": retrieval.answerability,
        "passages": [_passage_record(p) for p in retrieval.passages],
        "citations": [asdict(c) for c in draft.checked.citations] if grounded and draft.checked else [],
        "support": draft.checked.as_record() if draft.checked else [],
    }


def _passage_record(p: Passage) -> dict[str, Any]:
    return {"chunk_id": p.chunk_id, "score": round(p.score, 5), "dense": p.dense, "keyword": p.keyword,
            "best_sentence": p.best_sentence, "source": p.source, "title": p.title}  # fmt: skip
