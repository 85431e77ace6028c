"""Web channel: a chat page (``GET /chat``) and an embeddable widget for any site:

    <script src="https://assistant.example.com/widget.js"></script>
    <script>AssistantWidget.init({server: "https://assistant.example.com"});</script>

The widget streams LLM replies token by token (Server-Sent Events over ``fetch``), keeps its
conversation id in ``localStorage`` (a reload shows the history), and lets visitors rate LLM replies and
suggest better ones; those feedback rows are what ``assistant retrain`` learns from. Other sites need
their origin in ``cors_origins``.

The conversation id is a random 128-bit value made in the browser: it is the visitor's key to their own
history and feedback, so the endpoints below only ever touch that conversation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field

from assistant.config import Settings
from assistant.contracts import HistoryItem, IncomingMessage, Turns
from assistant.turn.inputs import MAX_ROW_ID, NOT_BLANK, FeedbackIn
from plugins.channels.options import channel_options
from plugins.channels.rest import REFUSALS, Streams, admitted

STATIC = Path(__file__).resolve().parent / "web_static"
SENDER_ID = r"^[A-Za-z0-9_-]{16,128}$"  # a random 128-bit value made in the browser, base64url or hex
SenderId = Annotated[str, Field(pattern=SENDER_ID, description="the widget's conversation id")]


class WebOptions(BaseModel):
    title: str = "Assistant"
    greeting: str = "Hi! Ask me anything."
    history_limit: int = 50


class WebMessage(BaseModel):
    sender: SenderId
    message: Annotated[str, Field(min_length=1, json_schema_extra={"pattern": NOT_BLANK})]


class WebFeedback(FeedbackIn):
    sender: SenderId
    message_id: Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


def _file(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {media_type: {"schema": {"type": "string"}}}}}


class WebChannel:
    name = "web"

    def __init__(self, settings: Settings) -> None:
        self.options = channel_options(settings, self.name, WebOptions)
        self.streams = Streams(settings.limits)

    def router(self, turns: Turns) -> APIRouter:
        router = APIRouter(tags=["web"])

        @router.get("/chat", response_class=HTMLResponse)
        async def chat_page() -> HTMLResponse:
            page = (STATIC / "chat.html").read_text()
            return HTMLResponse(page.replace("{{config}}", self.options.model_dump_json().replace("<", "\\u003c")))

        @router.get("/widget.js", response_class=FileResponse, responses=_file("text/javascript"))
        async def widget_js() -> FileResponse:
            return FileResponse(STATIC / "widget.js", media_type="text/javascript")

        @router.get("/widget.css", response_class=FileResponse, responses=_file("text/css"))
        async def widget_css() -> FileResponse:
            return FileResponse(STATIC / "widget.css", media_type="text/css")

        @router.post("/webhooks/web/stream", response_class=StreamingResponse, responses=REFUSALS)
        async def stream(body: WebMessage, request: Request) -> StreamingResponse:
            self.streams.check()
            message = IncomingMessage(self.name, body.sender, body.message)
            return self.streams.turn(turns, await admitted(turns, message, request))

        @router.get("/webhooks/web/history")
        async def history(sender: Annotated[str, Query(pattern=SENDER_ID)]) -> list[HistoryItem]:
            return await turns.history(self.name, sender, self.options.history_limit)

        @router.post("/webhooks/web/feedback", status_code=201, responses={
            404: {"description": "no such reply in this conversation"},
            409: {"description": "the message is not a bot reply"},
            429: {"description": "this conversation gave as much feedback as is taken in a day"},
        })  # fmt: skip
        async def give_feedback(body: WebFeedback) -> dict[str, Any]:
            feedback_id = await turns.rate(body.message_id, body.rating, body.correction, (self.name, body.sender))
            return {"id": feedback_id, "message_id": body.message_id, "rating": body.rating}

        return router
