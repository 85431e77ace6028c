"""The demo bot's opening-hours action (plugins/actions/opening_hours.py)."""

from __future__ import annotations

from assistant.contracts import ActionContext
from plugins.actions.opening_hours import SUMMARY, OpeningHoursAction


async def hours(*days: str) -> str:
    entities = [{"entity": "day", "value": day} for day in days]
    return (
        await OpeningHoursAction().run(ActionContext("ana", "when are you open", "opening_hours", entities, {}))
    ).text


async def test_a_named_day_gets_its_hours_a_closed_day_says_so_and_anything_else_the_week() -> None:
    assert await hours("Thursday") == "On Thursday we're open 9:00-20:00."
    assert await hours("sunday") == f"We're closed on Sundays. {SUMMARY}"
    assert await hours("tomorrow") == SUMMARY and await hours() == SUMMARY and await hours("someday") == SUMMARY
