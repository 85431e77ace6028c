"""The import contracts in pyproject.toml hold, they catch an import that points the wrong way, and every module
has a place in them: a new package at the top, or a new module in the core, that no layer names fails here."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def config(root: Path) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text())["tool"]["importlinter"]


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def unplaced(root: Path) -> list[str]:
    """Packages and modules no contract places: a package at the top of the repository that is not a root
    package, a root package no contract names, a module directly inside a layered container that is none of
    its layers."""
    cfg = config(root)
    named: set[str] = set()
    containers: set[str] = set()
    for contract in cfg["contracts"]:
        inside = contract.get("containers", [""])
        containers.update(c for c in inside if c)
        for layer in contract.get("layers", []):
            for name in (part.strip() for part in re.split(r"[|:]", layer)):
                named.update(f"{c}.{name}" if c else name for c in inside)
        for key in ("source_modules", "forbidden_modules", "modules"):
            named.update(contract.get(key, []))
    problems = [d.name for d in sorted(root.iterdir()) if (d / "__init__.py").exists() and d.name != "tests"]
    problems = [name for name in problems if name not in cfg["root_packages"]]
    problems += [name for name in cfg["root_packages"] if name not in named]
    for container in sorted(containers):
        for child in sorted((root / container.replace(".", "/")).iterdir()):
            module = child.stem if child.suffix == ".py" else child.name
            is_module = (child.suffix == ".py" and child.name != "__init__.py") or (child / "__init__.py").exists()
            if is_module and f"{container}.{module}" not in named:
                problems.append(f"{container}.{module}")
    return problems


def copy_of_the_code(tmp_path: Path) -> Path:
    for package in config(REPO)["root_packages"]:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "web_static"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_contracts_hold() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.split("Contracts:")[-1].replace("0 broken", "")


def test_every_module_has_a_place() -> None:
    assert unplaced(REPO) == []


def test_a_module_no_layer_places_fails(tmp_path: Path) -> None:
    root = copy_of_the_code(tmp_path)
    (root / "assistant" / "helpers.py").write_text('"""A new module at the top of the core."""\n')
    (root / "extras").mkdir()
    (root / "extras" / "__init__.py").write_text("")
    assert unplaced(root) == ["extras", "assistant.helpers"]


def test_a_wrong_way_import_fails(tmp_path: Path) -> None:
    root = copy_of_the_code(tmp_path)
    router = root / "assistant" / "turn" / "router.py"
    router.write_text(router.read_text() + "\nfrom plugins.channels import rest  # the core reaching up\n")
    store = root / "assistant" / "store" / "outbox.py"
    store.write_text(store.read_text() + "\nfrom assistant.turn import pipeline  # the store reaching up\n")
    result = lint_imports(root)
    assert result.returncode == 1
    assert "assistant.turn.router -> plugins.channels.rest" in result.stdout
    assert "assistant.store.outbox -> assistant.turn.pipeline" in result.stdout


def test_the_rasa_side_may_not_import_the_app(tmp_path: Path) -> None:
    root = copy_of_the_code(tmp_path)
    encoder = root / "nlu" / "encoder.py"
    encoder.write_text(encoder.read_text() + "\nimport assistant.config\n")
    result = lint_imports(root)
    assert result.returncode == 1 and "nlu.encoder -> assistant.config" in result.stdout
