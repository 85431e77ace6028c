"""The lines in front of the backends and the shares (assistant/turn/admission.py): busy is not down, a full line
refuses before storing, rate limits per sender and address."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from assistant.turn.admission import Capacity
from plugins.channels.callback import signed_headers
from tests.unit.apps import ADMIN, WEBHOOK, count, settings_for, start
from tests.unit.fakes import FakeNLU


async def test_a_capacity_lets_through_at_most_its_concurrency_in_arrival_order() -> None:
    capacity, running, most, order = Capacity("test", 2), 0, 0, []

    async def call(n: int) -> None:
        nonlocal running, most
        async with capacity.slot():
            running += 1
            most = max(most, running)
            order.append(n)
            await asyncio.sleep(0.01)
            running -= 1

    tasks = [asyncio.create_task(call(n)) for n in range(10)]
    await asyncio.sleep(0)
    assert capacity.waiting == 8 and capacity.in_flight == 2
    await asyncio.gather(*tasks)
    assert most == 2 and order == list(range(10)) and capacity.waiting == capacity.in_flight == 0


class SlowNLU(FakeNLU):
    """An NLU server that fails (as a flooded Rasa times out) when more than two parses reach it at once."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.at_once = self.most = 0

    async def parse(self, text: str) -> Any:
        self.at_once += 1
        self.most = max(self.most, self.at_once)
        try:
            await asyncio.sleep(0.02)
            if self.at_once > 2:
                raise AssertionError("more parses in flight than the NLU server takes")
            return await super().parse(text)
        finally:
            self.at_once -= 1


async def test_busy_is_not_down_turns_wait_in_line_for_the_nlu(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, limits={"nlu_concurrency": 2, "per_address": ""})
    made: list[SlowNLU] = []

    def nlu(*args: Any) -> SlowNLU:
        made.append(SlowNLU(*args))
        return made[-1]

    async with start(settings, nlu=nlu) as app:
        replies = await asyncio.gather(*(app.say(f"user-{n}", "hello") for n in range(20)))
        reasons = {r["reason"] for r in app.rows("SELECT reason FROM messages WHERE role = 'user'")}
    assert made[0].most == 2 and reasons == {"confident"} and len(set(replies)) == 1


async def test_a_full_line_refuses_synchronous_turns_before_storing_them(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, limits={"llm_concurrency": 1, "max_waiting": 1, "retry_after_s": 7})
    async with start(settings) as app:
        app.llm.script.hang = True
        first = asyncio.create_task(app.http.post(WEBHOOK, json={"sender": "a", "message": "how are you"}))
        second = asyncio.create_task(app.http.post(WEBHOOK, json={"sender": "b", "message": "how are you"}))
        pipeline = app.app.state.pipeline
        for _ in range(200):
            if pipeline.admission.llm.waiting == 1:
                break
            await asyncio.sleep(0.01)
        stored = count(app)
        for path, body in ((WEBHOOK, {"sender": "c", "message": "hello"}),
                           ("/webhooks/rest/stream", {"sender": "c", "message": "hello"}),
                           ("/webhooks/web/stream", {"sender": "c" * 16, "message": "hello"})):  # fmt: skip
            refused = await app.http.post(path, json=body)
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "7"
            assert "nothing was stored" in refused.json()["message"] and "llm" in refused.json()["message"]
        assert count(app) == stored
        status = (await app.http.get("/status", headers=ADMIN)).json()
        assert status["backends"]["llm"] == {"waiting": 1, "in_flight": 1, "concurrency": 1}
        metrics = (await app.http.get("/metrics")).text
        assert 'assistant_refused_total{why="overloaded"} 3.0' in metrics
        assert 'assistant_backend_waiting{backend="llm"} 1.0' in metrics
        # out-of-band channels still take messages: they are answered as the line moves
        raw = json.dumps({"sender": "svc", "message": "hello"}).encode()
        taken = await app.http.post(
            "/webhooks/callback/webhook", content=raw, headers=signed_headers("unit-callback-signing-secret", raw)
        )
        assert taken.status_code == 200 and count(app) == stored + 1
        app.llm.script.hang = False
        first.cancel()
        second.cancel()
        await asyncio.gather(first, second, return_exceptions=True)


async def test_rate_limits_per_sender_and_per_address(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, limits={"per_sender": "3/minute", "per_address": "5/minute"})
    async with start(settings) as app:
        for _ in range(3):
            assert (await app.http.post(WEBHOOK, json={"sender": "ann", "message": "hello"})).status_code == 200
        refused = await app.http.post(WEBHOOK, json={"sender": "ann", "message": "hello"})
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 61
        assert "sender" in refused.json()["message"] and "nothing was stored" in refused.json()["message"]
        assert count(app) == 6
        for sender in ("bob", "cy"):
            assert (await app.http.post(WEBHOOK, json={"sender": sender, "message": "hello"})).status_code == 200
        by_address = await app.http.post(WEBHOOK, json={"sender": "dee", "message": "hello"})
        assert by_address.status_code == 429 and "address" in by_address.json()["message"]


async def test_out_of_band_turns_past_the_cap_wait_stored_for_recovery(tmp_path: Path) -> None:
    from assistant.workers.delivery import DeliveryWorker

    settings = settings_for(tmp_path, limits={"max_background_turns": 1}, delivery={"recover_after_s": 0})
    async with start(settings) as app:
        app.llm.script.hang = True
        for n in range(3):
            raw = json.dumps({"sender": f"svc{n}", "message": "how are you"}).encode()
            headers = signed_headers("unit-callback-signing-secret", raw)
            assert (await app.http.post("/webhooks/callback/webhook", content=raw, headers=headers)).status_code == 200
        pipeline = app.app.state.pipeline
        assert len(pipeline._answering) == 1 and count(app) == 3  # every message stored, one answered at a time
        app.llm.script.hang = False
        for task in list(pipeline._answering.values()):
            task.cancel()
        await asyncio.sleep(0.05)
        worker = DeliveryWorker(settings, app.app.state.store, pipeline, {}, asyncio.Event())
        worker.channels = {"callback": object()}  # what recovery looks for; nothing is delivered here
        for _ in range(3):
            await worker.recover()
            await asyncio.gather(*pipeline._answering.values())
        replies = app.rows("SELECT count(*) AS n FROM messages WHERE role = 'bot'")[0]["n"]
        assert replies == 3
