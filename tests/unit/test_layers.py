"""The import contracts in pyproject.toml hold, and they do catch an import that points the wrong way."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("assistant", "plugins", "training", "inside_rasa")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_contracts_hold() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.split("Contracts:")[-1].replace("0 broken", "")


def copy_of_the_code(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "web_static"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


def test_a_wrong_way_import_fails(tmp_path: Path) -> None:
    root = copy_of_the_code(tmp_path)
    router = root / "assistant" / "router.py"
    router.write_text(router.read_text() + "\nfrom plugins.channels import rest  # the core reaching up\n")
    result = lint_imports(root)
    assert result.returncode == 1
    assert "assistant.router -> plugins.channels.rest" in result.stdout


def test_the_rasa_side_may_not_import_the_app(tmp_path: Path) -> None:
    root = copy_of_the_code(tmp_path)
    encoder = root / "inside_rasa" / "encoder.py"
    encoder.write_text(encoder.read_text() + "\nimport assistant.config\n")
    result = lint_imports(root)
    assert result.returncode == 1 and "inside_rasa.encoder -> assistant.config" in result.stdout
