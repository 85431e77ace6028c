"""Sentence embeddings with the all-MiniLM-L6-v2 encoder, as a tool run in the Rasa environment (where the
encoder and its weights live): JSON list of texts on stdin, JSON list of unit-length vectors on stdout.

    <rasa env>/bin/python -m nlu.embed < texts.json > vectors.json

`assistant eval llm` uses it for the semantic similarity of replies to reference replies.
"""

from __future__ import annotations

import json
import sys

from nlu.encoder import BertEncoder


def main() -> None:
    texts = json.load(sys.stdin)
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        sys.exit("expected a JSON list of strings on stdin")
    vectors = BertEncoder().embed(texts) if texts else []
    json.dump([[round(float(x), 6) for x in row] for row in vectors], sys.stdout)


if __name__ == "__main__":
    main()
