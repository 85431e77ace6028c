"""The Rasa server as a `ModelServer` and `NLUTrainer`: how `assistant up` launches it, training candidates
with real `rasa train nlu`, classifying with any model on a stand-in server, and the hot-swap.

Swapping without downtime: a stand-in Rasa server with the new model takes the parses (``reroute``: every app
replica follows it within a second), the main server loads the model with ``PUT /model`` (Rasa loads
synchronously, so it answers nothing for tens of seconds meanwhile), then parses go back to it. The stand-in
started to evaluate a candidate is the one that takes the parses when it is promoted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import yaml

from assistant.config import Settings
from assistant.contracts import (
    AssistantError,
    BackendUnavailable,
    Health,
    ModelKind,
    ModelVersion,
    ParseResult,
    Progress,
    Reroute,
    ServiceSpec,
    TrainedModel,
)
from assistant.infra.services import Supervisor, free_port
from plugins.nlu.rasa import runner
from plugins.nlu.rasa.client import RasaClient, RasaError, model_name, parse_result

DRAIN_S = 1.0  # parses already sent to the old server finish (they take milliseconds)
EVAL_CONCURRENCY = 4


class _FixedRasa:
    """An `NLUBackend` on one Rasa server (evaluations: no stand-in switching, a long timeout)."""

    def __init__(self, url: str, token: str | None) -> None:
        self.client = RasaClient(url, timeout_s=60, token=token)
        self._limit = asyncio.Semaphore(EVAL_CONCURRENCY)

    async def parse(self, text: str) -> ParseResult:
        async with self._limit:
            try:
                return parse_result(await self.client.parse(text))
            except RasaError as exc:
                raise BackendUnavailable(f"Rasa at {self.client.url}: {exc!r}") from exc

    async def health(self) -> Health:
        try:
            return Health(True, str(await self.client.version()))
        except RasaError as exc:
            return Health(False, repr(exc))

    async def aclose(self) -> None:
        await self.client.aclose()


class RasaServer:
    kind = ModelKind.NLU
    serves_versions = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.supervisor = Supervisor(settings.data_dir / "logs")
        self._standins: dict[Path, str] = {}  # model file -> URL of the stand-in serving it

    # ---------------------------------------------------------------- serving

    def launch(self, model: Path | None) -> ServiceSpec | None:
        """`rasa run` on the folder that links the active model, so a restarted server comes back with it."""
        if not self.settings.rasa.managed:
            return None
        if model is None:
            raise AssistantError("the Rasa server needs a model to start with")
        return runner.rasa_service(self.settings, runner.link_active_model(self.settings, model).parent)

    def _main(self, timeout_s: float = 5.0) -> RasaClient:
        return RasaClient(self.settings.rasa.url, timeout_s=timeout_s, token=self.settings.rasa.token)

    async def health(self) -> Health:
        client = self._main()
        try:
            version = await client.version()
            name = model_name(await client.status())
        except RasaError as exc:
            return Health(False, f"{client.url}: {exc!r}")
        finally:
            await client.aclose()
        return Health(name is not None, f"{version}, model {name}")

    async def serves(self, version: ModelVersion) -> bool:
        client = self._main()
        try:
            return model_name(await client.status()) == version.path.name
        except RasaError:
            return False
        finally:
            await client.aclose()

    async def serve(self, version: ModelVersion | None, reroute: Reroute) -> None:
        if version is None:
            raise AssistantError("a Rasa server always serves a model: name the version to serve")
        if (await self.health()).ok:
            standin = self._standins.get(version.path) or await self._start_standin(version.path)
            await reroute(standin)
            try:
                await asyncio.sleep(DRAIN_S)
                client = self._main(timeout_s=600)
                try:
                    await client.load_model(str(version.path.resolve()))
                finally:
                    await client.aclose()
            finally:
                await reroute(None)  # also when the load failed: the main server still has its old model
            await asyncio.sleep(DRAIN_S)  # parses in flight on the stand-in finish before it stops
        runner.link_active_model(self.settings, version.path)  # a (re)started server loads it

    async def _start_standin(self, model: Path) -> str:
        """A second Rasa server with ``model``: evaluates a candidate, then answers while the main one loads it."""
        url = f"http://{self.settings.training.standin_host}:{free_port()}"
        spec = runner.rasa_service(self.settings, model, url=url, name="rasa-standin")
        await asyncio.to_thread(lambda: self.supervisor.wait_healthy([self.supervisor.start(spec)]))
        self._standins[model] = url
        return url

    async def aclose(self) -> None:
        """Stop the stand-ins this object started."""
        await asyncio.to_thread(self.supervisor.stop_all)
        self._standins.clear()

    # ---------------------------------------------------------------- training

    def bot_model(self, force: bool, on_progress: Progress | None = None) -> tuple[Path, str, str]:
        path = runner.train_bot(self.settings, force=force, on_progress=on_progress)
        bot = self.settings.bot_dir
        return path, runner.fingerprint(bot), runner.config_hash(bot / "config.yml")

    def train(
        self,
        data: Path,
        name: str,
        parent: ModelVersion | None,
        parent_config_hash: str | None,
        epochs: int | None,
        on_progress: Progress,
    ) -> TrainedModel:
        """Fine-tuned from ``parent`` when the pipeline is unchanged, else (or when Rasa cannot: new intents)
        trained from scratch."""
        settings = self.settings
        config = self._training_config(data.parent, epochs)
        wanted_hash = runner.config_hash(config)
        models_dir = settings.rasa_models_dir
        if parent and parent.path.exists() and parent_config_hash == wanted_hash:
            try:
                path = runner.rasa_train(
                    settings, config, data, models_dir, name,
                    finetune=parent.path,
                    epoch_fraction=settings.training.nlu_finetune_epoch_fraction,
                    on_progress=on_progress, domain=runner.domain_path(settings.bot_dir),
                )  # fmt: skip
                return TrainedModel(path, "finetune", wanted_hash)
            except runner.RasaTrainingFailed as exc:
                note = f"fine-tuning failed, trained from scratch: {str(exc).splitlines()[-1][:200]}"
        else:
            note = "pipeline config changed, trained from scratch" if parent else "no active model"
        path = runner.rasa_train(
            settings,
            config,
            data,
            models_dir,
            name,
            on_progress=on_progress,
            domain=runner.domain_path(settings.bot_dir),
        )
        return TrainedModel(path, "full", wanted_hash, note)

    def _training_config(self, out: Path, epochs: int | None) -> Path:
        """The bot's pipeline config, with DIET's epochs replaced when asked (that makes it a new config)."""
        source = self.settings.bot_dir / "config.yml"
        if epochs is None:
            return source
        config = yaml.safe_load(source.read_text())
        for component in config.get("pipeline", []):
            if component.get("name") == "DIETClassifier":
                component["epochs"] = epochs
        target = out / "config.yml"
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    @contextlib.asynccontextmanager
    async def evaluating(self, model: Path | None = None, endpoint: str | None = None) -> AsyncIterator[_FixedRasa]:
        """Classify with ``model`` (a stand-in server, kept for a promotion until `aclose`), with the server at
        ``endpoint``, or else with the main server (a stand-in for the active model when the main one is down)."""
        if model is None and endpoint is None and not (await self.health()).ok:
            model = await self._active_model_file()
        if model is not None:
            endpoint = self._standins.get(model) or await self._start_standin(model)
        backend = _FixedRasa(endpoint or self.settings.rasa.url, self.settings.rasa.token)
        try:
            yield backend
        finally:
            await backend.aclose()

    async def _active_model_file(self) -> Path:
        linked = sorted(runner.active_model_dir(self.settings).glob("*.tar.gz"))
        if not linked:
            raise BackendUnavailable(f"Rasa at {self.settings.rasa.url} is down and no model is active")
        return linked[0]
