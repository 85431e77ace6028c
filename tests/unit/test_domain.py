"""Templated responses (Rasa 3's format): variations by channel and condition, the first whose placeholders
are all known, slot values in every field; button payloads parsed as Rasa parses them; Rasa's REST output."""

from pathlib import Path
from typing import Any

from assistant.config import DEMO_BOT_DIR, REPO_ROOT
from assistant.contracts import BotReply, Citation, Reason, RichResponse, Route
from assistant.domain import Domain
from assistant.turn.router import payload_parse
from plugins.channels.rest import rasa_messages


def texts(*variants: str) -> list[dict[str, Any]]:
    return [{"text": v} for v in variants]


def test_most_specific_variant_with_known_slots() -> None:
    domain = Domain({"utter_x": texts("Order {order_id} for {name}", "Order {order_id}", "Which order?")}, "")
    assert domain.render("utter_x", {}) == "Which order?"
    assert domain.render("utter_x", {"order_id": "42", "name": ""}) == "Order 42"
    assert domain.render("utter_x", {"order_id": "42", "name": "Ana"}) == "Order 42 for Ana"
    assert domain.render("utter_missing", {}) is None


def test_demo_bot_answers_every_in_scope_intent() -> None:
    """Each intent of the demo bot has a response or an action, and enough examples to train on."""
    import yaml

    domain = Domain.load(DEMO_BOT_DIR)
    assert "Penny" in domain.persona
    nlu = yaml.safe_load((DEMO_BOT_DIR / "data" / "nlu.yml").read_text())["nlu"]
    intents = {block["intent"]: block["examples"].strip().splitlines() for block in nlu if "intent" in block}
    assert 15 <= len(intents) <= 25
    assert {"greet", "goodbye", "help", "bot_challenge", "out_of_scope"} <= intents.keys()
    assert all(len(examples) >= 15 for examples in intents.values()), {k: len(v) for k, v in intents.items()}
    actions = {p.stem for p in Path(REPO_ROOT / "plugins" / "actions").glob("*.py")}
    assert actions >= {"orders", "opening_hours"}
    for intent in intents.keys() - {"chitchat", "out_of_scope", "order_status", "opening_hours"}:
        assert f"utter_{intent}" in domain.responses, intent
    # the FAQ retrieval intent: every key has its response
    faq = yaml.safe_load((DEMO_BOT_DIR / "data" / "faq.yml").read_text())["nlu"]
    keys = [block["intent"] for block in faq]
    assert len(keys) >= 3 and all(key.startswith("faq/") for key in keys)
    assert all(f"utter_{key}" in domain.responses for key in keys)
    # curated small talk (scripts/make_chitchat.py): topics a shop assistant meets, each with its written reply
    # and enough examples for the selector; none is a message of the small-talk evaluation part
    chitchat = yaml.safe_load((DEMO_BOT_DIR / "data" / "chitchat.yml").read_text())["nlu"]
    topics = {b["intent"]: b["examples"].strip().splitlines() for b in chitchat if b["intent"].startswith("chitchat/")}
    assert len(topics) >= 40 and all(len(examples) >= 4 for examples in topics.values())
    assert {"chitchat/tell_joke", "chitchat/ask_age", "chitchat/weather", "chitchat/nice_to_meet_you"} <= topics.keys()
    assert all(f"utter_{key}" in domain.responses for key in topics)
    held_out = yaml.safe_load((DEMO_BOT_DIR / "evals" / "smalltalk.yml").read_text())["cases"]
    trained = {line.removeprefix("- ").lower() for examples in topics.values() for line in examples}
    assert not trained & {case["message"].lower() for case in held_out}


RICH = {
    "utter_menu": [
        {"text": "Pick one, {name}:", "buttons": [
            {"title": "Track {order_id}", "payload": '/order_status{"order_id": "{order_id}"}'},
            {"title": "Talk to a person", "payload": "/contact_human"}]},
    ],
    "utter_card": [{"image": "https://example.com/{city}.png", "custom": {"card": {"city": "{city}"}}}],
    "utter_hours": [
        {"text": "Telegram hours", "channel": "telegram"},
        {"text": "Weekend hours", "condition": [{"type": "slot", "name": "day", "value": "Saturday"}]},
        {"text": "Weekend hours on Slack", "channel": "slack",
         "condition": [{"type": "slot", "name": "day", "value": "saturday"}]},
        {"text": "Usual hours"},
    ],
}  # fmt: skip


