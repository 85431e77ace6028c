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
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field

from assistant.api import run_on_messages
from assistant.app import get_pipeline
from assistant.config import Settings
from assistant.pipeline import IncomingMessage, TurnPipeline
from assistant.store import feedback
from plugins.channels.options import channel_options
from plugins.channels.rest import check_length, stream_turn

Pipeline = Annotated[TurnPipeline, Depends(get_pipeline)]
STATIC = Path(__file__).resolve().parent / "web_static"
SenderId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{16,128}$", description="the widget's conversation id")]


class WebOptions(BaseModel):
    title: str = "Assistant"
    greeting: str = "Hi! Ask me anything."
    history_limit: int = 50


class WebMessage(BaseModel):
    sender: SenderId
    message: Annotated[str, Field(min_length=1)]


class WebFeedback(BaseModel):
    sender: SenderId
    message_id: int
    rating: Literal["up", "down"] | None = None
    correction: Annotated[str | None, Field(min_length=1, max_length=8192)] = None


class WebChannel:
    name = "web"

    def __init__(self, settings: Settings) -> None:
        self.options = channel_options(settings, self.name, WebOptions)
        self.max_chars = settings.max_message_chars

    def router(self) -> APIRouter:
        router = APIRouter(tags=["web"])

        @router.get("/chat", response_class=HTMLResponse)
        async def chat_page() -> HTMLResponse:
            page = (STATIC / "chat.html").read_text()
            return HTMLResponse(page.replace("{{config}}", self.options.model_dump_json().replace("<", "\\u003c")))

        @router.get("/widget.js")
        async def widget_js() -> FileResponse:
            return FileResponse(STATIC / "widget.js", media_type="text/javascript")

        @router.get("/widget.css")
        async def widget_css() -> FileResponse:
            return FileResponse(STATIC / "widget.css", media_type="text/css")

        @router.post("/webhooks/web/stream", response_class=StreamingResponse)
        async def stream(body: WebMessage, pipeline: Pipeline) -> StreamingResponse:
            if not body.message.strip():
                raise HTTPException(422, "message must not be empty")
            check_length(body.message, self.max_chars)
            return stream_turn(pipeline, IncomingMessage(self.name, body.sender, body.message))

        @router.get("/webhooks/web/history")
        async def history(
            sender: Annotated[str, Query(pattern=r"^[A-Za-z0-9_-]{16,128}$")], pipeline: Pipeline
        ) -> list[dict[str, Any]]:
            limit = self.options.history_limit
            return await pipeline.store.transaction(
                lambda conn: feedback.conversation_messages(conn, self.name, sender, limit)
            )

        @router.post("/webhooks/web/feedback", status_code=201)
        async def give_feedback(body: WebFeedback, pipeline: Pipeline) -> dict[str, Any]:
            if body.rating is None and body.correction is None:
                raise HTTPException(422, "give a rating ('up' or 'down'), a correction, or both")

            def work(conn: Any) -> int:
                feedback.check_owner(conn, body.message_id, self.name, body.sender)
                return feedback.add_feedback(conn, body.message_id, body.rating, body.correction)

            feedback_id = await run_on_messages(pipeline.store, work)
            return {"id": feedback_id, "message_id": body.message_id, "rating": body.rating}

        return router
