"""Settings for every part of the assistant, in one typed tree.

Sources, strongest first: environment variables (``ASSISTANT_`` prefix, ``__`` between levels, e.g.
``ASSISTANT_RASA__URL``), ``.env``, ``.env.setup`` (written by ``scripts/setup.sh`` with the paths of
the environments and the base model), then the YAML file named by ``ASSISTANT_CONFIG`` (default
``assistant.yml`` in the working directory, optional).
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from assistant.contracts import AssistantError, Generation

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


# Rasa's channel sections (credentials.yml) that are our channels by the same name
RASA_CHANNELS = ("rest", "socketio", "slack", "telegram", "callback")


def _expand_env(value: Any) -> Any:
    """``${VAR}`` in credentials files is taken from the environment (as Rasa does); unset: empty."""
    if isinstance(value, str):
        return ENV_REFERENCE.sub(lambda m: os.environ.get(m.group(1), ""), value)
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    return value


REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_BOT_DIR = REPO_ROOT / "bots" / "demo"


class RasaSettings(BaseModel):
    """The Rasa server that classifies messages."""

    url: str = "http://127.0.0.1:5005"
    managed: bool = Field(True, description="`assistant up` starts it; false: it already runs at `url`")
    python_env: Path | None = Field(None, description="virtual environment holding Rasa 3.6.21")
    timeout_s: float = 5.0
    startup_timeout_s: float = 300.0
    token: str | None = Field(None, description="Rasa --auth-token, if the server uses one")


class VLLMSettings(BaseModel):
    """The vLLM OpenAI-compatible server that generates LLM replies."""

    url: str = "http://127.0.0.1:8000"
    managed: bool = True
    python_env: Path | None = None
    base_model: str | None = Field(None, description="any Hugging Face model directory")
    served_model_name: str = "base"
    max_model_len: int = 2048
    max_lora_rank: int = 16
    max_loras: int = 2
    kv_cache_gib: int = Field(1, description="VLLM_CPU_KVCACHE_SPACE on CPU hosts")
    gpu_memory_utilization: float = 0.3
    extra_args: list[str] = []
    startup_timeout_s: float = 600.0
    api_key: str = "EMPTY"


class LLMSettings(BaseModel):
    """How the LLM route talks to the model."""

    backend: str = Field("openai", description="LLM backend plugin (`assistant.llm`): how replies are asked for")
    server: str = Field(
        "vllm",
        description="model server plugin (`assistant.servers`): vllm (launched, serves LoRA adapters) or openai "
        "(any OpenAI-compatible server at vllm.url that serves one model, e.g. vLLM without --enable-lora)",
    )
    adapter: str | None = Field(None, description="active LoRA adapter; none means the base model")
    # Sampling, chosen with `assistant eval llm` on the small-talk tuning part (bench/llm_quality.py)
    max_tokens: int = 48
    temperature: float = 0.3
    top_p: float = 1.0
    repetition_penalty: float = Field(1.0, description="vLLM's penalty on tokens already in prompt or reply")
    frequency_penalty: float = 0.0
    stop: list[str] = Field(["\n"], description="generation ends at these strings")
    guards: bool = Field(True, description="the input and output guards of assistant/replies/guards.py")
    starter_adapter: bool = Field(
        True,
        description="`assistant up` trains a LoRA adapter on the bot's persona data when no LLM version is "
        "registered (once; cached), and serves it if it passes the gate",
    )
    starter_epochs: int = 3
    starter_data: list[Path] = Field(
        [], description="the starter adapter's data; empty: the bot's persona_examples.yml and evals/*-tune sets"
    )
    examples: int = Field(
        0,
        description="curated exchanges closest to a small-talk message shown to the LLM first (0: none; off until "
        "measured to help: docs/llm-replies.md)",
    )
    example_floor: float = Field(0.3, description="only exchanges at least this close (cosine) are shown")
    max_sentences: int = Field(1, description="output guard: the reply is cut after this many sentences")
    max_words: int = Field(60, description="behaviour check: the longest acceptable reply")
    guard_reply: str = Field(
        "I'm Penny, Northwind's virtual assistant. Ask me about an order, a delivery, a return or our opening hours.",
        description="sent instead of a reply that failed a safety check",
    )
    crisis_reply: str = Field(
        "I'm really sorry you're feeling this way. You don't have to go through it alone: please reach out to "
        "someone you trust or a crisis line now, or call your local emergency number if you are in danger.",
        description="the reply to a message that speaks of self-harm (no LLM)",
    )
    timeout_s: float = 60.0
    history_turns: int = Field(
        6, description="at most this many earlier user+bot turns in the prompt, fewer when they do not fit"
    )
    context_tokens: int | None = Field(
        None, description="the served model's context (None: vllm.max_model_len); history is trimmed to fit it"
    )
    speculative_start: bool = Field(
        False,
        description="start the LLM while the NLU parses (lower time to first token); the request is "
        "cancelled when the router picks an intent reply, so it costs LLM compute on intent turns",
    )
    fallback_reply: str = "Sorry, I can't answer that right now. Please try again in a moment."

    def generation(self) -> Generation:
        return Generation(
            max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p,
            repetition_penalty=self.repetition_penalty, frequency_penalty=self.frequency_penalty, stop=tuple(self.stop),
        )  # fmt: skip


class KBSettings(BaseModel):
    """The knowledge base: documents the LLM answers open questions from (`assistant kb ...`)."""

    enabled: bool = Field(True, description="open questions retrieve from the knowledge base when it has documents")
    paths: list[Path] = Field(
        [], description="documents `assistant up` indexes at start (unchanged files cost nothing); empty: the bot's kb/"
    )
    embedder: str = Field("minilm", description="embedder plugin (`assistant.embedders`)")
    encoder_dir: Path | None = Field(None, description="all-MiniLM-L6-v2 as ONNX (scripts/setup.sh makes it)")
    # Chunking and retrieval, chosen on the ClapNQ tuning part (bench/kb_clapnq.py)
    chunk_chars: int = Field(600, description="chunk size in characters (LangChain's recursive splitter)")
    chunk_overlap: int = 150
    top_k: int = Field(3, description="passages given to the LLM")
    candidates: int = Field(20, description="hits taken from each of the keyword and dense searches before fusion")
    fusion: Literal["rrf", "weighted", "keyword", "dense"] = Field(
        "weighted", description="reciprocal rank fusion or weighted scores (keyword / dense: one search alone)"
    )
    rrf_k: int = 60
    dense_weight: float = Field(0.7, description="weighted fusion: the dense score's weight (keyword: 1 - it)")
    # The answerability floor depends on the documents and on how people ask: calibrate it on the bot's own
    # questions (`assistant eval kb --calibrate`). These are the demo bot's (its bots/demo/evals/kb.yml); ClapNQ's
    # tuning part gives 0.5 and 0.58 (Wikipedia passages are closer to their questions than shop pages).
    sentence_weight: float = Field(
        0.7, description="answerability: the best sentence's cosine weight (the top passage's cosine: 1 - it)"
    )
    min_score: float = Field(0.4, description="floor on the answerability score; below it the answer abstains")
    context_turns: int = Field(1, description="earlier user messages added to the query (follow-ups)")
    smalltalk_intents: list[str] = Field(
        ["chitchat", "greet", "goodbye", "thank_you", "bot_challenge", "affirm", "deny", "help"],
        description="the bot's conversational intents: an LLM-routed message with one on top, or whose ranking "
        "gives them smalltalk_share, is small talk: the LLM answers what the documents do not (no abstain reply)",
    )
    # Chosen by scripts/tune_annotation_threshold.py on the tuning part (51 annotated questions, 39 paraphrases,
    # 20 requests to decline, 2026-12-03): 0.60 is the lowest with precision >= 0.95 (1.000; recall 0.36).
    annotation_threshold: float = Field(
        0.6, description="a message this close (cosine) to an annotated question gets its answer before the LLM"
    )
    smalltalk_share: float = Field(
        0.3,
        description="an unsure or out-of-scope message whose ranking gives the small-talk intents at least this "
        "share is small talk (the LLM answers), not an open question for the documents (tuned: docs/llm-replies.md)",
    )
    # Grounded answers
    answer: Literal["extract", "generate", "hybrid"] = Field(
        "extract",
        description="extract: the top passage's sentences closest to the question, quoted with the source; "
        "generate: the LLM answers from the passages, unsupported sentences dropped (too few left: abstain); "
        "hybrid: generate, and quote instead of abstaining when too few are supported",
    )
    max_tokens: int = 160
    max_sentences: int = Field(3, description="sentences a grounded answer keeps (quoted or generated)")
    min_support: float = Field(
        0.4, description="a sentence is kept when this share of its content words is in the passage it cites"
    )
    min_answer_words: int = Field(2, description="fewer supported words than this: the answer abstains")
    abstain_reply: str = Field(
        "I'm sorry, I don't know: I couldn't find that in Northwind's documents. I can help with orders, "
        "deliveries, returns, warranty, payment and our stores.",
        description="the reply when the documents do not answer an open question",
    )


def config_file() -> Path:
    """The YAML file settings are read from (``ASSISTANT_CONFIG``, default ``assistant.yml``)."""
    return Path(os.environ.get("ASSISTANT_CONFIG", "assistant.yml"))


class RouterSettings(BaseModel):
    """When a message goes to the LLM instead of an intent reply."""

    llm_intents: list[str] = ["chitchat", "out_of_scope"]
    curated: bool = Field(
        True,
        description="a confident selection of a retrieval intent the LLM handles (chitchat) gets its written "
        "reply; false: the LLM answers all of them",
    )
    confidence_threshold: float = 0.5
    ambiguity_margin: float = 0.1


class FeedbackSettings(BaseModel):
    """Ratings and corrections from channel users: a signal for reviewers, training data only once approved."""

    trusted_channels: list[str] = Field(
        [], description="channels whose users are staff: their feedback is training data without review"
    )
    max_per_sender: int = Field(20, description="feedback items one channel user may give per window")
    max_correction_chars: int = Field(1000, description="longest correction a channel user may suggest")
    max_chars_per_sender: int = Field(5000, description="correction characters one channel user may give per window")
    window_s: float = Field(86400.0, description="the window of the per-sender limits")


class LLMGateSettings(BaseModel):
    """How much worse than the served model an adapter may be on an evaluation set and still be promoted
    (behaviour sets allow nothing: every reply must pass every check)."""

    similarity: float = Field(0.02, description="mean semantic similarity to the references may drop this much")
    token_f1: float = 0.02
    looping: float = Field(0.02, description="share of looping replies may rise this much")
    checks: float = Field(0.02, description="pass rate of each behaviour check on reference sets")
    withheld: float = Field(0.05, description="share of replies the guards withheld for failing a safety check")
    abstention: float = Field(
        0.05, description="grounded sets: abstention recall may drop, and over-refusal rise, this much"
    )
    length_ratio: float = Field(
        1.25, description="median words at most this times the served model's (or 2x the references')"
    )


class TrainingSettings(BaseModel):
    """`assistant retrain`: what it learns from and when it promotes."""

    auto_label_confidence: float | None = Field(
        None, description="also train on intent turns the model was at least this sure of (None: human labels only)"
    )
    holdout_fraction: float = Field(0.2, description="share of human labels kept for evaluation")
    min_holdout_per_intent: int = Field(5, description="intents with fewer human labels keep them all for training")
    nlu_tolerance: float = Field(0.01, description="a candidate may be this much worse on a metric and still promote")
    nlu_finetune_epoch_fraction: float = 0.5
    nlu_epochs: int | None = Field(None, description="full trains: DIET epochs (None: the bot's config)")
    llm_epochs: int = 3
    llm_learning_rate: float = 2e-4
    llm_lora_rank: int = 8
    llm_lora_alpha: int = 16
    llm_batch_size: int = 4
    llm_max_length: int = 512
    llm_min_examples: int = 4
    llm_validation_fraction: float = 0.2
    llm_min_improvement: float = Field(0.0, description="candidate's held-out loss must beat the active's by this")
    llm_precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="auto: bf16 on a CUDA GPU that has it, float32 on CPU"
    )
    llm_gradient_checkpointing: bool | None = Field(None, description="None: on when training on a CUDA GPU")
    llm_packing: bool | None = Field(
        None, description="several short chats per training row, fewer padding tokens (None: on with CUDA)"
    )
    llm_quantization: Literal["none", "4bit"] = Field(
        "none", description="4bit: QLoRA, the frozen base model in bitsandbytes NF4 (CUDA only)"
    )
    llm_gate: LLMGateSettings = LLMGateSettings()
    llm_eval_sets: list[Path] = Field(
        [], description="the LLM's evaluation sets (files or folders); empty: the bot's evals/ folder"
    )
    llm_eval_limit: int | None = Field(None, description="at most this many cases per set (a stable sample)")
    llm_eval_concurrency: int = Field(4, description="evaluation requests in flight at once")
    llm_eval_timeout_s: float = Field(120.0, description="one evaluation request (live turns use llm.timeout_s)")
    scrubber: str = Field("default", description="entry point in `assistant.scrubbers` for personal data in SFT data")
    lock_stale_after_s: float = 120.0
    standin_host: str = Field(
        "127.0.0.1",
        description="address of the candidate's stand-in Rasa server, which app replicas on other hosts must reach "
        "while the main one loads the model (docker-compose: the trainer service's name)",
    )


class DeliverySettings(BaseModel):
    """The outbox: how replies of out-of-band channels (Slack, Telegram, REST callbacks) are delivered."""

    max_attempts: int = Field(12, description="then the delivery is marked failed")
    backoff_base_s: float = Field(2.0, description="wait after the first failure; doubles each time")
    backoff_max_s: float = 300.0
    poll_interval_s: float = Field(1.0, description="how often due retries (and other replicas' rows) are looked for")
    lease_s: float = Field(60.0, description="a claimed delivery not finished by then is tried again")
    timeout_s: float = Field(10.0, description="one delivery attempt")
    recover_after_s: float = Field(
        90.0, description="an accepted message still unanswered this long after arrival (the app died) is answered"
    )
    recover_within_s: float = Field(3600.0, description="older unanswered messages are left alone")


MIN_SECRET_CHARS = 16
PLACEHOLDERS = ("change-me", "changeme", "change_me", "replace-me", "placeholder", "your-", "<")


def _weak(secret: str) -> bool:
    lowered = secret.lower()
    return len(secret) < MIN_SECRET_CHARS or any(p in lowered for p in PLACEHOLDERS)


class LimitsSettings(BaseModel):
    """What one replica takes on at once, and from whom (issue 16: backpressure, not collapse)."""

    nlu_concurrency: int = Field(4, ge=1, description="parses in flight to the NLU server; more wait in line")
    llm_concurrency: int = Field(16, ge=1, description="generations in flight to the LLM server; more wait in line")
    max_waiting: int = Field(
        64, ge=0, description="turns waiting for one backend past which synchronous turns are refused (503)"
    )
    retry_after_s: int = Field(5, ge=1, description="the Retry-After of a refused turn")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="largest request body, every endpoint")
    max_metadata_bytes: int = Field(16384, ge=0, description="largest message metadata (as JSON)")
    max_metadata_depth: int = Field(8, ge=1, description="deepest nesting of message metadata")
    max_sender_chars: int = Field(255, ge=1, description="longest sender (conversation) id, every channel")
    per_sender: str = Field("30/minute", description="turns one sender may start (limits' notation; '' = none)")
    per_address: str = Field("120/minute", description="turns one client address may start ('' = none)")
    max_streams: int = Field(256, ge=1, description="Server-Sent Event streams open at once")
    max_background_turns: int = Field(
        512, ge=1, description="out-of-band turns answered at once; later ones wait, stored, for the recovery loop"
    )


class DatabaseSettings(BaseModel):
    """How the app connects to its database (see ``assistant.store.StoreOptions``)."""

    pool_size: int = Field(5, ge=1, description="PostgreSQL connections kept per replica")
    max_overflow: int = Field(5, ge=0, description="extra connections under load, per replica")
    statement_timeout_s: float | None = Field(30.0, description="PostgreSQL: a statement running longer is ended")
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL", description="FULL: a stored message survives a power loss too (slower commits)"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_",
        env_nested_delimiter="__",
        env_file=(REPO_ROOT / ".env.setup", ".env.setup", ".env"),
        extra="ignore",
    )

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = REPO_ROOT / "var"
    database_url: str | None = Field(None, description="default: SQLite file in data_dir")
    bot_dir: Path = Field(DEMO_BOT_DIR, description="Rasa project + domain.yml + persona.md")
    max_message_chars: int = 4096
    nlu_backend: str = "rasa"
    channels: list[str] = Field(["rest", "web"], description="enabled channel plugins (`assistant.channels`)")
    channel: dict[str, dict[str, Any]] = Field(
        {}, description="options per channel, e.g. ASSISTANT_CHANNEL__SLACK__BOT_TOKEN; win over credentials_file"
    )
    credentials_file: Path | None = Field(
        None,
        description="Rasa-style: a section per channel, ${VAR} read from the environment; default: the bot's "
        "credentials.yml, else ./credentials.yml",
    )
    cors_origins: list[str] = Field([], description="sites allowed to call the API from a browser (the web widget)")
    rasa: RasaSettings = RasaSettings()
    action_server: dict[str, Any] = Field(
        {}, description="the rasa-sdk action server's options (plugins/actions/rasa_sdk.py: ActionServerSettings)"
    )
    vllm: VLLMSettings = VLLMSettings()
    llm: LLMSettings = LLMSettings()
    router: RouterSettings = RouterSettings()
    training: TrainingSettings = TrainingSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    kb: KBSettings = KBSettings()
    delivery: DeliverySettings = DeliverySettings()
    limits: LimitsSettings = LimitsSettings()
    db: DatabaseSettings = DatabaseSettings()
    admin_token: SecretStr | None = Field(
        None, description="bearer token for /api (feedback, labels); unset: the admin API refuses everything"
    )
    retention_days: float | None = Field(
        None, description="turns older than this are deleted (and the files quoting them scrubbed); None: kept"
    )
    retention_check_s: float = Field(3600.0, description="how often retention runs")
    public_metrics: bool = Field(True, description="false: /metrics needs the admin token (or a scraper behind it)")
    public_docs: bool = Field(True, description="false: /docs, /redoc and /openapi.json need the admin token")
    dev_mode: bool = Field(
        False, description="allow placeholder and short secrets (never in production: the app refuses to start)"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = config_file()
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file),
        )

    @property
    def credentials_path(self) -> Path:
        """``credentials_file``, else the bot's credentials.yml (a Rasa project's), else ./credentials.yml."""
        if self.credentials_file is not None:
            return self.credentials_file
        bots = self.bot_dir / "credentials.yml"
        return bots if bots.is_file() else Path("credentials.yml")

    def _credentials(self) -> dict[str, Any]:
        path = self.credentials_path
        try:
            credentials = yaml.safe_load(path.read_text()) if path.is_file() else None
        except yaml.YAMLError as exc:
            raise SettingsUnreadable(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
        return credentials if isinstance(credentials, dict) else {}

    def channel_options(self, name: str) -> dict[str, Any]:
        """A channel's options: its section of the credentials file overlaid with ``channel[name]``."""
        options: dict[str, Any] = dict(_expand_env(self._credentials().get(name) or {}))
        options.update(self.channel.get(name, {}))
        return options

    @model_validator(mode="after")
    def _channels_from_credentials(self) -> Settings:
        """As in Rasa, a channel's section in the credentials file switches it on, unless ``channels`` is set."""
        if "channels" not in self.model_fields_set:
            sections = [name for name in RASA_CHANNELS if name in self._credentials()]
            self.channels = list(dict.fromkeys([*self.channels, *sections]))
        return self

    @model_validator(mode="after")
    def _generated_secrets(self) -> Settings:
        """The Rasa token and vLLM API key that `assistant up` generated for the servers it manages (files in
        ``data_dir/run``, readable by their owner only): every command on this data folder uses them."""
        for name, wanted in (("rasa-token", self.rasa.managed and not self.rasa.token),
                             ("vllm-api-key", self.vllm.managed and self.vllm.api_key == "EMPTY")):  # fmt: skip
            path = self.data_dir / "run" / name
            if wanted and path.is_file():
                value = path.read_text().strip()
                if name == "rasa-token":
                    self.rasa.token = value
                else:
                    self.vllm.api_key = value
        return self

    def generate_server_secrets(self) -> None:
        """For `assistant up`: a random Rasa token and vLLM API key for the servers it starts (unless set), kept
        in ``data_dir/run`` (mode 0600) and put in this process's environment for the app it starts."""
        folder = self.data_dir / "run"
        folder.mkdir(parents=True, exist_ok=True)
        for name, wanted, variable in (
            ("rasa-token", self.rasa.managed and not self.rasa.token, "ASSISTANT_RASA__TOKEN"),
            ("vllm-api-key", self.vllm.managed and self.vllm.api_key == "EMPTY", "ASSISTANT_VLLM__API_KEY"),
        ):
            if not wanted:
                continue
            path = folder / name
            if not path.is_file():
                path.touch(mode=0o600)
                path.write_text(secrets.token_urlsafe(32))
            value = path.read_text().strip()
            os.environ[variable] = value
            if name == "rasa-token":
                self.rasa.token = value
            else:
                self.vllm.api_key = value

    def weak_secrets(self) -> list[str]:
        """The secrets we choose (not tokens a platform issues) that are placeholders or shorter than
        ``MIN_SECRET_CHARS``: each by its setting's name."""
        chosen: dict[str, str | None] = {
            "admin_token": self.admin_token.get_secret_value() if self.admin_token else None,
            "rasa.token": self.rasa.token,
            "vllm.api_key": None if self.vllm.api_key == "EMPTY" else self.vllm.api_key,
        }
        for name in self.channels:
            for key, value in self.channel_options(name).items():
                if ("secret" in key or key in ("inbound_token", "jwt_key")) and value is not None:
                    chosen[f"channel.{name}.{key}"] = (
                        value.get_secret_value() if isinstance(value, SecretStr) else str(value)
                    )
        return [name for name, value in chosen.items() if value is not None and _weak(value)]

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'assistant.db'}"

    @property
    def db_location(self) -> str:
        """The database without its credentials, for logs and tables."""
        return self.db_url.split("@")[-1]

    @property
    def default_llm_model(self) -> str:
        """The LLM model name when the registry has no active adapter."""
        return self.llm.adapter or self.vllm.served_model_name

    @property
    def llm_eval_sets(self) -> list[Path]:
        return self.training.llm_eval_sets or [self.bot_dir / "evals"]

    @property
    def kb_paths(self) -> list[Path]:
        return self.kb.paths or [self.bot_dir / "kb"]

    @property
    def rasa_models_dir(self) -> Path:
        return self.data_dir / "rasa-models"

    @property
    def adapters_dir(self) -> Path:
        return self.data_dir / "adapters"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def public_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"


