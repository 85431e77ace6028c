"""The LLM contract with a second backend: any OpenAI-compatible server that cannot load adapters (here vLLM
started without --enable-lora, as an external server). Chat works through it; `assistant retrain` says in one
sentence that it cannot serve adapters and changes nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.config import Settings
from assistant.infra.services import free_port
from tests.conftest import ADMIN_TOKEN, LLM_TALK, Stack
from tests.stack.test_cli import assistant

SERVED_NAME = "plain-model"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"{url} did not come up:\n{log.read_text()[-3000:]}")


@pytest.fixture
def plain_llm(tmp_path: Path) -> Iterator[str]:
    """vLLM without LoRA support: a server that serves one fixed model."""
    vllm = Settings().vllm
    assert vllm.python_env and vllm.base_model, "run scripts/setup.sh first"
    port = free_port()
    command = [
        str(vllm.python_env / "bin" / "python"), "-m", "vllm.entrypoints.openai.api_server",
        "--model", vllm.base_model, "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port),
        "--max-model-len", "1024", "--gpu-memory-utilization", "0.3",
    ]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    log = tmp_path / "plain-vllm.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{url}/health", process, log, 600)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def test_chat_works_and_retrain_refuses_with_a_sentence(stack: Stack, plain_llm: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **stack.env,
        "ASSISTANT_DATA_DIR": str(tmp_path),
        "ASSISTANT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}",
        "ASSISTANT_PORT": str(port),
        "ASSISTANT_CHANNELS": '["rest"]',
        "ASSISTANT_LLM__SERVER": "openai",
        "ASSISTANT_VLLM__URL": plain_llm,
        "ASSISTANT_VLLM__MANAGED": "false",
        "ASSISTANT_VLLM__SERVED_MODEL_NAME": SERVED_NAME,
    }
    assert assistant("db", "upgrade", env=env).returncode == 0
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        app = subprocess.Popen([sys.executable, "-m", "wiring", "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(f"http://127.0.0.1:{port}/health", app, log, 60)
        response = httpx.post(
            f"http://127.0.0.1:{port}/webhooks/rest/webhook",
            json={"sender": "plain", "message": LLM_TALK[0]},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        (reply,) = response.json()
        assert reply["text"].strip() and reply["text"] != Settings().llm.fallback_reply
        status = httpx.get(f"http://127.0.0.1:{port}/status", headers=ADMIN_HEADERS, timeout=30).json()
        assert status["llm"]["ok"] and status["llm"]["active_model"] == SERVED_NAME

        result = assistant("retrain", "--llm-only", env=env)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "cannot serve LoRA adapters" in result.stderr and "unchanged" in result.stderr
        assert "Traceback" not in result.stderr
        listed = assistant("models", "list", env=env)
        assert listed.returncode == 0 and "llm-0001" not in listed.stdout  # nothing was registered
        after = httpx.get(f"http://127.0.0.1:{port}/status", headers=ADMIN_HEADERS, timeout=30).json()
        assert after["llm"]["active_model"] == SERVED_NAME
    finally:
        app.terminate()
        app.wait(30)