def test_rich_responses_are_filled_and_variations_chosen_as_rasa_chooses() -> None:
    domain = Domain(RICH, "")
    menu = domain.response("utter_menu", {"name": "Ana", "order_id": "42"}, "rest")
    assert menu is not None and menu.text == "Pick one, Ana:" and menu.rich is not None
    assert menu.rich.buttons == [
        {"title": "Track 42", "payload": '/order_status{"order_id": "42"}'},
        {"title": "Talk to a person", "payload": "/contact_human"},
    ]
    assert domain.response("utter_menu", {"name": "Ana"}, "rest") is None  # a placeholder unknown
    card = domain.response("utter_card", {"city": "Berlin"})
    assert (
        card is not None
        and card.text == ""
        and card.rich == RichResponse(image="https://example.com/Berlin.png", custom={"card": {"city": "Berlin"}})
    )
    hours = {(channel, day): domain.render("utter_hours", {"day": day}, channel)
             for channel in ("rest", "telegram", "slack") for day in (None, "saturday")}  # fmt: skip
    assert hours == {
        ("rest", None): "Usual hours", ("rest", "saturday"): "Weekend hours",  # conditions ignore case
        ("telegram", None): "Telegram hours", ("telegram", "saturday"): "Telegram hours",  # channel first
        ("slack", None): "Usual hours", ("slack", "saturday"): "Weekend hours on Slack",
    }  # fmt: skip


def test_button_payloads_are_parsed_as_rasa_parses_them() -> None:
    parse = payload_parse('/order_status{"order_id": "42", "city": ["Berlin", "Bonn"]}')
    assert parse is not None and parse.intent is not None
    assert (parse.intent.name, parse.intent.confidence, parse.model) == ("order_status", 1.0, "payload")
    assert parse.entities == [
        {"entity": "order_id", "value": "42"}, {"entity": "city", "value": "Berlin"},
        {"entity": "city", "value": "Bonn"},
    ]  # fmt: skip
    assert payload_parse("/greet@0.7").intent.confidence == 0.7  # type: ignore[union-attr]
    for text in ("hello", "/", "/greet{not json}", "/greet[1]", "where is /order 5"):
        assert payload_parse(text) is None, text


def reply(text: str, rich: RichResponse | None = None, citations: list[Citation] | None = None) -> BotReply:
    return BotReply(1, 1, text, Route.INTENT, Reason.CONFIDENT, "x", 1.0, "utter_x", 1.0, citations or [], rich)


def test_rest_output_is_rasas() -> None:
    assert rasa_messages("u", reply("One.\n\nTwo.")) == [
        {"recipient_id": "u", "text": "One."}, {"recipient_id": "u", "text": "Two."}]  # fmt: skip
    buttons = [{"title": "Yes", "payload": "/affirm"}]
    rich = RichResponse(buttons=buttons, image="https://x/i.png", custom={"k": 1}, attachment="file.pdf")
    assert rasa_messages("u", reply("Sure?\n\nReally?", rich)) == [
        {"recipient_id": "u", "text": "Sure?\n\nReally?", "buttons": buttons},  # with buttons: not split
        {"recipient_id": "u", "custom": {"k": 1}},
        {"recipient_id": "u", "image": "https://x/i.png"},
        {"recipient_id": "u", "attachment": "file.pdf"},
    ]
    cited = rasa_messages("u", reply("Yes [1].", citations=[Citation(1, 7, "Shipping", "shipping.md")]))
    assert cited[1] == {"recipient_id": "u", "custom": {"citations": [
        {"n": 1, "chunk_id": 7, "title": "Shipping", "source": "shipping.md"}]}}  # fmt: skip


def test_slots_are_filled_by_their_mappings(tmp_path: Path) -> None:
    (tmp_path / "domain.yml").write_text("""
version: "3.1"
slots:
  city:
    type: text
    mappings:
      - {type: from_entity, entity: city, role: destination}
  feedback:
    type: text
    mappings:
      - {type: from_text, intent: give_feedback}
  happy:
    type: bool
    initial_value: false
    mappings:
      - {type: from_intent, intent: affirm, value: true}
      - {type: from_intent, intent: deny, value: false}
  order_id:
    type: text
    mappings:
      - {type: from_entity, entity: order_id, not_intent: cancel_order}
responses: {}
""")
    domain = Domain.load(tmp_path)
    cities = [{"entity": "city", "value": "Rome", "role": "origin"}, {"entity": "city", "value": "Oslo",
              "role": "destination"}]  # fmt: skip
    assert domain.fill_slots({}, "travel", cities, "from Rome to Oslo") == {"happy": False, "city": "Oslo"}
    assert domain.fill_slots({}, "give_feedback", [], "great shop")["feedback"] == "great shop"
    assert domain.fill_slots({"happy": False}, "affirm", [], "yes")["happy"] is True
    order = [{"entity": "order_id", "value": "42"}]
    assert domain.fill_slots({}, "order_status", order, "where is 42")["order_id"] == "42"
    assert "order_id" not in domain.fill_slots({}, "cancel_order", order, "cancel 42")
    # no `slots:` in the domain: each entity fills its namesake, as before
    assert Domain({}, "").fill_slots({"a": 1}, "x", order, "42") == {"a": 1, "order_id": "42"}
