"""Repetitions, medians and spreads, and peak memory of a child process."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Sample:
    """Repeated observations of one quantity (seconds, MB, requests/s, ...)."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(float(value))

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def low(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def high(self) -> float:
        return max(self.values) if self.values else float("nan")

    def scaled(self, factor: float) -> Sample:
        return Sample([v * factor for v in self.values])


def repeat(times: int, once: Callable[[int], float], before: Callable[[int], None] | None = None) -> Sample:
    """Run `once(i)` `times` times (after `before(i)`, which is not timed); collect what it returns."""
    sample = Sample()
    for i in range(times):
        if before is not None:
            before(i)
        sample.add(once(i))
    return sample


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def run_child(task: str, args: dict, timeout: float = 900) -> dict:
    """Run `python -m bench.child <task>` with JSON args; its last stdout line is JSON.

    With BENCH_INLINE=1 (the harness's own test) the task runs in this process instead: faster
    to start, but the peak memory is then this process's.
    """
    if os.environ.get("BENCH_INLINE") == "1":
        from bench.child import TASKS

        return TASKS[task](args)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.child", task, json.dumps(args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.child {task} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
