"""The NLU export is data Rasa itself reads: the demo bot's export, loaded by Rasa 3.6's own loader in the Rasa
environment (the unit tier checks what the export holds; this checks that Rasa takes it)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import yaml

from assistant.config import Settings
from assistant.store import Store
from assistant.store.migrations.migrate import upgrade
from training.export import NLUExport, export_nlu


async def export(settings: Settings, out: Path) -> NLUExport:
    store = Store(settings.db_url)
    try:
        return await export_nlu(settings, store, out)
    finally:
        await store.aclose()


def test_rasa_reads_the_nlu_export(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'export.db'}")
    upgrade(settings.db_url)
    exported = asyncio.run(export(settings, tmp_path / "nlu"))
    responses = yaml.safe_load(exported.train.read_text())["responses"]
    rasa_env = settings.rasa.python_env
    assert rasa_env is not None and (rasa_env / "bin" / "python").exists(), "scripts/setup.sh builds the Rasa env"
    check = subprocess.run(
        [
            str(rasa_env / "bin" / "python"), "-c",
            "import sys; from rasa.shared.nlu.training_data.loading import load_data; "
            "d = load_data(sys.argv[1]); print(len(d.intent_examples), len(d.entity_examples), len(d.responses))",
            str(exported.train),
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr[-2000:]
    counted = check.stdout.split()
    assert int(counted[0]) == exported.counts["train_examples"] and int(counted[2]) == len(responses) >= 3
