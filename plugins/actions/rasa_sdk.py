"""Custom actions on a Rasa action server (rasa-sdk), as Rasa calls them: ``POST <action_endpoint>`` with
``{next_action, sender_id, tracker, domain, version}`` and back ``{events, responses}``.

The tracker is built from the log: the conversation's slots, its latest message (intent, confidence,
entities) and its recent turns as Rasa events (``user`` with ``parse_data``, ``bot``). What comes back is
applied: ``slot`` events set slots (``reset_slots`` clears them), responses are joined into one reply (a
named response, ``response: utter_x``, is rendered from the domain with the new slots; the last buttons and
image are kept), and a ``followup`` to an ``utter_`` response is rendered after them. An unreachable,
failing or slow server raises BackendUnavailable: the pipeline then answers with ``utter_<intent>`` if the
bot has one, else its fallback reply.

Which intents: the domain's ``actions:`` that no in-process action plugin provides (``action_<intent>``
answers intent ``<intent>``). ``assistant up`` starts the server (``python -m rasa_sdk`` in the Rasa
environment, in the bot directory) when the bot has an ``actions/`` package and the endpoint is local.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

import httpx
from pydantic import BaseModel, Field

from assistant.config import Settings, endpoint_url
from assistant.contracts import (
    Action,
    ActionContext,
    ActionResult,
    BackendUnavailable,
    RichResponse,
    Role,
    ServiceSpec,
)
from assistant.domain import Domain
from assistant.store import Store, feedback

RASA_VERSION = "3.6.21"
HISTORY_MESSAGES = 20


class ActionServerSettings(BaseModel):
    """A rasa-sdk action server for the domain's custom actions (Rasa's ``action_endpoint``)."""

    url: str | None = Field(None, description="its /webhook URL; default: action_endpoint in the bot's endpoints.yml")
    managed: bool = Field(True, description="`assistant up` starts it (python -m rasa_sdk) when the bot has actions/")
    timeout_s: float = 10.0
    startup_timeout_s: float = 120.0


def action_server(settings: Settings) -> ActionServerSettings:
    """This plugin's options: ``action_server:`` in assistant.yml, ``ASSISTANT_ACTION_SERVER__<OPTION>``."""
    return ActionServerSettings.model_validate(settings.action_server)


def action_endpoint(settings: Settings) -> str | None:
    """Where the domain's custom actions run: ``action_server.url``, else the bot's endpoints.yml."""
    return action_server(settings).url or endpoint_url(settings.bot_dir / "endpoints.yml", "action_endpoint")


def events_of(turns: list[dict[str, Any]], channel: str) -> list[dict[str, Any]]:
    """Stored turns as Rasa's tracker events."""
    events: list[dict[str, Any]] = []
    for turn in turns:
        stamp = turn["created_at"].timestamp() if turn.get("created_at") else time.time()
        if turn["role"] == Role.USER:
            name = turn.get("intent")
            intent = {"name": name, "confidence": turn.get("confidence") or 0.0}
            if name and "/" in name:  # a retrieval intent's key is stored whole; Rasa names the intent apart
                intent.update(name=name.split("/")[0], full_retrieval_intent_name=name)
            events.append({"event": "user", "timestamp": stamp, "text": turn["text"], "input_channel": channel,
                           "parse_data": {"intent": intent, "entities": turn.get("entities") or [],
                                          "text": turn["text"]}})  # fmt: skip
            events.append({"event": "action", "timestamp": stamp, "name": "action_listen"})
        else:
            events.append({"event": "bot", "timestamp": stamp, "text": turn["text"], "data": {}})
    return events


