"""Choose ``kb.annotation_threshold`` on the tuning part: how close (cosine, the knowledge base's encoder) a message
must be to an annotated question to get its answer.

The tuning part's small talk is grouped by scenario: the first question of each scenario is annotated, its other
questions are paraphrases that should get that answer; the requests to decline should get none. A wrong
annotation answers a question nobody asked, an unmatched paraphrase only goes to the LLM: the threshold is the
lowest whose precision is at least --precision.

    .venv/bin/python scripts/tune_annotation_threshold.py [--precision 0.95]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from assistant.config import Settings
from evaluation.sets import load_sets
from plugins.embedders.minilm import MiniLMEmbedder


def main(precision_floor: float) -> None:
    settings = Settings()
    sets = load_sets(settings.llm_eval_sets, "tune")
    scenarios: dict[str, list[str]] = defaultdict(list)
    others: list[str] = []
    for eval_set in sets:
        for case in eval_set.cases:
            if eval_set.kind == "reference":
                scenarios[case.id.rsplit("-", 1)[0]].append(case.message)
            elif eval_set.kind == "declined":
                others.append(case.message)
    annotated = {name: questions[0] for name, questions in scenarios.items()}
    probes = [(q, name) for name, questions in scenarios.items() for q in questions[1:]]
    probes += [(q, None) for q in others]
    encoder = MiniLMEmbedder(settings)
    names = list(annotated)
    keys = encoder.embed([annotated[n] for n in names])
    queries = encoder.embed([q for q, _ in probes])
    scores = queries @ keys.T
    best = scores.argmax(axis=1)
    top = scores.max(axis=1)
    positives = sum(want is not None for _, want in probes)
    print(f"{len(names)} annotated questions; {positives} paraphrases, {len(probes) - positives} other messages")
    print("threshold  answered  right  precision  recall")
    chosen = None
    for threshold in np.arange(0.5, 0.96, 0.05):
        answered = [(i, names[best[i]]) for i in range(len(probes)) if top[i] >= threshold]
        right = sum(probes[i][1] == name for i, name in answered)
        precision = right / len(answered) if answered else 1.0
        recall = right / positives if positives else 0.0
        print(f"{threshold:9.2f}  {len(answered):8d}  {right:5d}  {precision:9.3f}  {recall:6.3f}")
        if chosen is None and precision >= precision_floor:
            chosen = round(float(threshold), 2)
    print(f"kb.annotation_threshold: {chosen} (the lowest with precision >= {precision_floor})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precision", type=float, default=0.95)
    main(parser.parse_args().precision)
