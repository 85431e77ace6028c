"""Prometheus metrics, served on /metrics."""

from prometheus_client import Counter, Gauge, Histogram

TURNS = Counter("assistant_turns_total", "Turns answered", ["route", "reason"])
TURN_SECONDS = Histogram(
    "assistant_turn_seconds",
    "Time from receiving a message to its stored reply",
    ["route"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
)


def observe_turn(route: str, reason: str, seconds: float) -> None:
    TURNS.labels(route, reason).inc()
    TURN_SECONDS.labels(route).observe(seconds)


RETRIEVALS = Counter("assistant_kb_retrievals_total", "Knowledge-base retrievals", ["evidence"])
RETRIEVAL_SECONDS = Histogram(
    "assistant_kb_retrieval_seconds", "Knowledge-base retrieval time (embedding + searches + fusion)",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1),
)  # fmt: skip


def observe_retrieval(seconds: float, evidence: bool) -> None:
    RETRIEVALS.labels("yes" if evidence else "no").inc()
    RETRIEVAL_SECONDS.observe(seconds)


DELIVERIES = Counter(
    "assistant_deliveries_total", "Out-of-band reply delivery attempts", ["channel", "outcome"]
)  # outcome: delivered | retry | failed

WAITING = Gauge("assistant_backend_waiting", "Turns waiting in line for a backend", ["backend"])
IN_FLIGHT = Gauge("assistant_backend_in_flight", "Calls in flight to a backend", ["backend"])
WAIT_SECONDS = Histogram(
    "assistant_backend_wait_seconds", "Time a turn waited in line before its call to a backend started", ["backend"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120),
)  # fmt: skip
REFUSED = Counter(
    "assistant_refused_total", "Requests refused at the edge, or turns deferred to recovery", ["why"]
)  # overloaded | rate_limited | deferred (an out-of-band turn past limits.max_background_turns)
