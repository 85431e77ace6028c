"""Grounded answers: the quoted sentences (``kb.answer: extract``), or the prompt with numbered passages and
the check that keeps only what they support (``generate``, ``hybrid``).

A quote is the top passage's sentences closest to the question, cited. An LLM's answer is judged: each
sentence is kept only when enough of its content words are in the passage it cites (or, if it cites none or a
wrong one, in the passage that supports it best, which it then cites); when too little is left the turn
abstains (``generate``) or quotes (``hybrid``). Whether to answer at all is decided before, by retrieval's
answerability score. The settings are chosen on questions with answers (``assistant eval kb --calibrate``,
bench/kb_clapnq.py on ClapNQ's tuning part).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import snowballstemmer

from assistant.config import KBSettings
from assistant.contracts import Citation, Passage, Reason
from assistant.store.kb import STOPWORDS

STEMMER = snowballstemmer.stemmer("english")
CITE = re.compile(r"\s*\[(\d{1,2})\]")
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
WORD = re.compile(r"[^\W_]+", re.UNICODE)
# stop words, and the words of a reply that say nothing about the passage ("yes", "sorry", "according")
FUNCTION_WORDS = STOPWORDS | frozenset(
    [
        "about",
        "above",
        "after",
        "again",
        "all",
        "also",
        "am",
        "any",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "did",
        "doing",
        "don",
        "down",
        "during",
        "each",
        "few",
        "further",
        "had",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "into",
        "itself",
        "just",
        "more",
        "most",
        "no",
        "nor",
        "not",
        "now",
        "off",
        "once",
        "only",
        "other",
        "ours",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "some",
        "such",
        "those",
        "through",
        "too",
        "under",
        "until",
        "up",
        "very",
        "while",
        "yours",
        "yes",
        "know",
        "sorry",
        "passage",
        "passages",
        "according",
    ]
)

INSTRUCTIONS = (
    "Answer the question using only the numbered passages. Cite the passage you use like [1]. "
    'If the passages do not contain the answer, say "I don\'t know".'
)


def passages_block(passages: list[Passage], max_chars: int = 1500) -> str:
    return "\n\n".join(f"[{n}] {p.title}\n{p.text[:max_chars]}" for n, p in enumerate(passages, start=1))


def question_with_passages(question: str, passages: list[Passage]) -> str:
    """The user message of a grounded prompt (the persona stays the system message)."""
    return f"{INSTRUCTIONS}\n\nPassages:\n{passages_block(passages)}\n\nQuestion: {question}"


def content_words(text: str) -> list[str]:
    """The words that carry meaning, stemmed (Snowball), so "kettles" matches "kettle" and "shipped" "ship"."""
    words = WORD.findall(CITE.sub(" ", text).lower())
    return [_stem(w) for w in words if w not in FUNCTION_WORDS and (len(w) > 1 or w.isdigit())]


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    """Snowball is pure Python (about 0.2 ms a word); a document's vocabulary is small, so stems are kept."""
    return str(STEMMER.stemWord(word))


def support(sentence: str, passage: str) -> float:
    """The share of the sentence's content words that are in the passage (1.0: all; 0 for no content words)."""
    words = content_words(sentence)
    if not words:
        return 0.0
    vocabulary = set(content_words(passage))
    return sum(w in vocabulary for w in words) / len(words)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text.strip()) if s.strip()]


def chunk_sentences(text: str) -> list[str]:
    """A chunk's sentences as indexed: one row of its sentence vectors each (the whole text if none)."""
    return sentences(text) or [text.strip()]


@dataclass(frozen=True)
class Judged:
    sentence: str
    support: float
    passage: int | None  # 1-based number of the passage it is attributed to
    kept: bool


@dataclass
class Checked:
    text: str  # the kept sentences, each ending with its citation
    citations: list[Citation] = field(default_factory=list)
    judged: list[Judged] = field(default_factory=list)
    words: int = 0  # content words kept

    def as_record(self) -> list[dict[str, object]]:
        return [{"sentence": j.sentence, "support": round(j.support, 3), "passage": j.passage, "kept": j.kept}
                for j in self.judged]  # fmt: skip


