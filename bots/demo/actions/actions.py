"""The demo bot's custom action on Rasa's action server (rasa-sdk), as a Rasa bot has them: `assistant up`
serves this package with `python -m rasa_sdk` in the Rasa environment and calls it for `loyalty_points`."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher


class ActionLoyaltyPoints(Action):
    """The visitor's points (a stand-in for the shop's loyalty system), kept in the `points` slot."""

    def name(self) -> str:
        return "action_loyalty_points"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        points = 200 + sum(map(ord, tracker.sender_id)) % 300
        dispatcher.utter_message(response="utter_points_balance")
        return [SlotSet("points", points)]
