"""Classifying an evaluation set with any NLU backend (the served model, a candidate on its stand-in)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from assistant.contracts import Example, NLUBackend
from evaluation.nlu_data import plain_text, read_rasa_nlu
from evaluation.nlu_metrics import Prediction


def test_examples(path: Path) -> list[Example]:
    """An evaluation set in the bot's training-data format (Rasa YAML), entity markup removed."""
    examples, _ = read_rasa_nlu([path])
    return [Example(plain_text(e.text), e.intent) for e in examples]


async def predict(backend: NLUBackend, examples: list[Example]) -> list[Prediction]:
    """Classify every example (the backend limits how many at a time)."""

    async def one(example: Example) -> Prediction:
        parse = await backend.parse(example.text)
        top = parse.intent
        return Prediction(
            example.text,
            example.intent,
            top.name if top else None,
            top.confidence if top else 0.0,
            [(s.name, s.confidence) for s in parse.ranking],
            (parse.retrieval.name, parse.retrieval.confidence) if parse.retrieval else None,
        )

    return list(await asyncio.gather(*(one(example) for example in examples)))
