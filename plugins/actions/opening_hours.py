"""Demo action: opening hours, for one day when the message names one."""

from __future__ import annotations

from assistant.config import Settings
from assistant.contracts import ActionContext, ActionResult

HOURS = {
    "monday": "9:00-18:00",
    "tuesday": "9:00-18:00",
    "wednesday": "9:00-18:00",
    "thursday": "9:00-20:00",
    "friday": "9:00-18:00",
    "saturday": "10:00-16:00",
    "sunday": None,
}
SUMMARY = "We're open Monday to Friday 9:00-18:00 (Thursdays until 20:00), Saturday 10:00-16:00, closed on Sundays."


class OpeningHoursAction:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings

    async def run(self, context: ActionContext) -> ActionResult:
        day = next((str(e["value"]).lower() for e in context.entities if e.get("entity") == "day"), None)
        if day in ("today", "tomorrow", "weekend", None) or day not in HOURS:
            return ActionResult(SUMMARY)
        hours = HOURS[day]
        if hours is None:
            return ActionResult(f"We're closed on {day.capitalize()}s. {SUMMARY}")
        return ActionResult(f"On {day.capitalize()} we're open {hours}.")
