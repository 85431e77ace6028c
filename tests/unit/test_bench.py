"""Every script in bench/ starts (its --help), and the code that turns measurements into figures is right on tiny
fakes worked out by hand: a benchmark that does not run, or miscounts, measures nothing."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from assistant.config import Settings

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.stem for p in (REPO / "bench").glob("*.py"))
IN_THE_VLLM_ENV = {"gpu_lora"}  # needs torch, transformers and peft


def bench(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_script_starts(name: str) -> None:
    python = Path(sys.executable)
    if name in IN_THE_VLLM_ENV:
        env = Settings().vllm.python_env
        assert env is not None, "scripts/setup.sh builds the vLLM environment"
        python = env / "bin" / "python"
    result = subprocess.run(
        [str(python), f"bench/{name}.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout and "--" in result.stdout


def test_turn_latency_sends_from_many_senders_and_addresses_within_their_shares() -> None:
    turn_latency = bench("turn_latency")
    clients = turn_latency.Clients("run", per_client=2)
    pairs = [clients.next() for _ in range(5)]
    assert [sender for sender, _ in pairs] == [
        "bench-run-0",
        "bench-run-0",
        "bench-run-1",
        "bench-run-1",
        "bench-run-2",
    ]
    addresses = [headers["X-Forwarded-For"] for _, headers in pairs]
    assert addresses == ["10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.2", "10.0.0.3"]
    limits = Settings().limits
    per_minute = {limit: int(limit.split("/")[0]) for limit in (limits.per_sender, limits.per_address)}
    assert all(n > turn_latency.TURNS_PER_CLIENT for n in per_minute.values()), per_minute
    many = turn_latency.Clients("x")
    seen = {many.next()[1]["X-Forwarded-For"] for _ in range(turn_latency.TURNS_PER_CLIENT * 300)}
    assert len(seen) == 300  # 300 clients, no address used twice


def test_turn_latency_figures() -> None:
    turn_latency = bench("turn_latency")
    Load, Stream = turn_latency.Load, turn_latency.Stream
    assert turn_latency.percentile([4.0, 1.0, 3.0, 2.0, 5.0], 0.5) == 3.0
    assert turn_latency.percentile([4.0, 1.0, 3.0, 2.0, 5.0], 0.95) == 5.0
    loads = [
        Load("rasa /model/parse", 1, 10, 10.0, 20.0, 100.0),
        Load("assistant webhook", 1, 10, 12.0, 30.0, 80.0),
        Load("rasa /model/parse", 32, 10, 40.0, 80.0, 200.0),
        Load("assistant webhook", 32, 10, 50.0, 80.0, 150.0),
        Load("assistant webhook", 32, 10, 30.0, 120.0, 250.0),  # a second round: medians and the mean rate
    ]
    ratios = turn_latency.summarise_loads(loads)
    assert ratios["p50_ratio_c1"] == pytest.approx(1.2) and ratios["p95_ratio_c1"] == pytest.approx(1.5)
    assert ratios["throughput_ratio_c1"] == pytest.approx(0.8)
    assert ratios["p50_ratio_c32"] == pytest.approx(1.0) and ratios["p95_ratio_c32"] == pytest.approx(1.25)
    assert ratios["throughput_ratio_c32"] == pytest.approx(1.0)
    streams = [Stream("vLLM direct", 100.0, 20.0, 30), Stream("assistant SSE", 150.0, 22.0, 30)]
    figures = turn_latency.summarise_streams(streams, nlu_p50_ms=40.0)
    assert figures["ttft_overhead_pct"] == pytest.approx(50.0)
    assert figures["ttft_overhead_excluding_nlu_parse_pct"] == pytest.approx(10.0)
    assert figures["tokens_per_s_ratio"] == pytest.approx(1.1)


def test_load_figures() -> None:
    load = bench("load")
    Sent = load.Sent
    sent = [
        Sent("rest", "a", "hi", 200, 1.0),
        Sent("rest-sse", "b", "tell me a joke", 200, 4.0, route="llm"),
        Sent("widget", "c", "hi", 503, 0.1, retry_after="5"),
        Sent("rest", "d", "hi", 429, 0.1),  # refused without Retry-After
        Sent("rest", "e", "hi", 500, 0.2),
        Sent("rest", "f", "hi", 0, 9.0),  # no answer at all
    ]
    stored = [
        {"sender_id": "a", "text": "hi", "route": "intent", "reason": "confident", "replies": 1},
        {"sender_id": "b", "text": "tell me a joke", "route": "llm", "reason": "nlu_unavailable", "replies": 0},
    ]
    alone = {"hi": "intent", "tell me a joke": "llm"}
    figures, per_route = load.figures_of(sent, stored, alone, {"intent": [0.5], "llm": [2.0, 2.0]})
    assert figures["requests"] == 6 and figures["status counts"] == {0: 1, 200: 2, 429: 1, 500: 1, 503: 1}
    assert figures["accepted (200)"] == 2 and figures["stored with their reply"] == 1
    assert figures["lost (accepted, not stored with a reply)"] == 1 and figures["stored though refused"] == 0
    assert figures["server errors (5xx other than 503, or no answer)"] == 2
    assert figures["misrouted by load"] == 0 and figures["misrouted reasons"] == {}
    assert figures["refused (429/503)"] == 2 and figures["refused without Retry-After"] == 1
    assert per_route["intent"] == {"turns": 1, "p50_s": 1.0, "p95_s": 1.0, "alone_p50_s": 0.5, "ratio": 2.0}
    assert per_route["llm"]["ratio"] == 2.0
    assert load.percentiles([]) == (0.0, 0.0) and load.percentiles([3.0]) == (3.0, 3.0)
    load.show(figures, per_route, "tiny")  # the tables print


def test_channel_figures(tmp_path: Path) -> None:
    channels = bench("channels")
    results = {"rest": {"ack": [1.0], "reply": [10.0, 20.0, 30.0]}, "slack": {"ack": [2.0, 4.0], "reply": [30.0]}}
    channels.report(results, tmp_path / "channels.json")
    summary = json.loads((tmp_path / "channels.json").read_text())
    assert summary["rest"]["reply_vs_rest"] == 1.0 and summary["slack"]["reply_vs_rest"] == 1.5
    assert summary["slack"]["ack_p50_ms"] == 2.0 and summary["slack"]["ack_p95_ms"] == 4.0  # round(0.5) is 0
