"""Retrain stages (training/stages.py): wall time, and the peak memory of this process and what it starts."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from training.stages import StageTimes

CHILD_MIB = 120


def test_a_stage_counts_its_time_and_the_memory_of_the_processes_it_started() -> None:
    before = psutil.Process().memory_info().rss / 2**20
    times = StageTimes()
    with times.stage("child"):
        code = f"x = bytearray({CHILD_MIB} * 2**20); import time; time.sleep(1.0)"
        subprocess.run([sys.executable, "-c", code], check=True)
    with times.stage("quick"):
        time.sleep(0.05)
    child, quick = times.stages["child"], times.stages["quick"]
    assert child["seconds"] >= 1.0 and 0.05 <= quick["seconds"] < child["seconds"]
    assert child["peak_mib"] >= before + CHILD_MIB * 0.9, (before, child)  # the child's memory is counted
    assert quick["peak_mib"] < before + CHILD_MIB * 0.5, (before, quick)  # and gone with it
