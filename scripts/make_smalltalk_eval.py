"""Build the demo bot's small-talk evaluation sets from Personality Chat (Microsoft, MIT licence): the
Friendly persona's question -> reply pairs, split by scenario (every question of one scenario lands in the
same part, so no part sees paraphrases of another's) into a tuning part and an evaluation part.

    python scripts/make_smalltalk_eval.py ../shared/data/personality_chat bots/demo/evals
"""

from __future__ import annotations

import csv
import hashlib
import sys
from pathlib import Path

import yaml

HEADER = """\
# Small talk in the bot's persona, with reference replies ({part} part). Built by
# scripts/make_smalltalk_eval.py from Personality Chat (Friendly), (c) Microsoft Corporation, MIT licence.
# Owned by reviewers: edit it by hand, never from incoming feedback.
"""


def part_of(scenario: str) -> str:
    return "tune" if int(hashlib.sha256(scenario.encode()).hexdigest()[:8], 16) % 2 else "eval"


def main(source: Path, out: Path) -> None:
    with (source / "Queries_Responses_Friendly_QnAMaker.tsv").open() as tsv:
        rows = list(csv.reader(tsv, delimiter="\t"))[1:]
    parts: dict[str, list[dict[str, str]]] = {"tune": [], "eval": []}
    seen: set[str] = set()
    for question, answer, meta in rows:
        question, answer = question.strip(), answer.strip()
        scenario = meta.removeprefix("Scenario:").strip()
        if not question or not answer or question.lower() in seen:
            continue
        seen.add(question.lower())
        cases = parts[part_of(scenario)]
        cases.append(
            {
                "id": f"{scenario}-{sum(c['id'].startswith(scenario + '-') for c in cases) + 1}",
                "message": question,
                "reference": answer,
            }
        )
    for part, cases in parts.items():
        name = "smalltalk" if part == "eval" else "smalltalk-tune"
        document = {"name": name, "kind": "reference", "part": part, "cases": cases}
        text = HEADER.format(part=part) + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=200)
        (out / f"{name}.yml").write_text(text)
        print(f"{name}: {len(cases)} cases")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
