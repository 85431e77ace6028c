"""Rasa users' own web widget against our socket.io channel: the real ``rasa-webchat`` (npm, 1.0.1, the bundle
its README embeds) in headless Chromium, on a page of its own origin, talking to the running assistant (real
Rasa and vLLM). It connects, keeps its session across a reload, renders text, buttons and an image, and a
click on a button sends its payload."""

from __future__ import annotations

import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from assistant.infra.services import cache_root
from tests.conftest import Stack
from tests.standins import LoopbackServer, Recorded, Reply

VERSION = "1.0.1"


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


class WebchatSite(LoopbackServer):
    """A shop's page that embeds rasa-webchat as its README shows, served from loopback like the assistant (so
    Chromium's private network rules let the page reach it)."""

    def __init__(self, bundle: bytes, assistant_url: str) -> None:
        self.bundle, self.assistant_url = bundle, assistant_url
        super().__init__()

    def answer(self, request: Recorded) -> Reply:
        if request.path.startswith("/rasa-webchat.js"):
            return 200, {"Content-Type": "text/javascript"}, self.bundle
        return 200, {"Content-Type": "text/html"}, page_html(self.assistant_url).encode()


def page_html(assistant_url: str) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head><body>
<h1>A shop using Rasa's web widget</h1>
<script src="/rasa-webchat.js"></script>
<script>window.WebChat.default({{
  socketUrl: "{assistant_url}", socketPath: "/socket.io/", embedded: true, title: "Penny",
  customMessageDelay: () => 0, params: {{storage: "local"}}
}}, null);</script></body></html>"""


@pytest.fixture
def shop(browser: Browser, stack: Stack) -> Iterator[Page]:
    """A page of the shop's site (its URL: ``page.shop_url``)."""
    site = WebchatSite(webchat_bundle().read_bytes(), stack.url)
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.shop_url = site.url  # type: ignore[attr-defined]
    yield page
    context.close()
    site.close()
    assert not errors, errors


def send(page: Page, text: str) -> None:
    box = page.get_by_placeholder("Type a message...")
    box.fill(text)
    box.press("Enter")


def test_rasa_webchat_talks_to_our_socketio_channel(shop: Page, stack: Stack) -> None:
    shop.goto(f"{shop.shop_url}/")  # type: ignore[attr-defined]
    expect(shop.get_by_placeholder("Type a message...")).to_be_visible(timeout=30_000)  # connected
    send(shop, "what can you do")
    expect(shop.get_by_text("I can check the status of an order", exact=False)).to_be_visible()
    replies = shop.locator(".rw-reply")
    expect(replies).to_have_count(3)  # the response's buttons, as rasa-webchat draws quick replies
    session = shop.evaluate("JSON.parse(localStorage.getItem('chat_session')).session_id")
    assert session  # the conversation's sender (session_persistence)

    replies.filter(has_text="Opening hours").click()
    stack.wait_until(lambda: stack.turn(session)[0]["text"] == "/opening_hours", 60, "the button's payload")
    user, bot = stack.turn(session)
    assert (user["intent"], user["nlu_model"], bot["answered_by"]) == ("opening_hours", "payload",
                                                                      "action_opening_hours")  # fmt: skip
    expect(shop.get_by_text(bot["text"][:30], exact=False)).to_be_visible()

    send(shop, "/store_location")  # the stores response has an image
    expect(shop.locator("img.rw-image-frame")).to_have_count(1)
    assert shop.locator("img.rw-image-frame").get_attribute("src").startswith("data:image/svg+xml")  # type: ignore[union-attr]

    shop.reload()  # the same session: the conversation is shown again and goes on
    expect(shop.get_by_text("I can check the status of an order", exact=False)).to_be_visible(timeout=30_000)
    send(shop, "thank you")
    stack.wait_until(lambda: stack.turn(session)[0]["text"] == "thank you", 60, "the message after the reload")
    assert shop.evaluate("JSON.parse(localStorage.getItem('chat_session')).session_id") == session
