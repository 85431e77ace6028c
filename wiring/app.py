"""The FastAPI application (wiring, the top layer): picks the plugins named in the settings through their entry
points, builds the backends, hands the channels the turn API, and serves health, status and metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from assistant import __version__
from assistant.config import MIN_SECRET_CHARS, Settings
from assistant.contracts import (
    ACTIONS,
    CHANNELS,
    EMBEDDERS,
    LLM_BACKENDS,
    NLU_BACKENDS,
    SERVERS,
    Action,
    AssistantError,
    Channel,
    DeliveringChannel,
    Embedder,
    FeedbackLimit,
    FeedbackTooLong,
    InsecureSettings,
    InvalidInput,
    MessageNotFound,
    NothingToReview,
    Overloaded,
    Refused,
    ServingState,
    WrongMessageKind,
)
from assistant.domain import Domain
from assistant.infra import entry_points
from assistant.knowledge.retrieval import HybridRetriever
from assistant.store import Store, kb
from assistant.turn.inputs import MAX_ROW_ID
from assistant.turn.pipeline import TurnPipeline
from assistant.workers.delivery import DeliveryWorker
from assistant.workers.erasure import RetentionWorker
from assistant.workers.model_watcher import ActiveModelWatcher
from compat import old_plugins
from plugins.actions.rasa_sdk import remote_actions
from wiring import admin_api as api

log = logging.getLogger(__name__)


class _Turns:
    """The turn API handed to channels before the app starts; it forwards to the pipeline built at start-up."""

    def __init__(self) -> None:
        self.pipeline: TurnPipeline | None = None

    def __getattr__(self, name: str) -> Any:
        if self.pipeline is None:
            raise RuntimeError("the app has not started")
        return getattr(self.pipeline, name)


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    if error.get("type") == "json_invalid":
        return f"the request body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
    return f"{where or 'body'}: {error.get('msg', 'invalid')}"


def error_body(
    status: int, message: str, headers: dict[str, str] | None = None, error: str | None = None
) -> JSONResponse:
    """Every 4xx has this one shape (``ErrorBody``): ``error`` names the kind (by default the status's phrase),
    ``message`` is a sentence."""
    return JSONResponse({"error": error or HTTPStatus(status).phrase.lower(), "message": message}, status, headers)


async def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    return error_body(404, str(exc))


async def _unprocessable(_request: Request, exc: Exception) -> JSONResponse:
    return error_body(422, str(exc), error="invalid request")


async def _too_much(_request: Request, exc: Exception) -> JSONResponse:
    return error_body(429, str(exc), {"Retry-After": "3600"})


async def _refused(_request: Request, exc: Exception) -> JSONResponse:
    """Overloaded (503) or RateLimited (429): nothing was stored; Retry-After says when to send it again."""
    assert isinstance(exc, Refused)
    status = 503 if isinstance(exc, Overloaded) else 429
    headers = {"Retry-After": str(exc.retry_after_s)}
    return error_body(status, str(exc), headers, error="refused")


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    return error_body(exc.status, str(exc), error="invalid request")


async def _conflict(_request: Request, exc: Exception) -> JSONResponse:
    return error_body(409, str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 400 for a body it could not parse (not UTF-8, nested deeper than the JSON parser goes) is a
    422 with a sentence here, like any other body that is not valid JSON; other HTTP errors in the one shape."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        message = "the request body is not valid JSON (it is not UTF-8, or it is nested too deeply)"
        return error_body(422, message, error="invalid request")
    if exc.status_code == 405:  # Starlette's Allow names the first route of the path only (GET, not also POST)
        return error_body(405, str(exc.detail), {"Allow": ", ".join(_methods_of(request))})
    return error_body(exc.status_code, str(exc.detail), exc.headers)


def _methods_of(request: Request) -> list[str]:
    """Every method the app's routes take on this request's path (asked of the router, included routers too)."""
    methods = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
    return [
        m
        for m in methods
        if any(r.matches({**request.scope, "method": m})[0] == Match.FULL for r in request.app.routes)
    ]


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    message = "; ".join(_describe(e) for e in errors)
    detail = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in errors]
    return JSONResponse({"error": "invalid request", "message": message, "detail": detail}, status_code=422)


class ErrorBody(BaseModel):
    """What every 4xx says: ``error`` the kind, ``message`` a sentence; an invalid body's ``detail`` lists fields."""

    error: str
    message: str
    detail: Any = None


BackendFactory = Callable[[Settings, ServingState], Any]


def _retriever(
    settings: Settings, store: Store, embedder: Callable[[Settings], Embedder] | None
) -> HybridRetriever | None:
    """The knowledge base's retriever; without an encoder the app still runs (open questions go to the LLM)."""
    if not settings.kb.enabled:
        return None
    try:
        made = (embedder or entry_points.load(EMBEDDERS, settings.kb.embedder))(settings)
    except AssistantError as exc:
        log.warning("the knowledge base is off: %s", exc)
        return None
    return HybridRetriever(settings.kb, store, made)


def create_app(
    settings: Settings | None = None,
    nlu: BackendFactory | None = None,
    llm: BackendFactory | None = None,
    llm_server: Callable[[Settings], Any] | None = None,
    actions: dict[str, Action] | None = None,
    embedder: Callable[[Settings], Embedder] | None = None,
) -> FastAPI:
    """The app. ``nlu``, ``llm``, ``llm_server``, ``actions``, ``embedder``: use these instead of the plugins the
    settings name (in-process tests hand in small fakes that implement the contracts)."""
    settings = settings or Settings()
    if not settings.dev_mode and (weak := settings.weak_secrets()):
        verb = "is a placeholder or is" if len(weak) == 1 else "are placeholders or"
        raise InsecureSettings(
            f"refusing to start: {', '.join(weak)} {verb} shorter than {MIN_SECRET_CHARS} characters; set real "
            "secrets (e.g. `openssl rand -hex 24`), or ASSISTANT_DEV_MODE=true on a development machine"
        )
    installed = entry_points.available(CHANNELS)
    if missing := set(settings.channels) - set(installed):
        raise entry_points.PluginNotFound(f"channels not installed: {', '.join(sorted(missing))}")
    enabled = list(dict.fromkeys(settings.channels))
    channels: dict[str, Channel] = {name: entry_points.load(CHANNELS, name)(settings) for name in enabled}
    delivering = {name: c for name, c in channels.items() if isinstance(c, DeliveringChannel)}

    make_nlu = nlu or entry_points.load(NLU_BACKENDS, settings.nlu_backend)
    make_llm = llm or entry_points.load(LLM_BACKENDS, settings.llm.backend)
    make_server = llm_server or entry_points.load(SERVERS, settings.llm.server)
    serving = ServingState(llm_model=settings.default_llm_model)
    turns = _Turns()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.db_url, settings.db)
        nlu_backend = old_plugins.backend(make_nlu, settings, serving)
        llm_backend = old_plugins.llm(old_plugins.backend(make_llm, settings, serving))
        server = make_server(settings)
        domain = Domain.load(settings.bot_dir)
        if actions is None:
            loaded = {name: cls(settings) for name, cls in entry_points.load_all(ACTIONS).items()}
        else:
            loaded = dict(actions)
        loaded.update(remote_actions(settings, domain, store, loaded))  # the domain's, on a rasa-sdk server
        replies_waiting = asyncio.Event()
        retriever = _retriever(settings, store, embedder)
        pipeline = TurnPipeline(
            settings, store, nlu_backend, llm_backend, loaded, domain, serving, replies_waiting, retriever
        )
        turns.pipeline = pipeline
        app.state.settings, app.state.store, app.state.pipeline = settings, store, pipeline
        await nlu_backend.health()  # learns the served model's name before the first turn (best effort)
        watcher = ActiveModelWatcher(settings, store, serving, server)
        watcher.start()
        deliveries = DeliveryWorker(settings, store, pipeline, delivering, replies_waiting)
        deliveries.start()
        retention = RetentionWorker(settings, store)
        retention.start()
        try:
            yield
        finally:
            await retention.stop()
            await watcher.stop()
            await pipeline.aclose()
            await deliveries.stop()
            await asyncio.gather(
                nlu_backend.aclose(),
                llm_backend.aclose(),
                server.aclose(),
                *(channel.aclose() for channel in delivering.values()),
                *(action.aclose() for action in loaded.values() if hasattr(action, "aclose")),
            )
            await store.aclose()

    app = FastAPI(
        title="assistant", version=__version__, lifespan=lifespan, max_body_size=settings.limits.max_body_bytes,
        **({} if settings.public_docs else {"docs_url": None, "redoc_url": None, "openapi_url": None}),
        responses={422: {"model": ErrorBody, "description": "the request is not valid (the reason is in `message`)"}},
    )  # fmt: skip
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(InvalidInput, _invalid)
    app.add_exception_handler(MessageNotFound, _not_found)
    app.add_exception_handler(WrongMessageKind, _conflict)  # the id exists, but is not what this needs
    app.add_exception_handler(FeedbackTooLong, _unprocessable)
    app.add_exception_handler(FeedbackLimit, _too_much)
    app.add_exception_handler(NothingToReview, _conflict)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    for channel in channels.values():
        app.include_router(old_plugins.router(channel, turns))
    app.include_router(api.router())

    @app.get("/kb/passages/{chunk_id}", responses={
        200: {"description": "the passage: its title, document name and text", "content": {"text/plain": {}}},
        404: {"description": "no such passage"},
    })  # fmt: skip
    async def passage(chunk_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)], request: Request) -> Response:
        """A passage a reply cited (the widget links its sources here): its title, document name and text."""
        store: Store = request.app.state.store
        found = await store.transaction(lambda conn: kb.passages(conn, [chunk_id]))
        if chunk_id not in found:
            return error_body(404, f"no passage {chunk_id} in the knowledge base")
        p = found[chunk_id]
        name = p.source.rsplit("/", 1)[-1]
        return PlainTextResponse(f"{p.title} ({name})\n\n{p.text}\n")

    @app.get("/health")
    async def health() -> dict[str, str]:
        """The app itself is up (its backends may not be: see /status)."""
        return {"status": "ok"}

    @app.get("/status")
    async def status(request: Request) -> dict[str, Any]:
        """Whether the NLU and LLM servers answer; with the admin token also where they are, their models,
        the database and the lines in front of the backends (anonymous callers learn only up or down)."""
        pipeline: TurnPipeline = request.app.state.pipeline
        nlu, llm = await asyncio.gather(pipeline.nlu.health(), pipeline.llm.health())
        if not api.is_admin(request):
            return {"version": __version__, "nlu": {"ok": nlu.ok}, "llm": {"ok": llm.ok}}
        admission = pipeline.admission
        return {
            "version": __version__,
            "channels": enabled,
            "nlu": {
                "ok": nlu.ok,
                "detail": nlu.detail,
                "url": serving.nlu_endpoint or settings.rasa.url,
                "endpoint": serving.nlu_endpoint,  # None: the configured server
            },
            "llm": {"ok": llm.ok, "detail": llm.detail, "url": settings.vllm.url, "active_model": serving.llm_model},
            "database": settings.db_location,
            "backends": {
                c.backend: {"waiting": c.waiting, "in_flight": c.in_flight, "concurrency": c.concurrency}
                for c in (admission.nlu, admission.llm)
            },
        }

    metrics_guard = [] if settings.public_metrics else [Depends(api.require_admin)]
    if not settings.public_docs:  # the schema for the admin token only; no browsable docs

        @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(api.require_admin)])
        async def openapi_schema() -> dict[str, Any]:
            return app.openapi()

    @app.get("/metrics", response_class=PlainTextResponse, dependencies=metrics_guard)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
