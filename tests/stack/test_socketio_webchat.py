"""Rasa users' own web widget against our socket.io channel: the real ``rasa-webchat`` (npm, 1.0.1, the bundle
its README embeds) in headless Chromium, on a page of its own origin, talking to the running assistant (real
Rasa and vLLM). It connects, keeps its session across a reload, renders text, buttons and an image, and a
click on a button sends its payload."""

from __future__ import annotations

import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from assistant.services import cache_root
from tests.conftest import Stack

VERSION = "1.0.1"
ORIGIN = "http://shop.example"  # the page's own origin (served by Playwright), so localStorage works


def webchat_bundle() -> Path:
    """rasa-webchat's browser bundle, from the npm registry once (``npm pack``), cached beside the environments."""
    folder = cache_root() / "npm" / f"rasa-webchat-{VERSION}"
    bundle = folder / "package" / "lib" / "index.js"
    if not bundle.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        packed = subprocess.run(
            ["npm", "pack", f"rasa-webchat@{VERSION}", "--silent"], cwd=folder, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert packed.returncode == 0, f"npm pack rasa-webchat failed: {packed.stderr[-2000:]}"
        with tarfile.open(folder / packed.stdout.strip().splitlines()[-1]) as archive:
            archive.extractall(folder, filter="data")
    return bundle


def page_html(assistant_url: str) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head><body>
<h1>A shop using Rasa's web widget</h1>
<script src="{ORIGIN}/rasa-webchat.js"></script>
<script>window.WebChat.default({{
  socketUrl: "{assistant_url}", socketPath: "/socket.io/", embedded: true, title: "Penny",
  customMessageDelay: () => 0, params: {{storage: "local"}}
}}, null);</script></body></html>"""


@pytest.fixture
def shop(browser: Browser, stack: Stack) -> Iterator[Page]:
    bundle = webchat_bundle().read_bytes()
    html = page_html(stack.url).encode()
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def serve(route: Route) -> Any:
        if route.request.url.endswith("/rasa-webchat.js"):
            return route.fulfill(body=bundle, content_type="text/javascript")
        return route.fulfill(body=html, content_type="text/html")

    page.route(f"{ORIGIN}/**", serve)
    yield page
    context.close()
    assert not errors, errors


def bot_texts(page: Page) -> Any:
    return page.locator(".rw-response .rw-markdown, .rw-response")


def test_rasa_webchat_talks_to_our_socketio_channel(shop: Page, stack: Stack) -> None:
    shop.goto(f"{ORIGIN}/")
    box = shop.get_by_placeholder("Type a message...")
    expect(box).to_be_visible()
    box.fill("what can you do")
    box.press("Enter")
    expect(shop.get_by_text("I can check the status of an order", exact=False)).to_be_visible()
    replies = shop.locator(".rw-reply")
    expect(replies).to_have_count(3)
    expect(shop.locator(".rw-image-frame, img.rw-image-frame, .rw-image img").first).to_be_attached()
    session = shop.evaluate("JSON.parse(localStorage.getItem('chat_session')).session_id")
    assert session

    replies.filter(has_text="Opening hours").click()
    # the session id is the conversation's sender (session_persistence)
    stack.wait_until(lambda: stack.turn(session)[0]["text"] == "/opening_hours", 60, "the button's payload")
    user, bot = stack.turn(session)
    assert (user["intent"], user["nlu_model"], bot["answered_by"]) == ("opening_hours", "payload",
                                                                      "action_opening_hours")  # fmt: skip
    expect(shop.get_by_text(bot["text"].split(".")[0], exact=False)).to_be_visible()

    shop.reload()  # the same session: the conversation goes on
    box = shop.get_by_placeholder("Type a message...")
    box.fill("thank you")
    box.press("Enter")
    stack.wait_until(lambda: stack.turn(session)[0]["text"] == "thank you", 60, "the message after the reload")
    assert shop.evaluate("JSON.parse(localStorage.getItem('chat_session')).session_id") == session
