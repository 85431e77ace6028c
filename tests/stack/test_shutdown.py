"""`assistant up` stops every child (Rasa, vLLM with its engine processes, the app) on SIGTERM."""

from __future__ import annotations

import signal

import psutil
import pytest

from tests.conftest import Stack

pytestmark = pytest.mark.shutdown


def test_sigterm_stops_all_children_without_orphans(stack: Stack) -> None:
    up = psutil.Process(stack.process.pid)

    def is_running(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:  # killed and reaped, and `up` has not written its successor's pid yet
            return False

    def all_running() -> bool:  # earlier fault tests killed some; `up` restarts them within a second or two
        services = stack.services()
        return {"rasa", "vllm", "assistant"} <= services.keys() and all(is_running(s["pid"]) for s in services.values())

    stack.wait_until(all_running, 60, "every service to be running")
    family = up.children(recursive=True)
    names = " ".join(" ".join(p.cmdline()) for p in family if p.status() != psutil.STATUS_ZOMBIE)
    assert "rasa" in names and "vllm.entrypoints.openai.api_server" in names and "assistant serve" in names
    stack.process.send_signal(signal.SIGTERM)
    assert stack.process.wait(90) == 0
    _gone, alive = psutil.wait_procs(family, timeout=30)
    assert alive == [], [p.cmdline() for p in alive]
    assert "stopped" in stack.log_path.read_text()
    assert not (stack.data_dir / "run" / "services.json").exists()
