"""Tests mirror the code: a module with logic has a test module of its name (``test_pipeline.py`` for
``assistant/turn/pipeline.py``; ``test_<package>_<module>.py`` where two modules share a name), in the unit tier or,
where it needs the real servers, on the stack. The modules without one are listed here, each with the reason."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CODE = ("assistant", "compat", "evaluation", "nlu", "plugins", "training", "wiring")

WITHOUT_A_TEST_MODULE = {
    "assistant/contracts.py": "protocols and value types; every plugin is checked against its protocol "
    "(test_entry_points.py) and the values where they are used",
    "assistant/infra/services.py": "starts, watches and stops real processes: tests/stack/test_cli.py, test_faults.py, "
    "test_shutdown.py",
    "assistant/store/migrations/env.py": "Alembic's environment script, run by every migration (test_migrate.py)",
    "assistant/store/tables.py": "table declarations; the migrations build them (test_migrate.py)",
    "compat/rasa_path/inside_rasa/featurizer.py": "a re-export of nlu.featurizer under its old path",
    "nlu/embed.py": "runs in the Rasa environment: tests/stack/test_encoder.py",
    "nlu/featurizer.py": "runs inside Rasa: tests/stack/test_finetune.py trains and serves a bot with it",
    "plugins/embedders/minilm.py": "needs the exported ONNX encoder: tests/stack/test_knowledge.py",
    "plugins/llm/openai_chat.py": "talks to a real OpenAI-compatible server: tests/stack/test_turns.py, "
    "test_plain_openai_server.py",
    "plugins/llm/openai_server.py": "a real OpenAI-compatible server: tests/stack/test_plain_openai_server.py",
    "plugins/llm/vllm.py": "launches and swaps adapters on real vLLM: tests/stack/test_retrain.py, test_starter.py",
    "plugins/nlu/rasa/backend.py": "parses on real Rasa: tests/stack/test_turns.py, test_faults.py",
    "plugins/nlu/rasa/runner.py": "trains and runs real Rasa: tests/stack/test_eval_fixture.py, test_finetune.py",
    "plugins/nlu/rasa/server.py": "swaps models on real Rasa: tests/stack/test_retrain.py",
    "training/lora.py": "runs the LoRA trainer in the vLLM environment: tests/stack/test_retrain.py, test_starter.py",
    "training/lora_sft.py": "the trainer itself, in the vLLM environment: tests/stack/test_retrain.py",
    "training/publish.py": "promotes and hot-swaps on the real servers: tests/stack/test_retrain.py",
    "wiring/__main__.py": "one line: `python -m wiring` runs the CLI (every stack test starts it so)",
    "wiring/cli/db.py": "`assistant db upgrade`, run by scripts/setup.sh and tests/stack/test_cli.py",
    "wiring/cli/evaluate.py": "`assistant eval` against real servers: tests/stack/test_eval.py, test_eval_fixture.py, "
    "test_knowledge.py",
    "wiring/cli/init.py": "`assistant init --from-rasa`: tests/unit/test_rasa_project.py drives it",
    "wiring/cli/terminal.py": "the console and the one error-exit helper, no logic of its own",
    "wiring/cli/train.py": "`assistant train` with real Rasa and vLLM: tests/stack/test_starter.py, test_cli.py",
}


def modules(root: Path) -> list[str]:
    found = [p.relative_to(root).as_posix() for package in CODE for p in (root / package).rglob("*.py")]
    return sorted(path for path in found if not path.endswith("__init__.py") and "/migrations/versions/" not in path)


def test_modules(path: str, root: Path = REPO) -> list[Path]:
    """Where the tests of the module at ``path`` live, by name."""
    module = Path(path)
    names = [f"test_{module.stem}.py", f"test_{module.parent.name}_{module.stem}.py"]
    return [root / "tests" / tier / name for tier in ("unit", "stack") for name in names]


def untested(root: Path = REPO) -> list[str]:
    return [
        path for path in modules(root)
        if path not in WITHOUT_A_TEST_MODULE and not any(p.is_file() for p in test_modules(path, root))
    ]  # fmt: skip


test_modules.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def test_every_module_has_its_test_module_or_a_reason() -> None:
    assert untested() == []


def test_the_reasons_name_modules_that_exist_and_have_no_test_module() -> None:
    code = set(modules(REPO))
    assert set(WITHOUT_A_TEST_MODULE) <= code
    assert [path for path in WITHOUT_A_TEST_MODULE if any(p.is_file() for p in test_modules(path))] == []


def test_a_new_module_without_tests_is_found(tmp_path: Path) -> None:
    for path in ("assistant/turn/pipeline.py", "assistant/turn/new_step.py", "tests/unit/test_pipeline.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    assert untested(tmp_path) == ["assistant/turn/new_step.py"]
