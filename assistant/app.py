"""The FastAPI application: builds the backends from settings, mounts the channel plugins, and serves
health, status and metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from assistant import __version__, api, plugins
from assistant.active_models import ActiveModelWatcher
from assistant.config import Settings
from assistant.delivery import DeliveryWorker
from assistant.domain import Domain
from assistant.pipeline import TurnPipeline
from assistant.protocols import ACTIONS, CHANNELS, LLM_BACKENDS, NLU_BACKENDS, Channel, DeliveringChannel
from assistant.store import Store

log = logging.getLogger(__name__)


def get_pipeline(request: Request) -> TurnPipeline:
    """FastAPI dependency for channel endpoints."""
    return request.app.state.pipeline


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    if error.get("type") == "json_invalid":
        return f"the request body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
    return f"{where or 'body'}: {error.get('msg', 'invalid')}"


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    message = "; ".join(_describe(e) for e in errors)
    detail = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in errors]
    return JSONResponse({"error": "invalid request", "message": message, "detail": detail}, status_code=422)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    installed = plugins.available(CHANNELS)
    if missing := set(settings.channels) - set(installed):
        raise plugins.PluginNotFound(f"channels not installed: {', '.join(sorted(missing))}")
    enabled = list(dict.fromkeys(settings.channels))
    channels: dict[str, Channel] = {name: plugins.load(CHANNELS, name)(settings) for name in enabled}
    delivering = {name: c for name, c in channels.items() if isinstance(c, DeliveringChannel)}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.db_url)
        nlu = plugins.load(NLU_BACKENDS, settings.nlu_backend)(settings)
        llm = plugins.load(LLM_BACKENDS, settings.llm.backend)(settings)
        actions = {name: cls(settings) for name, cls in plugins.load_all(ACTIONS).items()}
        app.state.settings = settings
        app.state.pipeline = TurnPipeline(settings, store, nlu, llm, actions, Domain.load(settings.bot_dir))
        await nlu.health()  # learns the served model's name before the first turn (best effort)
        app.state.watcher = watcher = ActiveModelWatcher(settings, app.state.pipeline)
        watcher.start()
        deliveries = DeliveryWorker(settings, app.state.pipeline, delivering)
        deliveries.start()
        try:
            yield
        finally:
            await watcher.stop()
            await app.state.pipeline.aclose()
            await deliveries.stop()
            await asyncio.gather(nlu.aclose(), llm.aclose(), *(channel.aclose() for channel in delivering.values()))
            await store.aclose()

    app = FastAPI(title="assistant", version=__version__, lifespan=lifespan)
    app.add_exception_handler(RequestValidationError, _validation_error)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    for channel in channels.values():
        app.include_router(channel.router())
    app.include_router(api.router())

    @app.get("/health")
    async def health() -> dict[str, str]:
        """The app itself is up (its backends may not be: see /status)."""
        return {"status": "ok"}

    @app.get("/status")
    async def status(request: Request) -> dict[str, Any]:
        """Which services answer and which models/adapters are active."""
        pipeline: TurnPipeline = request.app.state.pipeline
        nlu, llm = await asyncio.gather(pipeline.nlu.health(), pipeline.llm.health())
        return {
            "version": __version__,
            "channels": enabled,
            "nlu": {"ok": nlu.ok, "detail": nlu.detail, "url": request.app.state.watcher.nlu_url},
            "llm": {
                "ok": llm.ok,
                "detail": llm.detail,
                "url": settings.vllm.url,
                "active_model": pipeline.active_model,
            },
            "database": settings.db_url.split("@")[-1],
        }

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