def judge(sentence: str, passages: list[Passage], min_support: float) -> Judged:
    """Attribute a sentence to the passage it cites if that one supports it, else to the best one."""
    scores = {n: support(sentence, p.text + " " + p.title) for n, p in enumerate(passages, start=1)}
    if not scores:
        return Judged(sentence, 0.0, None, False)
    cited = [int(m) for m in CITE.findall(sentence) if int(m) in scores]
    cited_ok = [n for n in cited if scores[n] >= min_support]
    n = cited_ok[0] if cited_ok else max(scores, key=lambda k: (scores[k], -k))
    return Judged(sentence, scores[n], n, scores[n] >= min_support)


def cited(sentence: str, n: int) -> str:
    """The sentence with its own markers replaced by ``[n]`` before its final stop."""
    bare = CITE.sub("", sentence).strip()
    end = bare[-1] if bare and bare[-1] in ".!?" else "."
    return f"{bare.rstrip('.!?').rstrip()} [{n}]{end}"


def check(answer: str, passages: list[Passage], min_support: float) -> Checked:
    """Keep the supported sentences, each with its citation marker; collect the citations."""
    checked = Checked(text="")
    kept: list[str] = []
    sources: dict[int, Citation] = {}
    for sentence in sentences(answer):
        judged = judge(sentence, passages, min_support)
        checked.judged.append(judged)
        if not judged.kept or judged.passage is None:
            continue
        kept.append(cited(sentence, judged.passage))
        passage = passages[judged.passage - 1]
        sources.setdefault(judged.passage, Citation(judged.passage, passage.chunk_id, passage.title, passage.source))
        checked.words += len(content_words(sentence))
    checked.text = " ".join(kept)
    checked.citations = [sources[n] for n in sorted(sources)]
    return checked


def extract(question: str, passages: list[Passage], max_sentences: int) -> Checked:
    """The quoted answer (``kb.answer: extract``): the top passage's sentences closest to the question (by
    their cosines; by the question's words when the passage has no sentence vectors), in the passage's order,
    citing it. On the ClapNQ tuning part three sentences quoted this way score a token F1 of 0.53 against the
    references, where SmolLM2-135M's answers from the same passages score 0.24."""
    if not passages:
        return Checked(text="")
    top = passages[0]
    parts = chunk_sentences(top.text)
    indexed = len(top.sentences) == len(parts)
    scores = list(top.sentences) if indexed else [support(question, part) for part in parts]
    chosen = sorted(sorted(range(len(parts)), key=lambda i: (-scores[i], i))[:max_sentences])
    quoted = [parts[i] for i in chosen]
    quoted[-1] = cited(quoted[-1], 1)
    checked = Checked(text=" ".join(quoted), citations=[Citation(1, top.chunk_id, top.title, top.source)])
    checked.judged = [Judged(parts[i], 1.0, 1, True) for i in chosen]
    checked.words = sum(len(content_words(parts[i])) for i in chosen)
    return checked


ANSWERED = frozenset({Reason.GROUNDED, Reason.QUOTED})  # replies from the knowledge base, with citations


def decide(
    answer: str, passages: list[Passage], settings: KBSettings, question: str = "", checked: Checked | None = None
) -> tuple[str, Reason, Checked]:
    """The reply to a grounded question: the supported sentences with citations; when fewer than
    ``min_answer_words`` content words are supported, the abstain reply (``kb.answer: generate``) or the
    quoted sentences (``hybrid``). The live turn and the evaluation both decide here (``checked``: the
    answer's ``check`` at ``settings.min_support``, when already made)."""
    checked = checked or check(answer, passages, settings.min_support)
    if checked.words >= settings.min_answer_words:
        return checked.text, Reason.GROUNDED, checked
    if settings.answer == "hybrid":
        quoted = extract(question, passages, settings.max_sentences)
        return quoted.text, Reason.QUOTED, quoted
    return settings.abstain_reply, Reason.UNSUPPORTED, checked
