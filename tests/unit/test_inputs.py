"""What every message must be before it is stored (assistant/turn/inputs.py), each failure a sentence."""

from __future__ import annotations

import pytest

from assistant.config import LimitsSettings
from assistant.contracts import IncomingMessage, InvalidInput
from assistant.turn.inputs import check_message


def test_check_message_names_what_is_wrong() -> None:
    limits = LimitsSettings()
    with pytest.raises(InvalidInput, match="message id is longer than 255"):
        check_message(IncomingMessage("callback", "s", "hi", None, "x" * 256), limits, 100)
    with pytest.raises(InvalidInput, match="limit is 100") as raised:
        check_message(IncomingMessage("rest", "s", "x" * 101), limits, 100)
    assert raised.value.status == 413
