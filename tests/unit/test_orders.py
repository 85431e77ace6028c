"""The demo bot's order-status action (plugins/actions/orders.py)."""

from __future__ import annotations

from assistant.contracts import ActionContext
from plugins.actions.orders import OrderStatusAction


def context(**slots: object) -> ActionContext:
    return ActionContext("ana", "where is my order", "order_status", [], dict(slots))


async def test_an_order_number_gets_its_status_and_is_remembered_as_digits() -> None:
    result = await OrderStatusAction().run(context(order_id="#12345"))
    assert result.text == "Order #12345 has shipped and is on its way." and result.slots == {"order_id": "12345"}


async def test_without_a_number_it_asks_for_one() -> None:
    result = await OrderStatusAction().run(context())
    assert result.text == "Sure, I can check that. What is your order number?" and result.slots == {}
