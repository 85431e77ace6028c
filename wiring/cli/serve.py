"""`assistant up`, `serve`, `chat`, `status`: running the assistant and talking to it."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import httpx
import typer
from httpx_sse import connect_sse
from rich.table import Table

from assistant.config import Settings, read_settings
from assistant.contracts import AssistantError
from wiring.cli.context import Context, sentences
from wiring.cli.terminal import console, err, fail

MAX_RESTARTS = 5


def _build_app(settings: Settings) -> Any:
    """The app (a wrong plugin name or channel option stops here, with its sentence)."""
    from wiring.app import create_app

    return create_app(settings)


def serve(
    host: Annotated[str | None, typer.Option(help="default: settings.host")] = None,
    port: Annotated[int | None, typer.Option(help="default: settings.port")] = None,
) -> None:
    """Run the assistant's HTTP app (Rasa and vLLM must already be reachable at their URLs)."""
    import uvicorn

    context = Context()
    settings = context.settings
    application = _build_app(settings)
    context.migrate()
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port or settings.port,
        log_level="warning",
        access_log=False,
    )


def up(
    bot: Annotated[
        Path | None, typer.Option(help="the bot directory (default: settings.bot_dir, the demo bot)")
    ] = None,
) -> None:
    """Start everything: train the NLU model if needed, then the NLU and LLM servers and the app; Ctrl-C stops all."""
    if bot is not None:
        if not (bot / "domain.yml").is_file() or not (bot / "config.yml").is_file():
            raise fail(f"{bot} is not a bot directory (no domain.yml and config.yml): see assistant init --from-rasa")
        os.environ["ASSISTANT_BOT_DIR"] = str(bot.resolve())  # this process's settings and the app's it starts
    from assistant.contracts import ModelKind, ServiceSpec
    from assistant.infra.services import ServiceFailed, Supervisor, tail
    from plugins.actions.rasa_sdk import action_server_service
    from training.publish import model_server, nlu_trainer, serving_nlu_model

    context = Context()
    settings = context.settings
    _build_app(settings)  # a wrong channel option stops here, before any server starts
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.generate_server_secrets()  # the servers it starts answer only the app (and commands on this data)
    context.migrate()
    _index_knowledge(context)
    supervisor = Supervisor(settings.data_dir / "logs", console)
    state_file = settings.data_dir / "run" / "services.json"

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # both stop everything, whatever a library did to SIGINT's handler (a Ctrl-C that is not acted on leaves
    # the servers running)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        specs: list[ServiceSpec] = []
        nlu_server = nlu_trainer(settings)
        if settings.rasa.managed:  # the NLU server starts with the active model (trained first if need be)
            model = context.run(lambda store: serving_nlu_model(settings, store, nlu_server, console))
            specs.append(nlu_server.launch(model))
        llm_spec = model_server(settings, ModelKind.LLM).launch(None)
        specs += [llm_spec] if llm_spec is not None else []
        actions_spec = action_server_service(settings)  # the bot's actions/ on a rasa-sdk server
        specs += [actions_spec] if actions_spec is not None else []
        specs.append(
            ServiceSpec(
                name="assistant",
                command=[*_this_command(), "serve"],
                health_url=f"{settings.public_url}/health",
                startup_timeout_s=60,
            )
        )
        supervisor.wait_healthy([supervisor.start(spec) for spec in specs])
        supervisor.write_state(state_file)
        _print_urls(settings)
        if settings.llm.starter_adapter:  # meanwhile the base model answers
            threading.Thread(target=_starter, args=(context,), daemon=True, name="starter").start()
        restarts: dict[str, int] = {}
        while True:
            time.sleep(1)
            if (dead := supervisor.first_exited()) is None:
                continue
            name = dead.spec.name
            restarts[name] = restarts.get(name, 0) + 1
            if restarts[name] > MAX_RESTARTS:
                raise ServiceFailed(f"{name} exited {MAX_RESTARTS + 1} times; last log lines:\n{tail(dead.log_path)}")
            err.print(f"[yellow]{name} exited with code {dead.process.returncode}; restarting it[/]")
            supervisor.restart(dead)
            supervisor.write_state(state_file)
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        supervisor.stop_all()
        state_file.unlink(missing_ok=True)
    console.print("[green]✔[/] stopped")


def _index_knowledge(context: Context) -> None:
    """Bring the knowledge base up to date with ``kb.paths`` (default: the bot's kb/ folder, if it has one);
    unchanged files cost nothing. A failure is reported and the assistant starts anyway."""
    settings = context.settings
    paths = [p for p in settings.kb_paths if settings.kb.paths or p.exists()]
    if not settings.kb.enabled or not paths:
        return
    from wiring.cli.kb import index

    try:
        change = index(context, "add", paths=paths)
    except AssistantError as exc:
        err.print(f"[yellow]the knowledge base was not updated: {exc}[/]")
        return
    if change.changed:
        console.print(f"[green]✔[/] knowledge base: {change.summary()}")


def _starter(context: Context) -> None:
    """The starter adapter, trained and gated while the assistant already runs (errors are reported, not fatal)."""
    from training.starter import ensure_starter

    try:
        said = context.run(lambda store: ensure_starter(context.settings, store, console))
    except Exception as exc:  # the assistant goes on with the base model
        err.print(f"[yellow]the starter adapter could not be made: {exc}[/]")
        return
    if said:
        console.print(said)


