"""Fine-tune the sentence encoder on a bot's intents, in TensorFlow (the Rasa environment has no PyTorch).

A frozen encoder with DIET on top stops near 95.5 % in-scope accuracy on CLINC150 val: the pretrained
embedding was made for sentence similarity in general, not for telling 150 intents apart. Training the
encoder itself for a few epochs pulls every intent's messages together and pushes the intents apart,
which is what DIET, and the router's confidence threshold, then work from.

The objective is a cosine classifier with an additive margin (CosFace): the mean-pooled, unit-length
sentence embedding against one unit-length prototype per intent, scaled by ``scale``. Each prototype
starts at its intent's mean embedding, so training starts from a sensible classifier. Word embeddings
stay frozen (half the weights; the layers above adapt around them), which also keeps what a trained
model stores small: only ``trained_names`` are saved.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from nlu.encoder import BertEncoder

FROZEN = ("embeddings.word_embeddings.weight",)


@dataclass(frozen=True)
class FineTuneConfig:
    epochs: float = 3.0
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup: float = 0.1  # fraction of the steps
    dropout: float = 0.1
    scale: float = 20.0
    margin: float = 0.1
    seed: int = 42


def trained_names(encoder: BertEncoder) -> list[str]:
    return sorted(name for name in encoder.model.vars if name not in FROZEN)


def fine_tune(
    encoder: BertEncoder,
    pieces: Sequence[Sequence[int]],
    labels: Sequence[str],
    config: FineTuneConfig,
    on_step: Callable[[int, int, float], None] | None = None,
) -> None:
    """Train ``encoder`` in place to tell ``labels`` apart from the WordPiece ids ``pieces``."""
    tf.random.set_seed(config.seed)
    rng = random.Random(config.seed)
    model = encoder.model
    names = sorted(set(labels))
    targets = np.array([names.index(label) for label in labels], np.int32)
    batches = encoder.batches(pieces, config.batch_size, rng.random)

    start = np.zeros((len(names), encoder.hidden), np.float32)
    for ids, mask, index in batches:
        np.add.at(start, targets[index], model.pooled(ids, mask).numpy())
    prototypes = tf.Variable(start / np.maximum(np.linalg.norm(start, axis=1, keepdims=True), 1e-12), name="prototypes")

    total = max(1, round(len(batches) * config.epochs))
    schedule = _WarmupLinear(config.learning_rate, max(1, int(total * config.warmup)), total)
    optimizer = tf.keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)
    optimizer.exclude_from_weight_decay(var_names=["LayerNorm", "bias", "prototypes"])
    variables = [*(model.vars[name] for name in trained_names(encoder)), prototypes]
    signature = [tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None]), tf.TensorSpec([None], tf.int32)]

    @tf.function(input_signature=signature)
    def step(ids: tf.Tensor, mask: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            embedded = model.pooled(ids, mask, config.dropout)
            cosine = tf.matmul(embedded, tf.math.l2_normalize(prototypes, axis=-1), transpose_b=True)
            logits = config.scale * (cosine - config.margin * tf.one_hot(y, len(names)))
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        optimizer.apply_gradients(list(zip(tape.gradient(loss, variables), variables)))  # noqa: B905 (autograph)
        return loss

    done = 0
    while done < total:
        rng.shuffle(batches)
        for ids, mask, index in batches[: total - done]:
            loss = float(step(ids, mask, targets[index]))
            done += 1
            if on_step:
                on_step(done, total, loss)


class _WarmupLinear(tf.keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak``, then linear decay to 0 at ``total`` steps."""

    def __init__(self, peak: float, warmup: int, total: int) -> None:
        self.peak, self.warmup, self.total = peak, warmup, total

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        rising = step / self.warmup
        falling = tf.maximum(0.0, (self.total - step) / max(1, self.total - self.warmup))
        return self.peak * tf.minimum(rising, falling)

    def get_config(self) -> dict[str, float]:
        return {"peak": self.peak, "warmup": self.warmup, "total": self.total}
