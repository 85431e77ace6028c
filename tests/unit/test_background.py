"""Background loops (assistant/infra/background.py): cancelling one waits until it has stopped."""

from __future__ import annotations

import asyncio

from assistant.infra.background import cancel


async def test_cancel_stops_a_loop_and_waits_until_it_has() -> None:
    cleaned_up = asyncio.Event()

    async def loop() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0)  # its own clean-up still runs before cancel returns
            cleaned_up.set()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    await cancel(task)
    assert task.cancelled() and cleaned_up.is_set()


async def test_cancelling_no_loop_does_nothing() -> None:
    await cancel(None)
