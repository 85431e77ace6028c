"""Figures of a set of replies that need no judge model (the behaviour checks are in
``assistant.replies.checks``, shared with the live guards)."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence

from assistant.replies.checks import LOOP_RATE, ngrams, repeated_trigram_rate, words

ARTICLES = re.compile(r"\b(a|an|the)\b")

__all__ = ["LOOP_RATE", "distinct_n", "looping_share", "percentile", "repeated_trigram_rate", "token_f1", "words"]


def normalized_tokens(text: str) -> list[str]:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return ARTICLES.sub(" ", text).split()


def token_f1(reply: str, reference: str) -> float:
    """Harmonic mean of token precision and recall against the reference (bag of words, SQuAD style)."""
    got, want = normalized_tokens(reply), normalized_tokens(reference)
    if not got or not want:
        return float(got == want)
    common = sum((Counter(got) & Counter(want)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def distinct_n(replies: Sequence[str], n: int = 2) -> float:
    """Distinct n-grams over all n-grams of all replies (Li et al. 2016): low means the same phrases again."""
    grams = [gram for reply in replies for gram in ngrams(words(reply), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def looping_share(replies: Sequence[str]) -> float:
    """Share of replies with more than ``LOOP_RATE`` of their trigrams repeated."""
    return sum(repeated_trigram_rate(r) > LOOP_RATE for r in replies) / len(replies) if replies else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between the closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