def endpoint_url(endpoints: Path, name: str) -> str | None:
    """An endpoint's ``url`` in a Rasa ``endpoints.yml`` (``${VAR}`` from the environment), None if absent."""
    data = _expand_env(yaml.safe_load(endpoints.read_text())) if endpoints.is_file() else None
    endpoint = data.get(name) if isinstance(data, dict) else None
    return str(endpoint["url"]) if isinstance(endpoint, dict) and endpoint.get("url") else None


def validation_problems(exc: ValidationError, whole: str) -> str:
    """A pydantic error as one line: ``where: what`` for each problem (``whole`` names the top level)."""
    return "; ".join(f"{'.'.join(str(p) for p in error['loc']) or whole}: {error['msg']}" for error in exc.errors())


class SettingsUnreadable(AssistantError):
    pass


def read_settings() -> Settings:
    """The settings, or a sentence saying what is wrong with them (a settings or credentials file that is not
    YAML, a value of the wrong kind) instead of a traceback."""
    try:
        return Settings()
    except yaml.YAMLError as exc:
        raise SettingsUnreadable(f"a settings file is not valid YAML: {' '.join(str(exc).split())}") from None
    except ValidationError as exc:
        raise SettingsUnreadable(
            f"the settings are wrong ({validation_problems(exc, 'settings')}); see {config_file()} and the "
            "ASSISTANT_* variables"
        ) from None
