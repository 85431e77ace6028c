"""socket.io channel, compatible with Rasa's (python-socketio): the web widgets Rasa users embed
(botfront's ``rasa-webchat``, Rasa's chat widget) connect to ``socketio_path`` (default ``/socket.io``).

* ``session_request`` ``{session_id?}`` is answered with ``session_confirm`` (the given id, or a new one);
  with ``session_persistence`` the session id is the conversation's sender, so a reload keeps it, and the
  client's socket joins the session's room.
* ``user_uttered`` ``{message, session_id?, metadata?}`` runs a turn; the reply comes as ``bot_uttered``
  messages in the shapes Rasa's channel emits: ``{text}`` per paragraph; with buttons, the last paragraph
  carries ``quick_replies: [{content_type: "text", title, payload}]``; an image as ``{attachment: {type:
  "image", payload: {src}}}``; a custom payload as itself; a reply's sources as a last ``{text}``.
* With ``stream_evt`` set (e.g. ``bot_uttered_stream``), LLM replies are also sent piece by piece on that
  event for clients that can show them; every client still gets the whole reply on ``bot_uttered``.
* With ``jwt_key``, a connection needs ``auth: {token}`` signed with it (``jwt_method``, default HS256).
* The same checks and limits as the other synchronous channels: a message no channel may store, or one past
  the backends' lines or the sender's share, is answered with ``bot_uttered`` ``{text}`` saying so (nothing
  stored). An empty message (rasa-webchat sends its ``initPayload`` on connect, empty by default) is ignored.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict
from typing import Any

import jwt
import socketio
from fastapi import APIRouter
from pydantic import BaseModel, Field, SecretStr

from assistant.config import Settings
from assistant.contracts import AssistantError, BotReply, IncomingMessage, Turns
from plugins.channels.options import channel_options
from plugins.channels.out_of_band import sources_text

log = logging.getLogger(__name__)


class SocketIOOptions(BaseModel):
    user_message_evt: str = "user_uttered"
    bot_message_evt: str = "bot_uttered"
    stream_evt: str | None = Field(None, description="emit LLM replies piece by piece on this event too")
    namespace: str | None = None
    session_persistence: bool = False
    socketio_path: str = "/socket.io"
    jwt_key: SecretStr | None = None
    jwt_method: str = "HS256"
    metadata_key: str = "metadata"
    cors_allowed_origins: list[str] | str = Field("*", description="sites whose pages may connect")


def bot_messages(reply: BotReply) -> list[dict[str, Any]]:
    """A reply as Rasa's socket.io channel emits it (its ``SocketIOOutput``)."""
    rich = reply.rich
    parts = [p for p in reply.text.strip().split("\n\n") if p] if reply.text.strip() else []
    messages: list[dict[str, Any]] = [{"text": part} for part in parts]
    if rich and rich.buttons:
        if not messages:
            messages.append({"text": ""})
        messages[-1]["quick_replies"] = [
            {"content_type": "text", "title": b.get("title"), "payload": b.get("payload")} for b in rich.buttons
        ]
    if rich and rich.custom:
        messages.append(dict(rich.custom))
    if rich and rich.image:
        messages.append({"attachment": {"type": "image", "payload": {"src": rich.image}}})
    if rich and rich.attachment:
        messages.append({"attachment": rich.attachment})
    if reply.citations:
        messages.append({"text": sources_text(reply.citations), "citations": [asdict(c) for c in reply.citations]})
    return messages


class SocketIOChannel:
    name = "socketio"

    def __init__(self, settings: Settings) -> None:
        self.options = channel_options(settings, self.name, SocketIOOptions)
        self.settings = settings
        self.sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=self.options.cors_allowed_origins)

    def router(self, turns: Turns) -> APIRouter:
        options, sio = self.options, self.sio
        namespace = options.namespace or "/"

        @sio.on("connect", namespace=namespace)
        async def connect(sid: str, environ: dict[str, Any], auth: dict[str, Any] | None = None) -> bool:
            if options.jwt_key is None:
                return True
            token = (auth or {}).get("token") if isinstance(auth, dict) else None
            try:
                jwt.decode(
                    str(token or "").removeprefix("Bearer "), options.jwt_key.get_secret_value(),
                    algorithms=[options.jwt_method],
                )  # fmt: skip
            except jwt.PyJWTError:
                log.info("socket.io connection %s refused: no valid JWT", sid)
                return False
            return True

        @sio.on("session_request", namespace=namespace)
        async def session_request(sid: str, data: Any = None) -> None:
            data = data if isinstance(data, dict) else {}
            session = str(data.get("session_id") or uuid.uuid4().hex)
            if options.session_persistence:
                await sio.enter_room(sid, session, namespace=namespace)
            await sio.emit("session_confirm", session, room=sid, namespace=namespace)

        @sio.on(options.user_message_evt, namespace=namespace)
        async def user_uttered(sid: str, data: Any = None) -> None:
            data = data if isinstance(data, dict) else {}
            if options.session_persistence:
                if not data.get("session_id"):
                    log.warning("socket.io message without a session_id ignored (session_persistence is on)")
                    return
                sender, room = str(data["session_id"]), str(data["session_id"])
            else:
                sender, room = sid, sid
            metadata = data.get(options.metadata_key) or data.get("customData") or None
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata)
                except ValueError:
                    metadata = {"value": metadata}
            message = IncomingMessage(self.name, sender, str(data.get("message") or ""), metadata or None)
            if not message.text.strip():  # e.g. rasa-webchat's empty initPayload on connect: nothing to answer
                return
            try:
                await turns.admit(message, None)  # checks the message, then the lines and shares
            except AssistantError as exc:  # bad input, overloaded, rate-limited: said (to this socket), not stored
                await sio.emit(options.bot_message_evt, {"text": str(exc)}, room=sid, namespace=namespace)
                return
            async for event in turns.run(message):
                if isinstance(event, BotReply):
                    for item in bot_messages(event):
                        await sio.emit(options.bot_message_evt, item, room=room, namespace=namespace)
                elif options.stream_evt:
                    await sio.emit(options.stream_evt, {"text": event}, room=room, namespace=namespace)

        router = APIRouter(tags=["socketio"])
        path = "/" + options.socketio_path.strip("/")

        @router.get(path.rstrip("/") + "-health", include_in_schema=False)
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        router.mount(path, socketio.ASGIApp(sio, socketio_path=path.strip("/")))
        return router
