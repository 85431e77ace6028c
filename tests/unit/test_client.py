"""Rasa's HTTP client (plugins/nlu/rasa/client.py): the token never reaches an error message."""

from __future__ import annotations

import pytest


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
