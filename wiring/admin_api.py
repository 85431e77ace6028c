"""The admin API: feedback and intent labels on logged turns (what `assistant retrain` learns from), and
the model registry. Every route needs ``Authorization: Bearer <admin_token>``."""

from __future__ import annotations

import secrets
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from assistant.store import Store, annotations, feedback, registry
from assistant.turn import inputs
from assistant.turn.inputs import FeedbackIn
from assistant.workers import erasure

bearer = HTTPBearer(auto_error=False)


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def is_admin(request: Request, credentials: HTTPAuthorizationCredentials | None = None) -> bool:
    """Whether the request carries the admin token (read from the header when no credentials are given: routes
    open to everyone, like /status, then declare no security scheme)."""
    token = request.app.state.settings.admin_token
    if credentials is None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        given = given if scheme.lower() == "bearer" else ""
    else:
        given = credentials.credentials
    return token is not None and secrets.compare_digest(
        given.encode("utf-8", "replace"), token.get_secret_value().encode()
    )


def require_admin(request: Request, credentials: Credentials) -> None:
    if request.app.state.settings.admin_token is None:
        raise HTTPException(401, "the admin API is off: set ASSISTANT_ADMIN_TOKEN to use it")
    if not is_admin(request, credentials):
        raise HTTPException(401, "missing or wrong admin token (Authorization: Bearer <token>)")


def get_store(request: Request) -> Store:
    return request.app.state.store


StoreDep = Annotated[Store, Depends(get_store)]


NOT_BLANK = {"pattern": inputs.NOT_BLANK}  # the schema's way of saying what the validators check
MessageId = Annotated[int, Path(ge=1, le=inputs.MAX_ROW_ID)]


class ReviewIn(BaseModel):
    """A reviewer's verdict on the anonymous feedback of one LLM reply."""

    model_config = ConfigDict(json_schema_extra={
        "if": {"properties": {"decision": {"const": "edit"}}},
        "then": {"required": ["correction"], "properties": {"correction": {"type": "string", **NOT_BLANK}}},
        "else": {"properties": {"correction": {"type": "null"}}},
    })  # fmt: skip

    decision: Literal["approve", "edit", "reject"] = Field(
        description="approve: learn the suggested reply (or the reply itself, if rated up); edit: learn "
        "`correction` instead; reject: learn nothing from it"
    )
    correction: Annotated[str | None, Field(max_length=8192)] = None

    @model_validator(mode="after")
    def _edit_has_text(self) -> ReviewIn:
        if self.decision == "edit" and inputs.blank(self.correction or ""):
            raise ValueError("an edit needs the correction to learn")
        if self.decision != "edit" and self.correction is not None:
            raise ValueError("a correction goes with decision 'edit'")
        return self


class EntityIn(BaseModel):
    entity: Annotated[str, Field(min_length=1, max_length=128)]
    value: Annotated[str, Field(min_length=1)]
    start: int | None = None
    end: int | None = None


class LabelIn(BaseModel):
    intent: Annotated[
        str, Field(max_length=feedback.MAX_INTENT_NAME, json_schema_extra={"pattern": feedback.INTENT_NAME.pattern})
    ]
    entities: list[EntityIn] = []

    @field_validator("intent")
    @classmethod
    def _intent_name(cls, value: str) -> str:
        feedback.check_intent_name(value)
        return value


class AnnotationIn(BaseModel):
    """A written answer, given before the LLM to messages close to ``question``."""

    question: Annotated[str, Field(min_length=1, max_length=annotations.MAX_CHARS, json_schema_extra=NOT_BLANK)]
    answer: Annotated[str, Field(min_length=1, max_length=annotations.MAX_CHARS, json_schema_extra=NOT_BLANK)]

    @field_validator("question", "answer")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if inputs.blank(value):
            raise ValueError("must not be blank")
        return value


def _locate(text: str, entity: EntityIn) -> dict[str, Any]:
    """Entities carry character offsets in training data: find them when the label gives only the value."""
    if entity.start is not None and entity.end is not None:
        if not (0 <= entity.start < entity.end <= len(text)):
            raise HTTPException(409, f"entity {entity.entity!r}: offsets {entity.start}-{entity.end} are outside")
        return entity.model_dump()
    start = text.lower().find(entity.value.lower())
    if start < 0:
        raise HTTPException(409, f"entity {entity.entity!r}: {entity.value!r} does not occur in the message")
    return {"entity": entity.entity, "value": entity.value, "start": start, "end": start + len(entity.value)}