def _this_command() -> list[str]:
    """How to run this CLI again: the ``assistant`` script beside this Python (so ``ps`` shows ``assistant
    serve``), else the package."""
    script = Path(sys.executable).with_name("assistant")
    return [sys.executable, str(script)] if script.is_file() else [sys.executable, "-m", "wiring"]


def _print_urls(settings: Settings) -> None:
    from plugins.actions.rasa_sdk import action_endpoint

    table = Table(title="assistant is up", show_header=False)
    if "web" in settings.channels:
        table.add_row("chat page", f"{settings.public_url}/chat")
    table.add_row("REST webhook", f"{settings.public_url}/webhooks/rest/webhook")
    table.add_row("REST stream (SSE)", f"{settings.public_url}/webhooks/rest/stream")
    table.add_row("status", f"{settings.public_url}/status")
    table.add_row("API docs", f"{settings.public_url}/docs")
    table.add_row("Rasa", settings.rasa.url + ("" if settings.rasa.managed else " (external)"))
    table.add_row("vLLM", settings.vllm.url + ("" if settings.vllm.managed else " (external)"))
    if endpoint := action_endpoint(settings):
        table.add_row("action server", endpoint)
    table.add_row("database", settings.db_location)
    console.print(table)
    console.print(f"Talk to it: [bold]assistant chat[/] (or curl the webhook). Logs: {settings.data_dir / 'logs'}")


def chat(
    url: Annotated[str | None, typer.Option(help="the assistant's URL; default from settings")] = None,
    sender: Annotated[str | None, typer.Option(help="conversation id; default: a new one")] = None,
) -> None:
    """Chat with a running assistant in the terminal; LLM replies stream as they are written."""
    base = (url or read_settings().public_url).rstrip("/")
    sender = sender or f"cli-{uuid.uuid4().hex[:8]}"
    console.print(f"[dim]talking to {base} as {sender}; Ctrl-D or /quit to leave[/]")
    with httpx.Client(timeout=httpx.Timeout(120, connect=5)) as http:
        while True:
            try:
                text = console.input("[bold cyan]you>[/] ")
            except (EOFError, KeyboardInterrupt):
                break
            if text.strip() in ("/quit", "/exit"):
                break
            if not text.strip():
                continue
            try:
                _stream_reply(http, base, sender, text)
            except httpx.HTTPError as exc:
                err.print(f"[red]cannot reach the assistant at {base}: {exc}[/]")
    console.print()


def _stream_reply(http: httpx.Client, base: str, sender: str, text: str) -> None:
    console.print("[bold magenta]bot>[/] ", end="")
    streamed = ""
    with connect_sse(http, "POST", f"{base}/webhooks/rest/stream", json={"sender": sender, "message": text}) as sse:
        if sse.response.status_code != 200:
            sse.response.read()
            console.print(f"[red]{sse.response.status_code}: {sse.response.text}[/]")
            return
        for event in sse.iter_sse():
            data = json.loads(event.data)
            if event.event == "token":
                streamed += data["text"]
                console.print(data["text"], end="", markup=False, highlight=False)
            elif event.event == "message":
                if data["text"] != streamed:  # intent replies and fallbacks come whole
                    console.print(
                        data["text"][len(streamed) :] if data["text"].startswith(streamed) else data["text"],
                        end="",
                        markup=False,
                        highlight=False,
                    )
                console.print(f"  [dim]({data['route']}: {data['reason']}, {data['latency_ms']:.0f} ms)[/]")


def status(url: Annotated[str | None, typer.Option(help="the assistant's URL")] = None) -> None:
    """Which services are up and which models/adapters are active."""
    settings = read_settings()
    base = (url or settings.public_url).rstrip("/")
    table = Table(title=f"assistant at {base}")
    table.add_column("service")
    table.add_column("up")
    table.add_column("detail")
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        data = httpx.get(f"{base}/status", headers=headers, timeout=10).json()
    except httpx.HTTPError as exc:
        table.add_row("assistant", "[red]no[/]", str(exc))
        console.print(table)
        raise typer.Exit(1) from exc
    if "channels" not in data:  # only up/down without the admin token
        table.add_row("assistant", "[green]yes[/]", f"version {data['version']} (details need ASSISTANT_ADMIN_TOKEN)")
        for name in ("nlu", "llm"):
            table.add_row(name, "[green]yes[/]" if data[name]["ok"] else "[red]no[/]", "")
    else:
        channels = ", ".join(data["channels"])
        table.add_row("assistant", "[green]yes[/]", f"version {data['version']}, channels {channels}")
        for name in ("nlu", "llm"):
            part = data[name]
            detail = part["detail"] + (f"; active: {part['active_model']}" if "active_model" in part else "")
            table.add_row(f"{name} ({part['url']})", "[green]yes[/]" if part["ok"] else "[red]no[/]", detail)
        table.add_row("database", "", data["database"])
    console.print(table)
    if not (data["nlu"]["ok"] and data["llm"]["ok"]):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    for function in (up, serve, chat, status):
        app.command()(sentences(function))
