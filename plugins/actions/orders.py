"""Demo action: the status of an order, from its number (a stand-in for the shop's order system)."""

from __future__ import annotations

import re

from assistant.config import Settings
from assistant.contracts import ActionContext, ActionResult

STATUSES = (
    "is being packed in our warehouse",
    "has shipped and is on its way",
    "is out for delivery today",
    "was delivered",
)


class OrderStatusAction:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings

    async def run(self, context: ActionContext) -> ActionResult:
        raw = str(context.slots.get("order_id") or "")
        digits = re.sub(r"\D", "", raw)
        if not digits:
            return ActionResult("Sure, I can check that. What is your order number?")
        status = STATUSES[int(digits) % len(STATUSES)]
        return ActionResult(f"Order #{digits} {status}.", slots={"order_id": digits})
