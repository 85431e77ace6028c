"""Runs Rasa in its own environment: `rasa train nlu` for the bot, and `rasa run --enable-api`.

Models are named by a fingerprint of the bot's pipeline config and training data, so an unchanged bot
is never trained twice.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections import deque
from pathlib import Path

from rich.console import Console

from assistant.config import Settings
from assistant.services import ServiceSpec, host_port

RASA_ENV = {
    "RASA_TELEMETRY_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "PYTHONWARNINGS": "ignore",
}


class RasaNotInstalled(RuntimeError):
    pass


def rasa_executable(settings: Settings) -> str:
    if settings.rasa.python_env is not None:
        candidate = settings.rasa.python_env / "bin" / "rasa"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("rasa")
    if found is None:
        raise RasaNotInstalled(
            "Rasa is not installed: run scripts/setup.sh (it builds the Rasa environment and writes "
            ".env.setup), or set ASSISTANT_RASA__PYTHON_ENV to a virtual environment with rasa 3.6."
        )
    return found


def training_files(bot_dir: Path) -> list[Path]:
    return [bot_dir / "config.yml", *sorted((bot_dir / "data").rglob("*.yml"))]


def fingerprint(bot_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in training_files(bot_dir):
        digest.update(path.relative_to(bot_dir).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def model_path(settings: Settings) -> Path:
    return settings.rasa_models_dir / f"nlu-{fingerprint(settings.bot_dir)}.tar.gz"


def train_nlu(settings: Settings, force: bool = False, console: Console | None = None) -> Path:
    """Train the bot's NLU model with real Rasa (skipped when this exact bot is already trained)."""
    console = console or Console()
    target = model_path(settings)
    if target.exists() and not force:
        return target
    settings.rasa_models_dir.mkdir(parents=True, exist_ok=True)
    command = [
        rasa_executable(settings), "train", "nlu",
        "--config", str(settings.bot_dir / "config.yml"),
        "--nlu", str(settings.bot_dir / "data"),
        "--out", str(settings.rasa_models_dir),
        "--fixed-model-name", target.name.removesuffix(".tar.gz"),
    ]  # fmt: skip
    started = time.monotonic()
    last_lines: deque[str] = deque(maxlen=30)
    with console.status(f"training the NLU model ({settings.bot_dir.name}) with Rasa") as status:
        process = subprocess.Popen(
            command,
            cwd=settings.data_dir,  # Rasa keeps its training cache (.rasa/) here
            env={**os.environ, **RASA_ENV},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
        assert process.stdout is not None
        for raw in process.stdout:
            for line in raw.replace("\r", "\n").splitlines():
                if line.strip():
                    last_lines.append(line)
                    status.update(f"training the NLU model: {line.strip()[:100]}")
        process.wait()
    if process.returncode != 0 or not target.exists():
        raise RuntimeError(f"rasa train nlu failed (exit {process.returncode}); last output:\n" + "\n".join(last_lines))
    console.print(f"[green]✔[/] trained {target.name} in {time.monotonic() - started:.0f} s")
    return target


def rasa_service(settings: Settings, model: Path) -> ServiceSpec:
    host, port = host_port(settings.rasa.url, 5005)
    command = [
        rasa_executable(settings), "run", "--enable-api",
        "--interface", host, "--port", str(port),
        "--model", str(model),
    ]  # fmt: skip
    token = f"?token={settings.rasa.token}" if settings.rasa.token else ""
    if settings.rasa.token:
        command += ["--auth-token", settings.rasa.token]
    return ServiceSpec(
        name="rasa",
        command=command,
        health_url=f"{settings.rasa.url.rstrip('/')}/status{token}",
        env=RASA_ENV,
        cwd=settings.data_dir,
        startup_timeout_s=settings.rasa.startup_timeout_s,
        ready=lambda r: r.status_code == 200 and bool(r.json().get("model_file")),
    )
