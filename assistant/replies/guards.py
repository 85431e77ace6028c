"""Cheap guards around the LLM, chosen with `assistant eval llm` (bench/llm_quality.py shows what each
one buys):

* an input guard: a message that speaks of self-harm gets the configured crisis reply, never the LLM's;
* output guards on the reply as it streams: generation stops once the reply starts repeating itself
  (a word 4-gram comes back) or has its maximum sentences, and the reply is cut there; at the end a reply
  that fails a safety check (``reply_checks.WITHHOLD``: reveals the prompt, claims to be a person, gives
  contact details it was not given, unsafe wording) is withheld and the guard reply sent instead.

Streamed pieces are provisional: the guard holds back the last few words, and stops streaming at the
first word that could be part of a contact detail; the stored reply (the SSE ``message`` event, the
REST body, Slack, Telegram) is the final one.
"""

from __future__ import annotations

import re

from assistant.replies.checks import WITHHOLD, CheckContext, failures

CRISIS = re.compile(
    r"\b(?:kill(?:ing)? myself|suicid\w*|end(?:ing)? my life|self[- ]?harm|hurt(?:ing)? myself|want to die|"
    r"don'?t want to live|cut(?:ting)? myself)\b",
    re.I,
)
SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")
SUSPICIOUS = re.compile(r"@|https?:|www\.|\d{3}")  # a contact detail may be coming: stream no further
TOKEN = re.compile(r"\S+")
CRISIS_GUARD = "crisis"  # the name the input guard is recorded under
LOOP_N = 4  # a repeated word 4-gram means the reply has started to loop
HOLD_WORDS = LOOP_N  # the first word of a 4-gram that may still turn out repeated is never shown


def speaks_of_self_harm(message: str) -> bool:
    return CRISIS.search(message) is not None


class ReplyGuard:
    """Feed it the streamed pieces; it says what may be shown now, when to stop, and the final reply."""

    def __init__(self, context: CheckContext, max_sentences: int, fallback: str, enabled: bool = True) -> None:
        self.enabled = enabled  # off: the model's text as it comes (to measure what the guards buy)
        self.context = context
        self.max_sentences = max_sentences
        self.fallback = fallback
        self.raw = ""  # what the model wrote
        self.kept = ""  # what is left of it after the cuts
        self.applied: list[str] = []  # which guards acted: repetition, sentences, and failed checks
        self.stopped = False
        self._shown = 0
        self.shown = ""  # what has been streamed so far
        self._frozen = False

    def feed(self, piece: str) -> str:
        """Take one piece; return the text that may be shown now (possibly empty)."""
        self.raw += piece
        if not self.enabled:
            return piece
        if self.stopped:
            return ""
        self.kept = self.raw
        self._cut_repetition()
        self._cut_sentences(final=False)
        return self._release(final=False)

    def finish(self) -> str:
        """The reply to store and send."""
        if not self.enabled:
            return self.raw.strip()
        if not self.stopped:
            self.kept = self.raw
            self._cut_repetition()
        self._cut_sentences(final=True)
        text = self.kept.strip()
        failed = failures(text, self.context, WITHHOLD)
        if failed:
            self.applied += sorted(failed)
            return self.fallback
        return text

    # ------------------------------------------------------------ the cuts

    def _cut_repetition(self) -> None:
        tokens = [(m.start(), re.sub(r"\W", "", m.group().lower())) for m in TOKEN.finditer(self.kept)]
        seen: set[tuple[str, ...]] = set()
        for i in range(len(tokens) - LOOP_N + 1):
            gram = tuple(word for _, word in tokens[i : i + LOOP_N])
            if gram in seen and all(gram):
                self.kept = self._sentence_before(tokens[i][0])
                self._stop("repetition")
                return
            seen.add(gram)

    def _sentence_before(self, position: int) -> str:
        """The text before ``position``, back to its last sentence end if it has one."""
        head = self.kept[:position]
        ends = [m.start() for m in SENTENCE_END.finditer(head + " ")]
        if ends and ends[-1] > 0 and ends[-1] >= self._shown:  # never back past what was streamed
            return head[: ends[-1]]
        return head

    def _cut_sentences(self, final: bool) -> None:
        text = self.kept.strip() + " " if final else self.kept
        ends = list(SENTENCE_END.finditer(text))
        if len(ends) >= self.max_sentences:
            boundary = ends[self.max_sentences - 1]
            if text[boundary.end() :].strip():
                self.kept = text[: boundary.start()]
                self._stop("sentences")

    def _stop(self, why: str) -> None:
        if not self.stopped:
            self.stopped = True
            self.applied.append(why)

    # ------------------------------------------------------------ streaming

    def _release(self, final: bool) -> str:
        if self._frozen:
            return ""
        words = list(TOKEN.finditer(self.kept))
        if not self.stopped:
            words = words[:-HOLD_WORDS] if len(words) > HOLD_WORDS else []
        end = self._shown
        for word in words:
            if word.start() < self._shown:
                continue
            if SUSPICIOUS.search(word.group()):
                self._frozen = True
                break
            end = word.end()
        if end <= self._shown:
            return ""
        piece, self._shown = self.kept[self._shown : end], end
        self.shown += piece
        return piece

    def remainder(self, final: str) -> str:
        """What to stream after ``finish()`` so that the streamed pieces add up to the final reply (nothing
        when the final reply is not a continuation: then clients take the stored reply as it is)."""
        if not self.enabled:
            return ""
        return final[len(self.shown) :] if final.startswith(self.shown) else ""
