"""The scrubbers (training/scrub.py) mask personal data in what training learns from."""

from __future__ import annotations


def test_the_default_scrubber_masks_cards_ibans_emails_and_phones() -> None:
    from training.scrub import default

    text = (
        "card 4111 1111 1111 1111, iban DE89 3704 0044 0532 0130 00 or GB82WEST12345698765432, "
        "mail ana@example.com, call +49 170 1234567; order 4711, not an IBAN: DE00 X234 5678 9012 3456 78"
    )
    assert default(text) == (
        "card <CARD>, iban <IBAN> or <IBAN>, mail <EMAIL>, call <PHONE>; order 4711, not an IBAN: DE00 X234 <PHONE>"
    )
