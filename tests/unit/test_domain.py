"""Templated responses: the first variant whose placeholders are all known is used."""

from pathlib import Path

from assistant.config import DEMO_BOT_DIR
from assistant.domain import Domain


def test_most_specific_variant_with_known_slots() -> None:
    domain = Domain({"utter_x": ["Order {order_id} for {name}", "Order {order_id}", "Which order?"]}, "")
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
    assert {"greet", "goodbye", "help", "bot_challenge", "chitchat", "out_of_scope"} <= intents.keys()
    assert all(len(examples) >= 15 for examples in intents.values()), {k: len(v) for k, v in intents.items()}
    actions = {p.stem for p in Path(DEMO_BOT_DIR.parent / "plugins" / "actions").glob("*.py")}
    assert actions >= {"orders", "opening_hours"}
    for intent in intents.keys() - {"chitchat", "out_of_scope", "order_status", "opening_hours"}:
        assert f"utter_{intent}" in domain.responses, intent
