"""The gateway simulator as its own process (`iska simulator`), so it does not share our GIL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil
import requests

TOKEN = "bench-token"


@dataclass
class Simulator:
    base_url: str
    process: psutil.Process

    def arrivals(self, since: float) -> dict[str, list[float]]:
        """Every request's arrival time per gateway (from the simulator's own log)."""
        response = requests.get(f"{self.base_url}/arrivals", params={"since": since}, timeout=60)
        response.raise_for_status()
        return response.json()

    def cpu_seconds(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def simulator(latency_ms: float) -> Iterator[Simulator]:
    port = free_port()
    env = {
        **os.environ,
        "BILLING_TOKEN": TOKEN,
        "SMS_TOKEN": TOKEN,
        "ISKA_SIM_LATENCY_MS": str(latency_ms),
        # delivery reports would go to a callback nobody serves; keep them out of the measurement
        "ISKA_SIM_REPORT_DELAY_SECONDS": "86400",
    }
    iska = [sys.executable, "-c", "import sys; from iska_pipelines.cli import main; sys.exit(main())"]
    process = subprocess.Popen(
        [*iska, "simulator", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"iska simulator exited: {process.stderr.read().decode()[-2000:]}")
            try:
                if requests.get(f"{base}/health", timeout=0.5).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("iska simulator did not answer /health within 30 s")
            time.sleep(0.1)
        yield Simulator(base, psutil.Process(process.pid))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
