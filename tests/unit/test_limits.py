"""Holding up under load and bad input (in-process, with the contracts' fakes): the backends' lines, refusing
synchronous turns before anything is stored (503/429 with Retry-After), the body and metadata limits, input
no channel may store, a JSON body whatever its Content-Type, Slack's escaping and what /status tells whom."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from assistant.config import LimitsSettings
from assistant.contracts import IncomingMessage, InvalidInput
from assistant.turn.admission import Capacity
from assistant.turn.inputs import check_message
from plugins.channels.callback import signed_headers
from plugins.channels.slack import _blocks, escape
from tests.unit.fakes import FakeNLU
from tests.unit.test_app import ADMIN, App, settings_for, slack_headers, start

WEBHOOK = "/webhooks/rest/webhook"


def count(app: App) -> int:
    return len(app.rows("SELECT id FROM messages"))


# ---------------------------------------------------------------- the backends' lines


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


# ---------------------------------------------------------------- bad input: a 4xx, nothing stored


@pytest.fixture
async def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    async with start(settings_for(tmp_path, limits={"max_body_bytes": 65536, "max_metadata_bytes": 1000})) as app:
        yield app


BAD_BODIES = {
    "lone surrogate": (b'{"sender": "s", "message": "hi \\ud800 there"}', 422, "unicode"),
    "NUL character": (b'{"sender": "s", "message": "hi \\u0000"}', 422, "NUL"),
    "invalid UTF-8": (b'{"sender": "s", "message": "hi \xff\xfe"}', 422, "not valid JSON"),
    "not JSON": (b"sender=s&message=hi", 422, "JSON"),
    "deep JSON": (
        b'{"sender": "s", "message": "hi", "metadata": ' + b"[" * 20000 + b"]" * 20000 + b"}",
        422,
        "not valid JSON",
    ),
    "deep metadata": (b'{"sender": "s", "message": "hi", "metadata": {"a": [[[[[[[[[1]]]]]]]]]}}', 422, "nested"),
    "big metadata": (
        json.dumps({"sender": "s", "message": "hi", "metadata": {"x": "y" * 2000}}).encode(),
        413,
        "metadata",
    ),
    "huge number": (b'{"sender": "s", "message": "hi", "metadata": {"n": 1e999}}', 422, "number"),
    "long sender": (json.dumps({"sender": "s" * 300, "message": "hi"}).encode(), 422, "sender"),
    "surrogate in sender": (b'{"sender": "\\udfff", "message": "hi"}', 422, "unicode"),
    "blank": (b'{"sender": "s", "message": "   "}', 422, "empty"),
}


@pytest.mark.parametrize("case", BAD_BODIES)
async def test_bad_input_gets_a_4xx_with_a_sentence_and_nothing_is_stored(app: App, case: str) -> None:
    body, status, words = BAD_BODIES[case]
    for path in (WEBHOOK, "/webhooks/rest/stream"):
        response = await app.http.post(path, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == status, (case, response.text)
        message = response.json()["message"]
        assert message and words in message, (case, message)
    assert count(app) == 0


async def test_a_body_over_the_limit_is_refused_before_it_is_read(app: App) -> None:
    body = json.dumps({"sender": "s", "message": "x" * 70000}).encode()
    for path in (WEBHOOK, "/webhooks/slack/webhook", "/webhooks/telegram/webhook", "/webhooks/callback/webhook"):
        response = await app.http.post(path, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 413, (path, response.text)

    async def chunked() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b" " * 4096

    response = await app.http.post(WEBHOOK, content=chunked(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and count(app) == 0


async def test_a_json_body_is_read_whatever_its_content_type(app: App) -> None:
    body = json.dumps({"sender": "curl", "message": "hello"})
    for content_type in ("application/x-www-form-urlencoded", "text/plain", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = await app.http.post(WEBHOOK, content=body, headers=headers)
        assert response.status_code == 200 and response.json()[0]["recipient_id"] == "curl"


async def test_out_of_band_channels_refuse_what_cannot_be_stored(app: App) -> None:
    event = {"type": "event_callback", "team_id": "T1", "event_id": "Ev-nul", "event": {
        "type": "app_mention", "channel": "C1", "user": "U1", "ts": "1.0", "text": "hi \u0000"}}  # fmt: skip
    raw = json.dumps(event).encode()
    response = await app.http.post("/webhooks/slack/webhook", content=raw, headers=slack_headers(raw))
    assert response.status_code == 422 and "NUL" in response.json()["message"]
    odd = {**slack_headers(raw), "X-Slack-Signature": "v0=\u00e9".encode("latin-1")}
    assert (await app.http.post("/webhooks/slack/webhook", content=raw, headers=odd)).status_code == 401
    assert count(app) == 0


def test_check_message_names_what_is_wrong() -> None:
    limits = LimitsSettings()
    with pytest.raises(InvalidInput, match="message id is longer than 255"):
        check_message(IncomingMessage("callback", "s", "hi", None, "x" * 256), limits, 100)
    with pytest.raises(InvalidInput, match="limit is 100") as raised:
        check_message(IncomingMessage("rest", "s", "x" * 101), limits, 100)
    assert raised.value.status == 413


# ---------------------------------------------------------------- exposure


def test_slack_replies_are_escaped() -> None:
    assert escape("<!channel> a & b <@U1> <http://x|y>") == "&lt;!channel&gt; a &amp; b &lt;@U1&gt; &lt;http://x|y&gt;"
    from assistant.contracts import Citation, Outgoing

    citation = Citation(1, 7, "Ship <!here>", "https://example.com/ship")
    reply = Outgoing("k", "slack", "C1:U1", "<!channel> see [1]", 2, 1, {}, 1, {}, [citation])
    blocks = _blocks(reply)
    assert blocks is not None and blocks[0]["text"]["text"] == "&lt;!channel&gt; see [1]"
    assert "<https://example.com/ship|Ship &lt;!here&gt;>" in blocks[1]["elements"][0]["text"]


async def test_status_tells_anonymous_callers_only_up_or_down(app: App) -> None:
    anonymous = (await app.http.get("/status")).json()
    assert set(anonymous) == {"version", "nlu", "llm"} and anonymous["nlu"] == {"ok": True}
    assert "app.db" not in json.dumps(anonymous)
    wrong = (await app.http.get("/status", headers={"Authorization": "Bearer nope"})).json()
    assert "database" not in wrong
    full = (await app.http.get("/status", headers=ADMIN)).json()
    assert full["database"].endswith("app.db") and "url" in full["nlu"]


async def test_the_openapi_schema_states_the_refusals(app: App) -> None:
    schema = (await app.http.get("/openapi.json")).json()
    for path in (WEBHOOK, "/webhooks/rest/stream", "/webhooks/web/stream"):
        assert {"413", "422", "429", "503"} <= set(schema["paths"][path]["post"]["responses"]), path
    message = schema["components"]["schemas"]["RestMessage"]["properties"]["message"]
    assert message.get("minLength") == 1


async def test_the_widget_history_reads_only_its_conversations_feedback(app: App) -> None:
    from sqlalchemy.dialects import sqlite

    from assistant.store import feedback

    query = feedback.history_query("web", "x" * 16, 50).compile(
        dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
    )
    plan = " | ".join(r["detail"] for r in app.rows(f"EXPLAIN QUERY PLAN {query}"))
    assert "SCAN feedback" not in plan and "feedback USING INDEX" in plan, plan


async def test_migrations_run_without_foreign_keys_and_the_app_with_them(tmp_path: Path) -> None:
    from sqlalchemy import text

    from assistant.store import Store
    from assistant.store.store import make_engine

    url = f"sqlite+aiosqlite:///{tmp_path / 'fk.db'}"
    migrating = make_engine(url, foreign_keys=False)
    async with migrating.connect() as conn:
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 0
    await migrating.dispose()
    store = Store(url)
    assert await store.transaction(lambda conn: conn.execute(text("PRAGMA foreign_keys")).scalar()) == 1
    await store.aclose()


async def test_the_rasa_token_never_reaches_an_error_message() -> None:
    from aiohttp import web

    from plugins.nlu.rasa.client import RasaClient

    async def refuse(_request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    server = web.Application()
    server.router.add_post("/model/parse", refuse)
    runner = web.AppRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    client = RasaClient(f"http://127.0.0.1:{port}", token="very-secret-rasa-token")
    try:
        with pytest.raises(Exception) as raised:
            await client.parse("hi")
        assert "very-secret" not in repr(raised.value) and "500" in str(raised.value)
        assert raised.value.__cause__ is None and raised.value.__suppress_context__
        down = RasaClient("http://127.0.0.1:9", token="very-secret-rasa-token")
        with pytest.raises(Exception) as raised:
            await down.parse("hi")
        assert "very-secret" not in repr(raised.value)
        await down.aclose()
    finally:
        await client.aclose()
        await runner.cleanup()


def test_up_generates_the_servers_secrets_once_and_every_command_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant.config import Settings

    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    monkeypatch.delenv("ASSISTANT_RASA__TOKEN", raising=False)
    monkeypatch.delenv("ASSISTANT_VLLM__API_KEY", raising=False)
    settings = Settings(data_dir=tmp_path)
    assert settings.rasa.token is None and settings.vllm.api_key == "EMPTY"
    settings.generate_server_secrets()
    token, key = settings.rasa.token, settings.vllm.api_key
    assert token and len(token) >= 32 and key and key != "EMPTY"
    assert (tmp_path / "run" / "rasa-token").stat().st_mode & 0o777 == 0o600
    import os

    assert os.environ["ASSISTANT_RASA__TOKEN"] == token  # for the app `up` starts
    monkeypatch.delenv("ASSISTANT_RASA__TOKEN")
    monkeypatch.delenv("ASSISTANT_VLLM__API_KEY")
    again = Settings(data_dir=tmp_path)  # another command on the same data folder
    assert (again.rasa.token, again.vllm.api_key) == (token, key)
    again.generate_server_secrets()
    assert again.rasa.token == token  # not regenerated
    external = Settings(data_dir=tmp_path, rasa={"managed": False})
    assert external.rasa.token is None  # a server `up` does not start keeps its own settings


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


async def test_metrics_and_docs_can_be_kept_for_the_admin_token(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, public_metrics=False, public_docs=False)
    async with start(settings) as app:
        for path in ("/metrics", "/openapi.json"):
            assert (await app.http.get(path)).status_code == 401, path
            assert (await app.http.get(path, headers=ADMIN)).status_code == 200, path
        assert (await app.http.get("/docs")).status_code == 404
    async with start(settings_for(tmp_path)) as app:  # the default: public
        assert (await app.http.get("/metrics")).status_code == 200
        assert (await app.http.get("/docs")).status_code == 200


async def test_rasa_stream_mode_answers_one_message_per_line(app: App) -> None:
    """Rasa's console client (`rasa shell` in stream mode) posts to the webhook with ``?stream=true&token=``
    and reads one JSON message per line."""
    response = await app.http.post(f"{WEBHOOK}?stream=true&token=x", json={"sender": "console", "message": "hello"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    lines = [json.loads(line) for line in response.text.splitlines() if line]
    assert lines and all(m["recipient_id"] == "console" for m in lines) and "text" in lines[0]
    plain = await app.http.post(WEBHOOK, json={"sender": "console", "message": "hello"})
    assert plain.json() == lines
