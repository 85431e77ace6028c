"""Runs Rasa in its own environment: `rasa train nlu`, and `rasa run --enable-api` (the launch spec).

Models are named by a fingerprint of the bot's pipeline config and training data, so an unchanged bot
is never trained twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from assistant.config import Settings
from assistant.contracts import AssistantError, ServiceSpec
from assistant.infra.services import cache_root, host_port, run_tool

PACKAGE_ROOT = Path(__file__).resolve().parents[3]  # holds nlu/, the code Rasa loads from bot configs


def rasa_env() -> dict[str, str]:
    """Environment for Rasa processes: quiet, no telemetry, and this package importable, so pipelines can use
    its components (``nlu.featurizer.SentenceEncoderFeaturizer``)."""
    legacy = PACKAGE_ROOT / "compat" / "rasa_path"  # old class paths of trained models (see compat)
    parts = (str(PACKAGE_ROOT), str(legacy), os.environ.get("PYTHONPATH", ""))
    python_path = os.pathsep.join(p for p in parts if p)
    return {
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONWARNINGS": "ignore",
        "PYTHONPATH": python_path,
    }


class RasaNotInstalled(AssistantError):
    pass


class RasaTrainingFailed(AssistantError):
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


def domain_path(bot_dir: Path) -> Path | None:
    """The bot's domain (a file, or Rasa's ``domain/`` folder): Rasa reads the retrieval intents' responses
    from it too, which its ResponseSelector needs to name what it selected."""
    for path in (bot_dir / "domain.yml", bot_dir / "domain"):
        if path.exists():
            return path
    return None


def training_files(bot_dir: Path) -> list[Path]:
    domain = domain_path(bot_dir)
    domains = [domain] if domain and domain.is_file() else sorted(domain.rglob("*.yml")) if domain else []
    return [bot_dir / "config.yml", *sorted((bot_dir / "data").rglob("*.yml")), *domains]


def fingerprint(bot_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in training_files(bot_dir):
        digest.update(path.relative_to(bot_dir).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def model_path(settings: Settings) -> Path:
    return settings.rasa_models_dir / f"nlu-{fingerprint(settings.bot_dir)}.tar.gz"


def config_hash(config: Path) -> str:
    """Fine-tuning needs the same pipeline: the registry keeps this hash of each model's config."""
    return hashlib.sha256(config.read_bytes()).hexdigest()[:16]


# tqdm bars in Rasa's output: DIET's epochs, and the sentence encoder's fine-tuning steps (nlu.featurizer)
PROGRESS = re.compile(r"(Epochs|Fine-tuning encoder):\s+\d+%.*?(\d+)/(\d+)")


def rasa_train(
    settings: Settings,
    config: Path,
    data: Path,
    out: Path,
    name: str,
    finetune: Path | None = None,
    epoch_fraction: float = 1.0,
    on_progress: Callable[[int, int, str], None] | None = None,
    domain: Path | None = None,
) -> Path:
    """Run real `rasa train nlu` in the Rasa environment; returns the model file, raises with its output.
    ``on_progress(done, total, stage)`` follows encoder fine-tuning steps, then DIET's epochs. ``domain``: the
    bot's (its responses reach the ResponseSelector)."""
    out.mkdir(parents=True, exist_ok=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # Rasa's working directory, so: absolute paths only
    config, data, out = config.resolve(), data.resolve(), out.resolve()
    command = [
        rasa_executable(settings), "train", "nlu",
        "--config", str(config), "--nlu", str(data), "--out", str(out), "--fixed-model-name", name,
    ]  # fmt: skip
    if domain is not None:
        command += ["--domain", str(domain.resolve())]
    if finetune is not None:
        command += ["--finetune", str(finetune.resolve()), "--epoch-fraction", str(epoch_fraction)]

    def follow(line: str) -> None:
        if on_progress and (match := PROGRESS.search(line)):
            stage = "DIET epochs" if match.group(1) == "Epochs" else "encoder fine-tuning steps"
            on_progress(int(match.group(2)), int(match.group(3)), stage)

    # cwd: Rasa keeps its training cache (.rasa/) there
    finished = run_tool(command, {**os.environ, **rasa_env()}, follow, cwd=settings.data_dir)
    target = out / f"{name}.tar.gz"
    if finished.returncode != 0 or not target.exists():
        raise RasaTrainingFailed(
            f"rasa train nlu failed (exit {finished.returncode}); last output:\n" + "\n".join(finished.last_lines)
        )
    return target


def train_bot(
    settings: Settings, force: bool = False, on_progress: Callable[[int, int, str], None] | None = None
) -> Path:
    """Train the bot's NLU model with real Rasa (skipped when this exact bot is already trained here, or
    copied from the machine's cache when another clone or data folder trained it: the same training files,
    Rasa environment and in-Rasa code give the same model)."""
    target = model_path(settings)
    if target.exists() and not force:
        return target
    cached = cache_root() / "rasa-models" / f"{target.name.removesuffix('.tar.gz')}-{_environment_key(settings)}.tar.gz"
    if cached.is_file() and not force:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, target)
        return target
    rasa_train(
        settings,
        settings.bot_dir / "config.yml",
        settings.bot_dir / "data",
        settings.rasa_models_dir,
        target.name.removesuffix(".tar.gz"),
        on_progress=on_progress,
        domain=domain_path(settings.bot_dir),
    )
    with contextlib.suppress(OSError):  # a read-only or full cache only costs the next clone a training
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(cached.name + ".part")
        shutil.copyfile(target, partial)
        partial.rename(cached)
    return target


def _environment_key(settings: Settings) -> str:
    """What besides the training files decides the model: the Rasa environment and the code Rasa loads."""
    digest = hashlib.sha256(str(settings.rasa.python_env or rasa_executable(settings)).encode())
    for path in sorted((Path(__file__).resolve().parents[3] / "nlu").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def active_model_dir(settings: Settings) -> Path:
    """Holds one link to the active model: the Rasa server is started on this folder (it loads the one model
    in it), so a restarted server comes back with the model that was last made active."""
    return settings.rasa_models_dir / "active"


def link_active_model(settings: Settings, model: Path) -> Path:
    folder = active_model_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / model.name
    if not link.exists():
        temporary = folder / f".{model.name}.tmp"
        temporary.unlink(missing_ok=True)
        try:
            os.link(model, temporary)
        except OSError:  # another file system: copy
            shutil.copyfile(model, temporary)
        temporary.rename(link)
    for other in folder.glob("*.tar.gz"):
        if other != link:
            other.unlink()
    return link


def rasa_service(settings: Settings, model: Path, url: str | None = None, name: str = "rasa") -> ServiceSpec:
    url = url or settings.rasa.url
    host, port = host_port(url, 5005)
    command = [
        rasa_executable(settings), "run", "--enable-api",
        "--interface", host, "--port", str(port),
        "--model", str(model),
    ]  # fmt: skip
    token = f"?token={settings.rasa.token}" if settings.rasa.token else ""
    if settings.rasa.token:
        command += ["--auth-token", settings.rasa.token]
    return ServiceSpec(
        name=name,
        command=command,
        health_url=f"{url.rstrip('/')}/status{token}",
        env=rasa_env(),
        cwd=settings.data_dir,
        startup_timeout_s=settings.rasa.startup_timeout_s,
        ready=lambda r: r.status_code == 200 and bool(r.json().get("model_file")),
    )