class RemoteAction:
    """One custom action of the domain, run by the action server."""

    def __init__(self, name: str, settings: Settings, domain: Domain, store: Store, http: httpx.AsyncClient) -> None:
        self.name = name
        self.url = action_endpoint(settings) or ""
        self.domain = domain
        self.store = store
        self.http = http

    async def aclose(self) -> None:
        """The client the domain's remote actions share (closing it again is a no-op)."""
        await self.http.aclose()

    async def run(self, context: ActionContext) -> ActionResult:
        turns = await self.store.transaction(
            lambda conn: feedback.conversation_turns(conn, context.channel, context.sender, HISTORY_MESSAGES)
        )
        intent = {"name": context.intent, "confidence": context.confidence or 1.0}
        tracker = {
            "sender_id": context.sender,
            "slots": context.slots,
            "latest_message": {
                "text": context.text,
                "intent": intent,
                "intent_ranking": [intent],
                "entities": context.entities,
            },
            "latest_event_time": time.time(),
            "followup_action": None,
            "paused": False,
            "events": events_of(turns, context.channel),
            "latest_input_channel": context.channel,
            "active_loop": {},
            "latest_action": {"action_name": "action_listen"},
            "latest_action_name": "action_listen",
        }
        body = {"next_action": self.name, "sender_id": context.sender, "tracker": tracker,
                "domain": self.domain.raw, "version": RASA_VERSION}  # fmt: skip
        try:
            response = await self.http.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"the action server at {self.url}: {exc!r}") from exc
        if response.status_code != 200:
            raise BackendUnavailable(
                f"the action server ran {self.name}: HTTP {response.status_code} {response.text[:300]}"
            )
        return self.result(response.json(), context)

    def result(self, answer: dict[str, Any], context: ActionContext) -> ActionResult:
        slots: dict[str, Any] = {}
        followups: list[str] = []
        for event in answer.get("events") or []:
            kind = event.get("event")
            if kind == "slot" and event.get("name"):
                slots[event["name"]] = event.get("value")
            elif kind == "reset_slots":
                slots = {name: None for name in {**context.slots, **slots}}
            elif kind == "followup" and str(event.get("name", "")).startswith("utter_"):
                followups.append(event["name"])
        now = {**context.slots, **slots}
        texts: list[str] = []
        rich = RichResponse()
        messages = list(answer.get("responses") or []) + [{"response": name} for name in followups]
        for message in messages:
            name = message.get("response") or message.get("template")
            if name:
                rendered = self.domain.response(name, now, context.channel)
                if rendered is None:
                    continue
                text, extra = rendered.text, rendered.rich or RichResponse()
            else:
                text = str(message.get("text") or "")
                extra = RichResponse.from_stored(message) or RichResponse()
            texts += [text] if text.strip() else []
            rich = RichResponse(
                buttons=extra.buttons or rich.buttons, image=extra.image or rich.image,
                attachment=extra.attachment or rich.attachment, custom=extra.custom or rich.custom,
            )  # fmt: skip
        return ActionResult("\n\n".join(texts), slots, None if rich.empty else rich)


def remote_actions(settings: Settings, domain: Domain, store: Store, installed: dict[str, Any]) -> dict[str, Action]:
    """The domain's custom actions that no in-process plugin provides, run by the action server (none without
    an action endpoint)."""
    if not action_endpoint(settings):
        return {}
    http = httpx.AsyncClient(timeout=action_server(settings).timeout_s)
    return {name: RemoteAction(name, settings, domain, store, http) for name in domain.actions if name not in installed}


def action_server_service(settings: Settings) -> ServiceSpec | None:
    """The action server `assistant up` starts: the bot's ``actions/`` package served by rasa-sdk from the Rasa
    environment, when the endpoint is on this machine."""
    url = action_endpoint(settings)
    if not (action_server(settings).managed and url and (settings.bot_dir / "actions").is_dir()):
        return None
    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost"):
        return None
    python = settings.rasa.python_env / "bin" / "python" if settings.rasa.python_env else None
    if python is None:
        return None
    port = parsed.port or 5055
    return ServiceSpec(
        name="actions",
        command=[str(python), "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
        health_url=f"{parsed.scheme}://{parsed.hostname}:{port}/health",
        cwd=settings.bot_dir,
        startup_timeout_s=action_server(settings).startup_timeout_s,
    )
