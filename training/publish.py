"""Putting a model version into service without downtime, and taking it back out.

* NLU: a stand-in Rasa server with the new model takes the parses (every app replica follows the
  ``nlu.url`` runtime setting within a second), the main server loads the model with ``PUT /model`` (Rasa
  loads synchronously, so it answers nothing for tens of seconds meanwhile), then parses go back to it.
* LLM: vLLM loads the adapter (``/v1/load_lora_adapter``), then the registry names it active and every
  app switches its model name; requests in flight finish on the adapter they started with.
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
from assistant.services import Supervisor
from assistant.store import Store, registry, runtime
from assistant.store.registry import ModelRecord
from nlu.rasa_client import RasaClient
from nlu.server import config_hash, fingerprint, link_active_model, train_nlu
from plugins.llm.vllm_adapters import VLLMAdapters
from training.nlu import start_standin

APP_SWITCH_TIMEOUT_S = 15.0
DRAIN_S = 1.0  # parses already sent to the old server finish (they take milliseconds)


async def serving_nlu_model(settings: Settings, store: Store, console: Console) -> Path:
    """The model the Rasa server should load: the registry's active one, else the bot's own (trained if
    needed and registered as the first version)."""
    record = await store.transaction(lambda conn: registry.active(conn, "nlu"))
    if record and record.path and Path(record.path).exists():
        return Path(record.path)
    model = await asyncio.to_thread(train_nlu, settings, False, console)

    def register(conn: Any) -> None:
        if record:
            registry.update_version(conn, record.version, status=registry.FAILED, error=f"{record.path} is gone")
        first = registry.register(
            conn,
            "nlu",
            status=registry.CANDIDATE,
            path=str(model),
            data_hash=fingerprint(settings.bot_dir),
            config_hash=config_hash(settings.bot_dir / "config.yml"),
        )
        registry.activate(conn, first.version)

    await store.transaction(register)
    return model


async def adopt_nlu_model(settings: Settings, store: Store, model: Path, console: Console) -> str:
    """Serve a model trained outside `retrain` (`assistant train nlu`): registered as a new version unless
    it already is one, then published. Returns its version."""

    def find_or_register(conn: Any) -> ModelRecord:
        known = [r for r in registry.all_versions(conn, "nlu") if r.path == str(model)]
        if known:
            return known[-1]
        current = registry.active(conn, "nlu")
        return registry.register(
            conn,
            "nlu",
            status=registry.CANDIDATE,
            parent=current.version if current else None,
            path=str(model),
            data_hash=fingerprint(settings.bot_dir),
            config_hash=config_hash(settings.bot_dir / "config.yml"),
        )

    record = await store.transaction(find_or_register)
    if record.status != registry.ACTIVE:
        await publish_nlu(settings, store, record, console)
    return record.version


async def app_status(settings: Settings) -> dict[str, Any] | None:
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.get(f"{settings.public_url}/status")
            return response.json() if response.status_code == 200 else None
    except httpx.HTTPError:
        return None


async def wait_for_app(settings: Settings, done: Callable[[dict[str, Any]], bool]) -> bool:
    """Wait until the running app shows the change (False when no app answers: nothing to wait for)."""
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


async def rasa_is_up(settings: Settings) -> bool:
    client = RasaClient(settings.rasa.url, timeout_s=5, token=settings.rasa.token)
    try:
        await client.version()
        return True
    except Exception:
        return False
    finally:
        await client.aclose()


async def publish_nlu(
    settings: Settings, store: Store, record: ModelRecord, console: Console, standin_url: str | None = None
) -> None:
    """Make ``record`` the served NLU model. ``standin_url``: a Rasa server already serving it."""
    assert record.path
    model = Path(record.path)
    if await rasa_is_up(settings):
        supervisor = Supervisor(settings.data_dir / "logs", console)
        try:
            if standin_url is None:
                console.print(f"starting a stand-in Rasa server with {record.version}")
                _, standin_url = await asyncio.to_thread(start_standin, settings, supervisor, model)
            await _swap_main_rasa(settings, store, model, standin_url, console)
        finally:
            await asyncio.to_thread(supervisor.stop_all)
    else:
        console.print(f"[yellow]Rasa at {settings.rasa.url} is not running: {record.version} loads when it starts[/]")
    link_active_model(settings, model)
    await store.transaction(lambda conn: registry.activate(conn, record.version))


async def _swap_main_rasa(settings: Settings, store: Store, model: Path, standin_url: str, console: Console) -> None:
    await store.transaction(lambda conn: runtime.put(conn, runtime.NLU_URL, {"url": standin_url}))
    try:
        await wait_for_app(settings, lambda s: s["nlu"]["url"] == standin_url)
        await asyncio.sleep(DRAIN_S)
        console.print(f"loading {model.name} into the Rasa server at {settings.rasa.url} (PUT /model)")
        client = RasaClient(settings.rasa.url, timeout_s=600, token=settings.rasa.token)
        try:
            await client.load_model(str(model.resolve()))
        finally:
            await client.aclose()
    finally:
        await store.transaction(lambda conn: runtime.remove(conn, runtime.NLU_URL))
    await wait_for_app(settings, lambda s: s["nlu"]["url"] == settings.rasa.url)
    await asyncio.sleep(DRAIN_S)  # parses in flight on the stand-in finish before it stops


async def publish_llm(settings: Settings, store: Store, record: ModelRecord | None) -> None:
    """Serve adapter ``record`` (None: the base model) in vLLM and switch every app to it."""
    if record is not None:
        assert record.path
        with contextlib.suppress(httpx.ConnectError):  # no vLLM yet: the apps load it once it is up
            await VLLMAdapters(settings).load(record.version, str(Path(record.path).resolve()))
        await store.transaction(lambda conn: registry.activate(conn, record.version))
    else:
        await store.transaction(lambda conn: registry.deactivate(conn, "llm"))
    wanted = record.version if record else (settings.llm.adapter or settings.vllm.served_model_name)
    await wait_for_app(settings, lambda s: s["llm"]["active_model"] == wanted)
