"""`assistant serve` and `up` (wiring/cli/serve.py): placeholder and short secrets refused outside dev mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from assistant.config import Settings
from wiring.cli import app as real_app


def test_serve_refuses_placeholder_and_short_secrets_outside_dev_mode(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASSISTANT_ADMIN_TOKEN", "change-me-three")
    monkeypatch.setenv("ASSISTANT_RASA__TOKEN", "short")
    monkeypatch.setenv("ASSISTANT_CHANNELS", '["rest", "callback"]')
    monkeypatch.setenv("ASSISTANT_CHANNEL__CALLBACK__URL", "http://127.0.0.1:9/replies")
    monkeypatch.setenv("ASSISTANT_CHANNEL__CALLBACK__SECRET", "a-long-and-random-callback-secret")
    for name in ("serve", "up"):
        result = CliRunner().invoke(real_app, [name])
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        said = " ".join(result.output.split())
        assert "refusing to start: admin_token, rasa.token are placeholders or shorter than 16" in said, said
        assert "callback" not in said
    monkeypatch.setenv("ASSISTANT_DEV_MODE", "true")
    assert Settings().weak_secrets() == ["admin_token", "rasa.token"]  # dev mode: allowed, still known
    from wiring.app import create_app

    create_app(Settings())  # builds