def router() -> APIRouter:
    api = APIRouter(
        prefix="/api", tags=["admin"], dependencies=[Depends(require_admin)],
        responses={401: {"description": "missing or wrong admin token (or the admin API is off)"}},
    )  # fmt: skip
    missing = {
        404: {"description": "no such message"},
        409: {"description": "the message is not of the kind needed (or does not hold the labelled entity)"},
    }

    @api.post("/messages/{message_id}/feedback", status_code=201, responses=missing)
    async def give_feedback(message_id: MessageId, body: FeedbackIn, store: StoreDep) -> dict[str, Any]:
        """Rate a bot reply (up/down) and/or give a better one, as a reviewer: `assistant retrain` fine-tunes
        the LLM on them without further review."""
        feedback_id = await store.transaction(
            lambda conn: feedback.add_feedback(conn, message_id, body.rating, body.correction)
        )
        return {"id": feedback_id, "message_id": message_id, "rating": body.rating, "correction": body.correction}

    @api.post(
        "/messages/{message_id}/review",
        responses={**missing, 409: {"description": "not a bot reply, or no feedback on it waits for review"}},
    )
    async def review(message_id: MessageId, body: ReviewIn, store: StoreDep) -> dict[str, Any]:
        """Approve, edit or reject the anonymous feedback on an LLM reply: only approved feedback (and
        reviewers' own) is ever fine-tuned on. 409 when nothing on the message waits for review."""
        settled = await store.transaction(
            lambda conn: feedback.review(conn, message_id, body.decision, body.correction)
        )
        return {"message_id": message_id, "decision": body.decision, "feedback_items": settled}

    @api.get("/reviews")
    async def reviews(store: StoreDep, limit: int = 20) -> list[dict[str, Any]]:
        """LLM replies whose anonymous feedback waits for review, most-flagged first, with their conversation."""
        items = await store.transaction(lambda conn: feedback.pending_reviews(conn, max(1, min(limit, 200))))
        return [asdict(item) for item in items]

    @api.get("/annotations")
    async def list_annotations(store: StoreDep) -> list[dict[str, Any]]:
        """Every annotation with its hits (how many turns it answered)."""
        return [asdict(row) for row in await store.transaction(annotations.listed)]

    @api.post("/annotations", status_code=201)
    async def add_annotation(body: AnnotationIn, store: StoreDep) -> dict[str, Any]:
        """Write an annotation: messages close to `question` get `answer`, before the documents and the LLM."""
        number = await store.transaction(lambda conn: annotations.add(conn, body.question, body.answer, "import"))
        return {"id": number, "question": body.question, "answer": body.answer}

    @api.delete("/annotations/{annotation_id}", status_code=204, responses={404: {"description": "no such annotation"}})
    async def remove_annotation(annotation_id: MessageId, store: StoreDep) -> None:
        await store.transaction(lambda conn: annotations.remove(conn, annotation_id))

    @api.post("/messages/{message_id}/label", status_code=201, responses=missing)
    async def label(message_id: MessageId, body: LabelIn, store: StoreDep) -> dict[str, Any]:
        """Give a user message its intent (and entities); `assistant retrain` trains the NLU model on them."""

        def work(conn: Any) -> dict[str, Any]:
            text = feedback.message_text(conn, message_id)
            entities = [_locate(text, entity) for entity in body.entities]
            label_id = feedback.set_label(conn, message_id, body.intent, entities)
            return {"id": label_id, "message_id": message_id, "text": text, "intent": body.intent, "entities": entities}

        return await store.transaction(work)

    @api.get("/models")
    async def models(store: StoreDep) -> list[dict[str, Any]]:
        """The model registry: every NLU model and LoRA adapter, with status and metrics."""
        records = await store.transaction(registry.all_versions)
        return [asdict(record) for record in records]

    @api.delete("/senders/{sender_id}", responses={404: {"description": "no conversation of this sender"}})
    async def forget_sender(
        sender_id: str, request: Request, store: StoreDep, channel: str | None = None
    ) -> dict[str, Any]:
        """Erase one person: their conversations (on ``channel``, or every channel) and everything derived —
        messages, feedback, labels, outbox rows, prompts, annotations made from its reviewed replies, and the
        training exports and reports quoting them."""
        done = await erasure.forget(store, request.app.state.settings, sender_id, channel)
        if not done.erased.conversations:
            where = f" on {channel}" if channel else ""
            raise HTTPException(404, f"no conversation of {sender_id!r}{where} is stored; nothing was erased")
        counts = asdict(done.erased)
        counts.pop("texts")
        return {"sender": sender_id, "channel": channel, **counts, "files": [str(p) for p in done.files]}

    return api
