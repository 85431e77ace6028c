"""Rasa projects for the tests: Rasa's moodbot as `rasa init` makes it, with what a Rasa user adds to it
(tests/fixtures/moodbot_additions: a retrieval intent, a rule answered by a custom action, the action, buttons
and a slot-conditioned response)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from assistant.domain import merge_domain

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MOODBOT = FIXTURES / "rasa_moodbot"
ADDITIONS = FIXTURES / "moodbot_additions"


def moodbot_plus(where: Path) -> Path:
    """A copy of the moodbot at ``where`` with the additions laid over it (its domain merged as Rasa merges a
    split domain); returns the project folder."""
    shutil.copytree(MOODBOT, where)
    shutil.copytree(ADDITIONS / "data", where / "data", dirs_exist_ok=True)
    shutil.copytree(ADDITIONS / "actions", where / "actions", dirs_exist_ok=True)
    domain = yaml.safe_load((where / "domain.yml").read_text())
    merge_domain(domain, yaml.safe_load((ADDITIONS / "domain.yml").read_text()))
    (where / "domain.yml").write_text(yaml.safe_dump(domain, sort_keys=False))
    return where
