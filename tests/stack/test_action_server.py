"""Custom actions on a real Rasa action server: `assistant up` serves the demo bot's actions/ package with
rasa-sdk (Rasa's environment); `loyalty_points` is answered by `action_loyalty_points` there, which gets the
tracker built from the log, sets the `points` slot and utters a response the app renders; the next response
(`utter_thank_you`) uses the slot. With the server gone, the intent's own response answers."""

from __future__ import annotations

import json
import uuid

from tests.conftest import Stack


def test_an_action_on_the_action_server_sets_a_slot_the_next_response_uses(stack: Stack) -> None:
    sender = f"points-{uuid.uuid4().hex[:8]}"
    assert stack.services()["actions"]["pid"]
    reply = stack.reply(sender, "how many points do I have")
    user, bot = stack.turn(sender)
    assert (user["intent"], bot["answered_by"], bot["error"]) == ("loyalty_points", "action_loyalty_points", None)
    points = 200 + sum(map(ord, sender)) % 300  # what the demo action computes
    assert reply.startswith(f"You have {points} points")
    slots = stack.rows("SELECT slots FROM conversations WHERE sender_id = ?", sender)[0]["slots"]
    assert (slots if isinstance(slots, dict) else json.loads(slots))["points"] == points
    thanks = stack.reply(sender, "thank you")
    assert thanks == f"You're welcome! Enjoy your {points} points, and let me know if there's anything else."
