"""The behaviour checks (assistant/replies/checks.py) on hand-computed replies."""

from __future__ import annotations

import pytest

from assistant.replies.checks import CheckContext, contacts, failures

PERSONA = (
    "You are Penny, the virtual assistant of Northwind. Call us at +44 20 7946 0958 or write to help@northwind.test."
)
CONTEXT = CheckContext(system_prompt=PERSONA, allowed_text=PERSONA, max_words=12)


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
