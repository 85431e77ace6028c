"""The web widget in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against the
running assistant with real Rasa and vLLM. Screenshots go to var/test-artifacts/ (ASSISTANT_TEST_ARTIFACTS)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import ARTIFACTS, LLM_TALK, Stack
from tests.standins import HostSite

PHONE = {"width": 390, "height": 844}
XSS = '<img src=x onerror="window.__pwned = 1"><script>window.__pwned = 2</script>'

# Records every text the new bot bubble shows while it grows, and whether the typing indicator appeared.
WATCH_STREAM = """() => {
  window.__seen = []; window.__typingShown = false;
  const log = document.querySelector('.aw-log'), typing = document.querySelector('.aw-typing');
  new MutationObserver(() => { if (!typing.hidden) window.__typingShown = true; })
    .observe(typing, {attributes: true});
  const before = log.querySelectorAll('.aw-bot .aw-text').length;
  new MutationObserver(() => {
    const bots = log.querySelectorAll('.aw-bot .aw-text');
    if (bots.length > before) window.__seen.push(bots[bots.length - 1].textContent);
  }).observe(log, {childList: true, subtree: true, characterData: true});
}"""


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def say(page: Page, text: str) -> None:
    """Type a message and send it with the keyboard only."""
    page.get_by_label("Your message").focus()
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def bot_replies(page: Page) -> Any:
    return page.locator(".aw-bot[data-message-id]")


def test_chat_page_intent_stream_feedback_reload_and_escaping(page: Page, stack: Stack) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{stack.url}/chat")
    expect(page.get_by_text("Hi! Ask me anything.")).to_be_visible()

    # an intent: the templated reply appears whole, without feedback buttons
    say(page, "what payment methods do you accept")
    expect(bot_replies(page)).to_have_count(1)
    first = bot_replies(page).nth(0)
    expect(first).to_have_attribute("data-route", "intent")
    sender = page.evaluate("localStorage.getItem('assistant-widget-sender')")
    user, bot = stack.turn(sender)
    assert user["route"] == "intent" and first.locator(".aw-text").text_content() == bot["text"]
    assert first.get_by_role("button", name="Good answer").count() == 0

    # small talk: the LLM's reply grows token by token, after the typing indicator
    page.evaluate(WATCH_STREAM)
    say(page, LLM_TALK[0])
    expect(bot_replies(page)).to_have_count(2)
    second = bot_replies(page).nth(1)
    expect(second).to_have_attribute("data-route", "llm")
    seen = [text for text in page.evaluate("window.__seen") if text]
    final = second.locator(".aw-text").text_content()
    assert page.evaluate("window.__typingShown")
    # it grows piece by piece (the guards hold back the last 4 words, so a short reply grows in few steps)
    assert len(set(seen)) >= 2 and len(seen[0]) < len(final), f"the reply did not grow piece by piece: {seen}"
    assert all(final.startswith(text) for text in seen), (seen, final)
    _, llm_bot = stack.turn(sender)
    assert final == llm_bot["text"] and llm_bot["route"] == "llm"
    page.screenshot(path=str(ARTIFACTS / "widget-chat.png"), full_page=True)

    # thumbs up writes a feedback row for that reply
    second.get_by_role("button", name="Good answer").click()
    expect(second.get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "true")
    rows = stack.rows("SELECT * FROM feedback WHERE message_id = ?", llm_bot["id"])
    assert [r["rating"] for r in rows] == ["up"]

    # "suggest a better answer", keyboard only
    second.get_by_role("button", name="Suggest a better answer").focus()
    page.keyboard.press("Enter")
    page.keyboard.type("Why do cats sit on keyboards? To keep an eye on the mouse.")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Thanks, your suggestion was saved.")).to_be_visible()
    rows = stack.rows("SELECT * FROM feedback WHERE message_id = ? AND correction IS NOT NULL", llm_bot["id"])
    assert rows[0]["correction"] == "Why do cats sit on keyboards? To keep an eye on the mouse."

    # markup in a message is shown as text, never run
    say(page, XSS)
    expect(bot_replies(page)).to_have_count(3)
    user_texts = page.locator(".aw-user .aw-text").all_inner_texts()
    assert XSS in user_texts
    assert page.locator(".aw-log img, .aw-log script").count() == 0
    assert page.evaluate("window.__pwned") is None

    # a reload shows the whole conversation again, rating included
    page.reload()
    expect(bot_replies(page)).to_have_count(3)
    assert page.locator(".aw-user .aw-text").all_inner_texts() == [
        "what payment methods do you accept",
        LLM_TALK[0],
        XSS,
    ]
    assert bot_replies(page).nth(1).locator(".aw-text").text_content() == final
    expect(bot_replies(page).nth(1).get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "true")
    assert page.locator(".aw-log img, .aw-log script").count() == 0
    # readable on a phone: nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(ARTIFACTS / "widget-after-reload.png"), full_page=True)


def test_snippet_on_another_site_talks_to_the_assistant_through_cors(
    page: Page, stack: Stack, host_site: HostSite
) -> None:
    page.goto(host_site.url)
    page.get_by_role("button", name="Chat", exact=True).focus()
    launcher = page.locator(".aw-launcher")  # hidden while the panel fills a phone's screen
    page.keyboard.press("Enter")  # keyboard opens the panel and puts the cursor in the input
    expect(launcher).to_have_attribute("aria-expanded", "true")
    page.keyboard.type("hello")
    page.keyboard.press("Enter")
    expect(bot_replies(page)).to_have_count(1)
    assert bot_replies(page).nth(0).locator(".aw-text").inner_text().strip()
    page.screenshot(path=str(ARTIFACTS / "widget-embedded.png"))
    page.keyboard.press("Escape")  # closes the panel and gives the focus back to the launcher
    expect(launcher).to_have_attribute("aria-expanded", "false")
    expect(launcher).to_be_focused()


def test_feedback_only_for_your_own_conversation(stack: Stack) -> None:
    """The widget's endpoints touch the sender's own conversation only, and refuse bad input clearly."""
    mine, theirs = "a" * 32, "b" * 32
    reply = stack.http.post(f"{stack.url}/webhooks/web/stream", json={"sender": mine, "message": "how are you"})
    assert reply.status_code == 200
    (bot,) = [
        m
        for m in stack.http.get(f"{stack.url}/webhooks/web/history", params={"sender": mine}).json()
        if m["role"] == "bot"
    ]
    stolen = stack.http.post(
        f"{stack.url}/webhooks/web/feedback", json={"sender": theirs, "message_id": bot["id"], "rating": "down"}
    )
    assert stolen.status_code == 404
    assert stack.http.get(f"{stack.url}/webhooks/web/history", params={"sender": theirs}).json() == []
    empty = stack.http.post(f"{stack.url}/webhooks/web/feedback", json={"sender": mine, "message_id": bot["id"]})
    assert empty.status_code == 422 and "give a rating" in empty.json()["message"]  # the app's 422 shape
    short = stack.http.post(f"{stack.url}/webhooks/web/stream", json={"sender": "x", "message": "hi"})
    assert short.status_code == 422
    assert stack.rows("SELECT count(*) AS n FROM feedback WHERE message_id = ?", bot["id"])[0]["n"] == 0


def test_buttons_are_drawn_and_a_click_sends_the_payload(page: Page, stack: Stack) -> None:
    """The demo bot's help response has buttons (Rasa's `buttons:`): the widget draws them, a click shows the
    title and sends the payload, which is answered without the NLU; after a reload they are still there."""
    page.goto(f"{stack.url}/chat")
    say(page, "what can you do")
    expect(bot_replies(page)).to_have_count(1)
    choices = bot_replies(page).nth(0).locator(".aw-choice")
    expect(choices).to_have_count(3)
    choices.get_by_text("Opening hours").click()
    expect(bot_replies(page)).to_have_count(2)
    expect(page.locator(".aw-user").last).to_have_text("Opening hours")
    sender = page.evaluate("localStorage.getItem('assistant-widget-sender')")
    user, bot = stack.turn(sender)
    assert (user["text"], user["intent"], user["nlu_model"]) == ("/opening_hours", "opening_hours", "payload")
    assert bot["answered_by"] == "action_opening_hours"
    page.reload()
    expect(bot_replies(page)).to_have_count(2)
    expect(bot_replies(page).nth(0).locator(".aw-choice")).to_have_count(3)
