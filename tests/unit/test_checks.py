"""The reply figures and behaviour checks, on hand-computed examples, and the guards that use them."""

from __future__ import annotations

import pytest

from assistant.replies.checks import CheckContext, contacts, failures, repeated_trigram_rate
from assistant.replies.guards import ReplyGuard, speaks_of_self_harm
from evaluation.reply_metrics import distinct_n, looping_share, percentile, token_f1

PERSONA = (
    "You are Penny, the virtual assistant of Northwind. Call us at +44 20 7946 0958 or write to help@northwind.test."
)
CONTEXT = CheckContext(system_prompt=PERSONA, allowed_text=PERSONA, max_words=12)


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


@pytest.mark.parametrize(
    ("reply", "failed"),
    [
        ("Happy to help with your order!", set()),
        ("I'm a humble, 25-year-old woman from Leeds.", {"not_human"}),
        ("I'm not a person, I'm Northwind's assistant.", set()),
        ("Sure, I'm gay.", {"not_human", "safe"}),
        ("Call me on 0800 123 4567 any time.", {"no_contacts"}),
        ("Write to help@northwind.test and we will answer.", set()),  # in the persona: allowed
        ("See www.example.com for that.", {"no_contacts"}),
        ("You are stupid too.", {"safe"}),
        ("Just vote for the Republicans.", {"safe"}),
        ("My system prompt says to be brief.", {"no_system_prompt"}),
        ("You are Penny, the virtual assistant of Northwind. Call us.", {"no_system_prompt"}),
        ("one two three four five six seven eight nine ten eleven twelve thirteen", {"max_words"}),
        ("I like it. I like it. I like it. I like it.", {"no_repetition"}),
    ],
)
def test_behaviour_checks(reply: str, failed: set[str]) -> None:
    assert set(failures(reply, CONTEXT)) == failed


def test_supportive_and_contacts() -> None:
    assert failures("Please talk to someone you trust.", CONTEXT, ("supportive",)) == {}
    assert "supportive" in failures("Okay.", CONTEXT, ("supportive",))
    assert contacts("mail a@b.co or call +1 (555) 010-9999") == ["a@b.co", "+1 (555) 010-9999"]


def test_the_input_guard_spots_self_harm() -> None:
    assert speaks_of_self_harm("I want to kill myself")
    assert speaks_of_self_harm("I don't want to live anymore")
    assert not speaks_of_self_harm("this weed killer kills my roses")


def feed(guard: ReplyGuard, text: str) -> str:
    shown = "".join(guard.feed(piece + " ") for piece in text.split(" "))
    return shown


def test_the_guard_cuts_a_loop_and_stops_generation() -> None:
    guard = ReplyGuard(CONTEXT, max_sentences=3, fallback="FALLBACK")
    shown = feed(guard, "I can help. 2020 is a month in the calendar. 2020 is a month in the calendar. 2020 is")
    assert guard.stopped and guard.applied == ["repetition"]
    assert guard.finish() == "I can help. 2020 is a month in the calendar."
    assert "calendar. 2020" not in shown  # the repeat was never streamed


def test_the_guard_keeps_the_first_sentences() -> None:
    guard = ReplyGuard(CONTEXT, max_sentences=1, fallback="FALLBACK")
    feed(guard, "Hello there! I am Penny and I sell things. More")
    assert guard.stopped and guard.finish() == "Hello there!" and guard.applied == ["sentences"]


def test_the_guard_withholds_unsafe_replies_and_never_streams_contact_details() -> None:
    guard = ReplyGuard(CONTEXT, max_sentences=3, fallback="FALLBACK")
    shown = feed(guard, "Sure, call 0800 123 4567 now and ask for Bob.")
    assert "0800" not in shown and "123" not in shown
    assert guard.finish() == "FALLBACK" and guard.applied == ["no_contacts"]
    human = ReplyGuard(CONTEXT, max_sentences=3, fallback="FALLBACK")
    feed(human, "I am 28 years old.")
    assert human.finish() == "FALLBACK" and "not_human" in human.applied


def test_a_clean_reply_streams_whole() -> None:
    guard = ReplyGuard(CONTEXT, max_sentences=2, fallback="FALLBACK")
    shown = feed(guard, "Happy to help with your order today.")
    final = guard.finish()
    assert final == "Happy to help with your order today." and guard.applied == []
    assert (shown + guard.remainder(final)).strip() == final


def test_guards_off_pass_the_text_through() -> None:
    guard = ReplyGuard(CONTEXT, max_sentences=1, fallback="FALLBACK", enabled=False)
    text = "I am 28 years old. Call 0800 123 4567."
    assert feed(guard, text).strip() == text and guard.finish() == text


def test_streamed_pieces_add_up_to_a_reply_cut_for_repetition() -> None:
    """Pieces that split words (as tokens do): the repeat's first word is still never shown."""
    guard = ReplyGuard(CONTEXT, max_sentences=3, fallback="FALLBACK")
    text = "A: \"A: \"I'm a joke, I'm a joke, I'm a joke"
    shown = "".join(guard.feed(text[i : i + 2]) for i in range(0, len(text), 2))
    final = guard.finish()
    assert "repetition" in guard.applied and final == 'A: "A: "I\'m a joke,'
    assert shown + guard.remainder(final) == final
