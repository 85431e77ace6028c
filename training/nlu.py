"""NLU retraining with real Rasa: train a candidate (fine-tuned from the active model when the pipeline is
unchanged, else from scratch), then classify the same held-out examples with the active model and the
candidate, each on its own Rasa server (the main one, and a stand-in started for the candidate)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from assistant.config import Settings
from assistant.services import Running, Supervisor
from nlu.rasa_client import RasaClient
from nlu.server import config_hash, rasa_service, rasa_train
from training.export import ANNOTATION, read_rasa_nlu
from training.metrics import Prediction

Progress = Callable[[int, int, str], None]


@dataclass
class Candidate:
    path: Path
    mode: str  # "finetune" | "full"
    config_hash: str
    note: str = ""


def training_config(settings: Settings, out: Path, epochs: int | None) -> Path:
    """The bot's pipeline config, with DIET's epochs replaced when asked (that makes it a new config)."""
    source = settings.bot_dir / "config.yml"
    if epochs is None:
        return source
    config = yaml.safe_load(source.read_text())
    for component in config.get("pipeline", []):
        if component.get("name") == "DIETClassifier":
            component["epochs"] = epochs
    target = out / "config.yml"
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target


def train_candidate(
    settings: Settings,
    data: Path,
    out: Path,
    name: str,
    parent_path: str | None,
    parent_config_hash: str | None,
    epochs: int | None,
    on_progress: Progress,
) -> Candidate:
    config = training_config(settings, out, epochs)
    wanted_hash = config_hash(config)
    models_dir = settings.rasa_models_dir
    if parent_path and Path(parent_path).exists() and parent_config_hash == wanted_hash:
        try:
            path = rasa_train(
                settings, config, data, models_dir, name,
                finetune=Path(parent_path),
                epoch_fraction=settings.training.nlu_finetune_epoch_fraction,
                on_progress=on_progress,
            )  # fmt: skip
            return Candidate(path, "finetune", wanted_hash)
        except RuntimeError as exc:  # e.g. new intents: Rasa cannot fine-tune, train from scratch
            note = f"fine-tuning failed, trained from scratch: {str(exc).splitlines()[-1][:200]}"
    else:
        note = "pipeline config changed, trained from scratch" if parent_path else "no active model"
    path = rasa_train(settings, config, data, models_dir, name, on_progress=on_progress)
    return Candidate(path, "full", wanted_hash, note)


def test_examples(path: Path) -> list[tuple[str, str]]:
    examples, _ = read_rasa_nlu([path])
    return [(ANNOTATION.sub(lambda m: m.group(1) or m.group(2), e.text), e.intent) for e in examples]


async def predict(url: str, settings: Settings, examples: list[tuple[str, str]]) -> list[Prediction]:
    """Classify every example with the Rasa server at ``url`` (a few at a time)."""
    client = RasaClient(url, timeout_s=60, token=settings.rasa.token)
    limit = asyncio.Semaphore(4)

    async def one(text: str, gold: str) -> Prediction:
        async with limit:
            data = await client.parse(text)
        intent = data.get("intent") or {}
        return Prediction(
            text,
            gold,
            intent.get("name"),
            float(intent.get("confidence") or 0.0),
            [(r["name"], float(r["confidence"])) for r in data.get("intent_ranking", [])],
        )

    try:
        return await asyncio.gather(*(one(text, gold) for text, gold in examples))
    finally:
        await client.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_standin(settings: Settings, supervisor: Supervisor, model: Path) -> tuple[Running, str]:
    """A second Rasa server with ``model``: evaluates the candidate, then answers while the main one loads it."""
    url = f"http://{settings.training.standin_host}:{free_port()}"
    running = supervisor.start(rasa_service(settings, model, url=url, name="rasa-standin"))
    supervisor.wait_healthy([running])
    return running, url
