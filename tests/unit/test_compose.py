"""docker-compose.yml, the Dockerfile and .env.example wired together (no Docker engine here, so the files
are checked, not run): the services and their images, healthchecks, start order, the volumes the trainer
shares with Rasa and vLLM at the paths the app records, and that every ASSISTANT_* variable they set is a
setting the app actually reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from assistant.config import Settings
from plugins.nlu.rasa.runner import active_model_dir

REPO = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?]([^}]*))?\}")


def example_env() -> dict[str, str]:
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``, with ``$$`` left for the container."""
    if isinstance(value, str):

        def one(match: re.Match[str]) -> str:
            name, fallback = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if "?" in match.group(0).split(name, 1)[1][:2]:
                pytest.fail(f"{name} is required by docker-compose.yml but missing from .env.example")
            return fallback or ""

        return VARIABLE.sub(one, value.replace("$$", "\0")).replace("\0", "$")
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return interpolate(yaml.safe_load((REPO / "docker-compose.yml").read_text()), example_env())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (volume name or host path)."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        out[target] = source
    return out


def setting_exists(variable: str) -> bool:
    """ASSISTANT_RASA__URL -> Settings.rasa.url (nested models followed; dict fields take any key)."""
    path = variable.removeprefix("ASSISTANT_").lower().split("__")
    model: type[BaseModel] = Settings
    for index, part in enumerate(path):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return index == len(path) - 1 or str(annotation).startswith("dict")
    return False


def test_services_images_and_profiles(services: dict[str, Any]) -> None:
    assert set(services) == {"assistant", "rasa", "vllm", "postgres", "trainer"}
    assert services["assistant"]["build"]["target"] == "app"
    assert services["trainer"]["build"]["target"] == "trainer"
    assert services["trainer"]["profiles"] == ["trainer"]  # only when the user runs it (cron)
    rasa_dockerfile = (REPO / services["rasa"]["build"]["dockerfile"]).read_text()
    assert re.search(r"^FROM rasa/rasa:3\.6\.21-full$", rasa_dockerfile, re.M)
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")  # the knowledge base needs pgvector
    vllm_pin = re.search(r"^vllm==(\S+)$", (REPO / "envs" / "vllm-cuda.lock.txt").read_text(), re.M)
    assert vllm_pin and services["vllm"]["image"] == f"vllm/vllm-openai:v{vllm_pin.group(1)}"


def test_every_long_running_service_has_a_healthcheck_and_the_app_waits_for_them(services: dict[str, Any]) -> None:
    for name in ("assistant", "rasa", "vllm", "postgres"):
        test = " ".join(services[name]["healthcheck"]["test"])
        assert test, name
    assert "8080/health" in " ".join(services["assistant"]["healthcheck"]["test"])
    assert "8000/health" in " ".join(services["vllm"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name in ("assistant", "trainer"):
        depends = services[name]["depends_on"]
        assert {k: v["condition"] for k, v in depends.items()} == dict.fromkeys(
            ("postgres", "rasa", "vllm"), "service_healthy"
        )
    assert "ports" in services["assistant"] and "container_name" not in services["assistant"]  # can scale


def test_vllm_serves_lora_on_the_gpu(services: dict[str, Any]) -> None:
    vllm = services["vllm"]
    command = vllm["command"]
    assert "--enable-lora" in command
    assert environment(vllm)["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    device = vllm["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert services["trainer"]["deploy"] == vllm["deploy"]
    served = command[command.index("--served-model-name") + 1]
    assert environment(services["assistant"])["ASSISTANT_VLLM__SERVED_MODEL_NAME"] == served
    assert mounts(vllm)["/models/base"] == mounts(services["trainer"])["/models/base"]  # adapters fit the base
    assert command[command.index("--model") + 1] == environment(services["trainer"])["ASSISTANT_VLLM__BASE_MODEL"]


def test_trainer_shares_model_volumes_at_the_paths_the_registry_records(services: dict[str, Any]) -> None:
    trainer = services["trainer"]
    settings = Settings(data_dir=Path(environment(trainer)["ASSISTANT_DATA_DIR"]))
    rasa_models, adapters = str(settings.rasa_models_dir), str(settings.adapters_dir)
    assert mounts(trainer)[rasa_models] == mounts(services["rasa"])[rasa_models]
    assert mounts(trainer)[adapters] == mounts(services["vllm"])[adapters]
    rasa_command = services["rasa"]["command"]
    assert rasa_command[rasa_command.index("--model") + 1] == str(active_model_dir(settings))
    assert "--enable-api" in rasa_command
    token = rasa_command[rasa_command.index("--auth-token") + 1]
    assert environment(services["assistant"])["ASSISTANT_RASA__TOKEN"] == token
    assert environment(trainer)["ASSISTANT_TRAINING__STANDIN_HOST"] in trainer["networks"]["default"]["aliases"]


def test_app_environment_points_at_the_services_and_names_real_settings(services: dict[str, Any]) -> None:
    for name in ("assistant", "trainer"):
        env = environment(services[name])
        unknown = [key for key in env if key.startswith("ASSISTANT_") and not setting_exists(key)]
        assert unknown == [], f"{name} sets variables the app does not read: {unknown}"
        assert env["ASSISTANT_RASA__URL"] == "http://rasa:5005" and env["ASSISTANT_VLLM__URL"] == "http://vllm:8000"
        assert env["ASSISTANT_RASA__MANAGED"] == env["ASSISTANT_VLLM__MANAGED"] == "false"
        postgres = environment(services["postgres"])
        url = env["ASSISTANT_DATABASE_URL"]
        expected = "postgresql+asyncpg://{POSTGRES_USER}:{POSTGRES_PASSWORD}@postgres:5432/{POSTGRES_DB}"
        assert url == expected.format(**postgres)
        settings = Settings(**{"database_url": url})
        assert settings.db_url == url
    commented = [line.lstrip("# ").split("=")[0] for line in (REPO / ".env.example").read_text().splitlines()]
    documented = [key for key in commented if key.startswith("ASSISTANT_")]
    assert documented and all(setting_exists(key) for key in documented), documented
    assert not setting_exists("ASSISTANT_RASA__NO_SUCH_THING")  # the check itself can fail


def test_app_image_is_slim_non_root_and_healthchecked() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    stages = {stage.split("\n", 1)[0].split(" AS ")[-1]: stage for stage in dockerfile.split("FROM ")[1:]}
    app = stages["app"]
    assert app.startswith("python:3.11-slim AS app")
    # the encoder is exported in its own stage: torch never reaches the app image
    assert "COPY --from=encoder /opt/encoder" in app and "torch" not in app
    assert "ASSISTANT_KB__ENCODER_DIR=/opt/encoder" in app and "export_encoder.py" in stages["encoder"]
    assert re.search(r"^USER (?!root)\w+", app, re.M)
    assert "HEALTHCHECK" in app and "/health" in app
    assert "playwright" in app and "grep -vE" in app  # the test tools stay out of the app image
    assert re.search(r'^CMD \["assistant", "serve"\]', app, re.M)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and "var" in ignored
