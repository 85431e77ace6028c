"""The starter adapter on the real stack: LoRA-trained with peft in the vLLM environment on the bot's persona
examples, cached, checked by the gate through the real vLLM, and registered as the first LLM version; a fresh
database takes it from the cache instead of training again. (The stack itself runs with the starter off.)"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import DEMO, VLLM_AUTH, Stack
from tests.database import TestDatabase

EXAMPLES = DEMO / "persona_examples.yml"
EVALS = DEMO / "evals"


def train_starter(env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "wiring", "train", "starter"], env=env, capture_output=True, text=True, timeout=900
    )
    return result, time.monotonic() - started


def fresh(stack: Stack, tmp_path: Path, name: str) -> tuple[dict[str, str], TestDatabase]:
    db = TestDatabase.for_tests(f"assistant_{name}", tmp_path / f"{name}.db")
    env = {
        **stack.env,
        "ASSISTANT_DATABASE_URL": db.url,
        "ASSISTANT_DATA_DIR": str(tmp_path / name),
        "ASSISTANT_PORT": "9",  # no app follows this registry: nothing to wait for
        "ASSISTANT_CACHE": str(tmp_path / "cache"),
        "ASSISTANT_LLM__STARTER_DATA": json.dumps([str(EXAMPLES)]),
        "ASSISTANT_LLM__STARTER_EPOCHS": "1",
        "ASSISTANT_TRAINING__LLM_EVAL_LIMIT": "6",  # the gate on a stable sample of 6 cases a set (CI time)
        # and on the persona's sets: the documents' set (the longest replies) is judged in test_retrain's gate
        "ASSISTANT_TRAINING__LLM_EVAL_SETS": json.dumps([str(EVALS / "smalltalk.yml"), str(EVALS / "behaviour.yml")]),
    }
    return env, db


def test_the_starter_adapter_is_trained_once_gated_and_registered(stack: Stack, tmp_path: Path) -> None:
    env, db = fresh(stack, tmp_path, "starter_one")
    first, first_s = train_starter(env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    said = " ".join(first.stdout.split())
    assert "LoRA on" in said  # trained (the progress bar), not taken from the cache
    (row,) = db.rows("SELECT version, status, path, metrics, error FROM model_versions")
    metrics: dict[str, Any] = json.loads(row["metrics"]) if isinstance(row["metrics"], str) else row["metrics"]
    assert row["version"] == "llm-0001" and metrics["starter"]["examples"] == 24
    assert metrics["candidate_loss"] < metrics["base_loss"]
    gate = metrics["gate"]
    assert {"smalltalk", "behaviour"} <= set(metrics["eval"]["candidate"])
    if gate["passed"]:  # served: the registry says so, and vLLM has it loaded from the registered files
        assert row["status"] == "active" and "is active" in said
        served = {
            m["id"]: m.get("root")
            for m in stack.http.get(f"{stack.vllm_url}/v1/models", headers=VLLM_AUTH).json()["data"]
        }
        assert served.get("llm-0001") == str(Path(row["path"]).resolve())
    else:  # refused, with the checks that decided
        assert row["status"] == "rejected" and "failed the gate" in row["error"] and "the base model stays" in said
    assert (Path(row["path"]) / "adapter_config.json").is_file()
    assert (tmp_path / "starter_one" / "reports" / "starter-llm-0001" / "report.md").is_file()
    (cached,) = (tmp_path / "cache" / "adapters").glob("starter-*")

    again, _ = train_starter(env)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert len(db.rows("SELECT version FROM model_versions")) == 1

    env_two, db_two = fresh(stack, tmp_path, "starter_two")
    second, second_s = train_starter(env_two)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "LoRA on" not in " ".join(second.stdout.split())  # from the cache
    (row_two,) = db_two.rows("SELECT status, metrics FROM model_versions")
    # gated again there (vLLM on CPU is not bit-for-bit repeatable, so the verdict is its own): as it says
    metrics_two = json.loads(row_two["metrics"]) if isinstance(row_two["metrics"], str) else row_two["metrics"]
    assert row_two["status"] == ("active" if metrics_two["gate"]["passed"] else "rejected")
    assert [p.name for p in (tmp_path / "cache" / "adapters").glob("starter-*")] == [cached.name]
    assert second_s < first_s
