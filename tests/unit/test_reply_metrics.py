"""The reply figures (evaluation/reply_metrics.py) on hand-computed examples."""

from __future__ import annotations

import pytest

from assistant.replies.checks import repeated_trigram_rate
from evaluation.reply_metrics import distinct_n, looping_share, percentile, token_f1


def test_repeated_trigram_rate_counts_repeats_of_earlier_trigrams() -> None:
    # "a b c a b c": trigrams abc, bca, cab, abc -> 1 of 4 repeats an earlier one
    assert repeated_trigram_rate("a b c a b c") == pytest.approx(0.25)
    assert repeated_trigram_rate("one two") == 0.0
    assert repeated_trigram_rate("no no no no no") == pytest.approx(2 / 3)  # 3 trigrams, all "no no no"


def test_token_f1_is_squad_style() -> None:
    # reply tokens: cat, sat (articles and punctuation dropped); reference: cat, sat, down -> P 1, R 2/3
    assert token_f1("The cat sat!", "a cat sat down") == pytest.approx(0.8)
    assert token_f1("hello", "goodbye") == 0.0
    assert token_f1("", "") == 1.0


def test_distinct_2_and_looping_share() -> None:
    # bigrams: (a b) (b c) | (a b) (b d) -> 3 distinct of 4
    assert distinct_n(["a b c", "a b d"], 2) == pytest.approx(0.75)
    assert looping_share(["fine thanks", "a b c a b c a b c", "x y z"]) == pytest.approx(1 / 3)


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile([10, 20, 30, 40, 50], 95) == pytest.approx(48.0)
