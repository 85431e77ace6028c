"""`assistant telegram set-webhook`: the set-up step the Telegram channel needs on Telegram's side."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from assistant.config import read_settings
from wiring.cli.context import command
from wiring.cli.terminal import console, fail

telegram_app = typer.Typer(help="Telegram channel set-up.", no_args_is_help=True)


@command(telegram_app, "set-webhook")
def set_webhook(
    url: Annotated[str, typer.Option(help="the assistant's public https URL, as Telegram reaches it")],
) -> None:
    """Register the webhook URL and its secret token with Telegram (setWebhook)."""
    from telegram.error import TelegramError

    from assistant.contracts import CHANNELS
    from assistant.infra import entry_points

    if not url.startswith(("https://", "http://")):
        raise fail(f"--url must be an http(s) URL, not {url!r}")
    channel = entry_points.load(CHANNELS, "telegram")(read_settings())

    async def run() -> str:
        try:
            return await channel.set_webhook(url)
        finally:
            await channel.aclose()

    try:
        hook = asyncio.run(run())
    except TelegramError as exc:
        raise fail(f"Telegram refused the webhook: {exc}") from exc
    except OSError as exc:
        raise fail(f"could not reach the Telegram Bot API: {exc}") from exc
    console.print(f"Telegram now sends updates to {hook} (with the secret token)")


def register(app: typer.Typer) -> None:
    app.add_typer(telegram_app, name="telegram")
