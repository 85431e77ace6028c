"""`assistant` command line: up, serve, chat, train nlu, status, db upgrade (and, from
``assistant.cli_training``: retrain, export, review, models)."""

from __future__ import annotations

import json
import signal
import sys
import time
import uuid
from types import FrameType
from typing import Annotated, Any

import httpx
import typer
from httpx_sse import connect_sse
from rich.table import Table

from assistant.cli_channels import register as register_channel_commands
from assistant.cli_training import register as register_training_commands
from assistant.config import Settings
from assistant.terminal import console, err, fail

app = typer.Typer(help="Conversational assistant: Rasa routes, vLLM answers, every turn in SQL.", no_args_is_help=True)
train_app = typer.Typer(help="Train models.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(db_app, name="db")
MAX_RESTARTS = 5
register_training_commands(app)
register_channel_commands(app)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the latest version."""
    from assistant.migrations.migrate import upgrade

    settings = Settings()
    upgrade(settings.db_url)
    console.print(f"[green]✔[/] database schema up to date ({settings.db_url.split('@')[-1]})")


@train_app.command("nlu")
def train_nlu(
    force: Annotated[bool, typer.Option(help="train even if this bot is already trained")] = True,
) -> None:
    """Train the bot's NLU model with Rasa (real `rasa train nlu`) and serve it (hot-swapped if Rasa runs)."""
    from assistant.cli_training import run_with_store
    from nlu.server import RasaNotInstalled, train_nlu
    from training.publish import adopt_nlu_model

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        path = train_nlu(settings, force=force, console=console)
        version = run_with_store(lambda store: adopt_nlu_model(settings, store, path, console))
    except (RasaNotInstalled, RuntimeError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"model: {path} ({version}, active)")


def _build_app(settings: Settings) -> Any:
    """The app, or exit 1 with the sentence that says which plugin or channel option is wrong."""
    from assistant.app import create_app
    from assistant.plugins import PluginNotFound
    from plugins.channels.options import ChannelConfigError

    try:
        return create_app(settings)
    except (PluginNotFound, ChannelConfigError) as exc:
        raise fail(str(exc)) from exc


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="default: settings.host")] = None,
    port: Annotated[int | None, typer.Option(help="default: settings.port")] = None,
) -> None:
    """Run the assistant's HTTP app (Rasa and vLLM must already be reachable at their URLs)."""
    import uvicorn

    from assistant.migrations.migrate import upgrade

    settings = Settings()
    application = _build_app(settings)
    upgrade(settings.db_url)
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port or settings.port,
        log_level="warning",
        access_log=False,
    )


@app.command()
def up() -> None:
    """Start everything: train the NLU model if needed, then Rasa, vLLM and the app; Ctrl-C stops all."""
    from assistant.cli_training import run_with_store
    from assistant.migrations.migrate import upgrade
    from assistant.services import ServiceFailed, ServiceSpec, Supervisor, tail
    from nlu.server import RasaNotInstalled, link_active_model, rasa_service
    from plugins.llm.vllm_server import VLLMNotInstalled, vllm_service
    from training.publish import serving_nlu_model

    settings = Settings()
    _build_app(settings)  # a wrong channel option stops here, before any server starts
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.db_url)
    supervisor = Supervisor(settings.data_dir / "logs", console)
    state_file = settings.data_dir / "run" / "services.json"

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        specs: list[ServiceSpec] = []
        if settings.rasa.managed:
            model = run_with_store(lambda store: serving_nlu_model(settings, store, console))
            specs.append(rasa_service(settings, link_active_model(settings, model).parent))
        if settings.vllm.managed:
            specs.append(vllm_service(settings))
        specs.append(
            ServiceSpec(
                name="assistant",
                command=[sys.executable, "-m", "assistant", "serve"],
                health_url=f"{settings.public_url}/health",
                startup_timeout_s=60,
            )
        )
        supervisor.wait_healthy([supervisor.start(spec) for spec in specs])
        supervisor.write_state(state_file)
        _print_urls(settings)
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
    except (ServiceFailed, RasaNotInstalled, VLLMNotInstalled, RuntimeError) as exc:
        supervisor.stop_all()
        raise fail(str(exc)) from exc
    finally:
        supervisor.stop_all()
        state_file.unlink(missing_ok=True)
    console.print("[green]✔[/] stopped")


def _print_urls(settings: Settings) -> None:
    table = Table(title="assistant is up", show_header=False)
    if "web" in settings.channels:
        table.add_row("chat page", f"{settings.public_url}/chat")
    table.add_row("REST webhook", f"{settings.public_url}/webhooks/rest/webhook")
    table.add_row("REST stream (SSE)", f"{settings.public_url}/webhooks/rest/stream")
    table.add_row("status", f"{settings.public_url}/status")
    table.add_row("API docs", f"{settings.public_url}/docs")
    table.add_row("Rasa", settings.rasa.url + ("" if settings.rasa.managed else " (external)"))
    table.add_row("vLLM", settings.vllm.url + ("" if settings.vllm.managed else " (external)"))
    table.add_row("database", settings.db_url.split("@")[-1])
    console.print(table)
    console.print(f"Talk to it: [bold]assistant chat[/] (or curl the webhook). Logs: {settings.data_dir / 'logs'}")


@app.command()
def chat(
    url: Annotated[str | None, typer.Option(help="the assistant's URL; default from settings")] = None,
    sender: Annotated[str | None, typer.Option(help="conversation id; default: a new one")] = None,
) -> None:
    """Chat with a running assistant in the terminal; LLM replies stream as they are written."""
    base = (url or Settings().public_url).rstrip("/")
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


@app.command()
def status(url: Annotated[str | None, typer.Option(help="the assistant's URL")] = None) -> None:
    """Which services are up and which models/adapters are active."""
    settings = Settings()
    base = (url or settings.public_url).rstrip("/")
    table = Table(title=f"assistant at {base}")
    table.add_column("service")
    table.add_column("up")
    table.add_column("detail")
    try:
        data = httpx.get(f"{base}/status", timeout=10).json()
    except httpx.HTTPError as exc:
        table.add_row("assistant", "[red]no[/]", str(exc))
        console.print(table)
        raise typer.Exit(1) from exc
    table.add_row("assistant", "[green]yes[/]", f"version {data['version']}, channels {', '.join(data['channels'])}")
    for name in ("nlu", "llm"):
        part = data[name]
        detail = part["detail"] + (f"; active: {part['active_model']}" if "active_model" in part else "")
        table.add_row(f"{name} ({part['url']})", "[green]yes[/]" if part["ok"] else "[red]no[/]", detail)
    table.add_row("database", "", data["database"])
    console.print(table)
    if not (data["nlu"]["ok"] and data["llm"]["ok"]):
        raise typer.Exit(1)
