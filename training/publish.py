"""Putting a model version into service without downtime, and taking it back out, through the `ModelServer`
contract (how a server swaps is its plugin's business: Rasa's stand-in, vLLM's adapter loading).

Order: the server serves the version first, then the registry names it active; every app follows the registry
(the LLM model name) and the ``nlu.url`` runtime setting (where to parse while the NLU server swaps) within a
second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from assistant.config import Settings
from assistant.contracts import (
    SERVERS,
    AssistantError,
    ModelKind,
    ModelServer,
    ModelVersion,
    NLUTrainer,
)
from assistant.infra import background, entry_points
from assistant.store import Store, locks, registry, runtime
from assistant.store.registry import ModelRecord

APP_SWITCH_TIMEOUT_S = 15.0
OVERRIDE_HEARTBEAT_S = 10.0  # the NLU override's; it expires after training.lock_stale_after_s without one


def model_server(settings: Settings, kind: ModelKind) -> ModelServer:
    """The configured server plugin for ``kind`` (the NLU server is named like the NLU backend)."""
    name = settings.nlu_backend if kind == ModelKind.NLU else settings.llm.server
    return entry_points.load(SERVERS, name)(settings)


def nlu_trainer(settings: Settings) -> Any:
    """The NLU server plugin, which also trains (`NLUTrainer`)."""
    server = model_server(settings, ModelKind.NLU)
    if not isinstance(server, NLUTrainer):
        raise AssistantError(f"the NLU backend {settings.nlu_backend!r} cannot train models")
    return server


def version_of(record: ModelRecord | None) -> ModelVersion | None:
    if record is None:
        return None
    if not record.path:
        raise AssistantError(f"{record.version} has no files recorded")
    return ModelVersion(record.version, Path(record.path))


async def serving_nlu_model(settings: Settings, store: Store, trainer: Any, console: Console) -> Path:
    """The model the NLU server should start with: the registry's active one, else the bot's own (trained if
    needed and registered as the first version)."""
    record = await store.transaction(lambda conn: registry.active(conn, ModelKind.NLU))
    if record and record.path and Path(record.path).exists():
        return Path(record.path)
    console.print(f"training the NLU model ({settings.bot_dir.name}) …")
    model, data_hash, config_hash = await asyncio.to_thread(trainer.bot_model, False)

    def register(conn: Any) -> None:
        if record:
            registry.update_version(conn, record.version, status=registry.FAILED, error=f"{record.path} is gone")
        first = registry.register(
            conn, ModelKind.NLU, status=registry.CANDIDATE, path=str(model), data_hash=data_hash,
            config_hash=config_hash,
        )  # fmt: skip
        registry.activate(conn, first.version)

    await store.transaction(register)
    return model


async def adopt_nlu_model(
    settings: Settings, store: Store, server: ModelServer, model: Path, data_hash: str, config_hash: str
) -> str:
    """Serve a model trained outside `retrain` (`assistant train nlu`): registered as a new version unless
    it already is one, then published. Returns its version."""

    def find_or_register(conn: Any) -> ModelRecord:
        known = [r for r in registry.all_versions(conn, ModelKind.NLU) if r.path == str(model)]
        if known:
            return known[-1]
        current = registry.active(conn, ModelKind.NLU)
        return registry.register(
            conn, ModelKind.NLU, status=registry.CANDIDATE, parent=current.version if current else None,
            path=str(model), data_hash=data_hash, config_hash=config_hash,
        )  # fmt: skip

    record = await store.transaction(find_or_register)
    if record.status != registry.ACTIVE:
        await publish(settings, store, server, ModelKind.NLU, record)
    return record.version


async def app_status(settings: Settings) -> dict[str, Any] | None:
    """The running app's /status with its details (they need the admin token: None without one)."""
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    try:
        async with httpx.AsyncClient(timeout=5, headers={"Authorization": f"Bearer {token}"} if token else {}) as http:
            response = await http.get(f"{settings.public_url}/status")
            status = response.json() if response.status_code == 200 else None
    except httpx.HTTPError:
        return None
    return status if status and "channels" in status else None


async def wait_for_app(settings: Settings, done: Callable[[dict[str, Any]], bool]) -> bool:
    """Wait until the running app shows the change (False when no app answers, or it tells its details only to
    the admin token, which is not set here: then the other replicas' polling is waited for)."""
    deadline = time.monotonic() + APP_SWITCH_TIMEOUT_S
    while time.monotonic() < deadline:
        status = await app_status(settings)
        if status is None:
            await asyncio.sleep(2.5)  # other replicas poll every second
            return False
        if done(status):
            return True
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the app at {settings.public_url} did not switch within {APP_SWITCH_TIMEOUT_S:.0f} s")


def rerouter(settings: Settings, store: Store) -> Callable[[str | None], Any]:
    """The `Reroute` a server is given: every app parses with ``endpoint`` (None: the configured server). While
    an endpoint is set, this process beats its heart on it: if it dies mid-swap the apps go back to the
    configured server by themselves (``runtime.nlu_endpoint``)."""
    holder = locks.new_holder()
    heart: list[asyncio.Task[None]] = []

    async def beat() -> None:
        while True:
            await asyncio.sleep(OVERRIDE_HEARTBEAT_S)
            await store.transaction(lambda conn: runtime.touch(conn, runtime.NLU_ENDPOINT))

    async def reroute(endpoint: str | None) -> None:
        for task in heart:
            await background.cancel(task)
        heart.clear()
        if endpoint is None:
            await store.transaction(lambda conn: runtime.remove(conn, runtime.NLU_ENDPOINT))
        else:
            value = {"url": endpoint, "holder": holder}
            await store.transaction(lambda conn: runtime.put(conn, runtime.NLU_ENDPOINT, value))
            heart.append(asyncio.create_task(beat()))
        await wait_for_app(settings, lambda s: s["nlu"].get("endpoint") == endpoint)

    return reroute


async def publish(
    settings: Settings, store: Store, server: ModelServer, kind: ModelKind, record: ModelRecord | None
) -> None:
    """Serve ``record`` (None: the LLM's base model) and make it the active version everywhere."""
    version = version_of(record)
    with contextlib.suppress(httpx.ConnectError):  # no LLM server yet: the apps have it load the adapter once up
        await server.serve(version, rerouter(settings, store))
    if record is not None:
        await store.transaction(lambda conn: registry.activate(conn, record.version))
    else:
        await store.transaction(lambda conn: registry.deactivate(conn, kind))
    if kind == ModelKind.LLM:
        wanted = record.version if record else settings.default_llm_model
        await wait_for_app(settings, lambda s: s["llm"]["active_model"] == wanted)
