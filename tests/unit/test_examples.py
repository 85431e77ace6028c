"""Few-shot examples for small talk (assistant/replies/examples.py): the demo's curated exchanges, the closest
to a message before the conversation in the LLM's prompt, none for grounded answers or far-off messages."""

from __future__ import annotations

from pathlib import Path

from assistant.config import Settings
from assistant.contracts import ChatMessage, Passage
from assistant.domain import Domain
from assistant.replies.examples import ExampleFinder, Exchange, curated_exchanges, example_finder
from assistant.replies.writer import ReplyWriter
from tests.unit.fakes import KB_DOWN, FakeEmbedder, FakeLLM

EXCHANGES = [
    Exchange("what is your favourite colour", "Green, like a garden in spring."),
    Exchange("what colour do you like", "Green, like a garden in spring."),
    Exchange("do you have any pets", "No pets, but I'd love a cat."),
    Exchange("tell me a joke", "Why did the cookie cry? Its mum was a wafer so long."),
]


def test_the_demo_has_its_persona_and_chitchat_exchanges() -> None:
    settings = Settings()
    domain = Domain.load(settings.bot_dir)
    found = curated_exchanges(settings.bot_dir, domain, settings.kb.smalltalk_intents)
    persona = {e.message for e in found if e.reply == "I'm Penny, Northwind's virtual assistant."}
    assert "who are you" in persona
    joke = domain.render("utter_chitchat/tell_joke", {})
    assert joke and any(e.reply == joke for e in found)
    assert not any("/" in e.message or e.message.startswith("-") for e in found)
    faq = {domain.render(name, {}) for name in domain.responses if name.startswith("utter_faq/")}
    assert not faq & {e.reply for e in found}  # business answers are not small-talk examples


async def test_the_closest_come_last_each_reply_once_and_far_ones_never() -> None:
    finder = ExampleFinder(EXCHANGES, FakeEmbedder(), count=2, floor=0.3)
    chosen = await finder.closest("what colour is your favourite")
    assert [e.reply for e in chosen] == ["Green, like a garden in spring."]  # the same reply is shown once
    assert await finder.closest("zebra crossings at midnight") == []
    two = ExampleFinder(EXCHANGES, FakeEmbedder(), count=2, floor=0.0)
    assert (await two.closest("tell me about your pets and a joke"))[-1].message in {
        "tell me a joke",
        "do you have any pets",
    }


async def test_small_talk_prompts_carry_the_examples_grounded_ones_do_not(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    domain = Domain.load(settings.bot_dir)
    finder = ExampleFinder(EXCHANGES, FakeEmbedder(), count=2, floor=0.3)
    writer = ReplyWriter(settings, FakeLLM(settings, None), domain, finder)  # type: ignore[arg-type]
    prompt = await writer.prompt([("user", "hi"), ("bot", "Hello!")], "tell me a joke please", "base")
    roles = [m.role for m in prompt.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"] and prompt.examples == 1
    assert prompt.messages[1:3] == [ChatMessage("user", "tell me a joke"), ChatMessage("assistant", EXCHANGES[3].reply)]
    assert writer.record(prompt, None).examples == 1
    passage = Passage(1, "returns.md", "Returns", "Returns are free within 30 days.", 0)
    grounded = await writer.prompt([], "tell me a joke about returns", "base", [passage])
    assert grounded.examples == 0 and [m.role for m in grounded.messages] == ["system", "user"]


def test_no_examples_when_switched_off_or_without_an_encoder() -> None:
    settings = Settings()
    domain = Domain.load(settings.bot_dir)
    assert example_finder(settings, domain, FakeEmbedder()) is None  # off by default (docs/llm-replies.md)
    settings.llm.examples = 2
    assert example_finder(settings, domain, None) is None
    finder = example_finder(settings, domain, FakeEmbedder())
    assert finder is not None and finder.count == 2 and finder.exchanges


async def test_a_failing_encoder_means_no_examples_not_a_failed_reply() -> None:
    finder = ExampleFinder(EXCHANGES, FakeEmbedder(), count=2, floor=0.0)
    assert await finder.closest(f"tell me a joke {KB_DOWN}") == []
    assert await finder.closest("tell me a joke") != []  # the next message is served again
