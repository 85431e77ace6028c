"""Wall time and peak memory of each retrain stage (this process and every process it started)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import psutil

SAMPLE_S = 0.2


@dataclass
class StageTimes:
    stages: dict[str, dict[str, float]] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Measure the block: seconds, and the peak resident memory of our whole process tree (MiB)."""
        me = psutil.Process()
        peak = 0
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                total = 0
                for process in [me, *me.children(recursive=True)]:
                    with suppress(psutil.Error):
                        total += process.memory_info().rss
                peak = max(peak, total)
                stop.wait(SAMPLE_S)

        sampler = threading.Thread(target=sample, daemon=True)
        started = time.monotonic()
        sampler.start()
        try:
            yield
        finally:
            stop.set()
            sampler.join()
            self.stages[name] = {"seconds": round(time.monotonic() - started, 2), "peak_mib": round(peak / 2**20, 1)}
