"""The real gateway simulator on 127.0.0.1 for tests: uvicorn in a thread, on a free port.

Knobs are changed per test through the simulator's own `/admin/config`, and `/stats` is what
tests read to prove exactly-once behaviour. Readiness is polled on `/health`.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import requests
import uvicorn

from iska_pipelines.simulator.app import create_app
from iska_pipelines.simulator.knobs import Knobs

SIMULATOR_TOKEN = "test-token"
STARTUP_SECONDS = 15.0


@dataclass
class RunningSimulator:
    base_url: str

    @property
    def billing_url(self) -> str:
        return f"{self.base_url}/billing"

    def sms_url(self, name: str = "primary") -> str:
        return f"{self.base_url}/sms/{name}"

    def configure(self, **knobs) -> dict:
        response = requests.post(f"{self.base_url}/admin/config", json=knobs, timeout=5)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict:
        response = requests.get(f"{self.base_url}/stats", timeout=5)
        response.raise_for_status()
        return response.json()

    def charges(self) -> dict[str, int]:
        return self.stats()["billing"]["charges"]

    def billing_counts(self) -> dict[str, int]:
        return self.stats()["billing"]["counts"]


@contextmanager
def simulator_on_loopback(knobs: Knobs | None = None) -> Iterator[RunningSimulator]:
    knobs = knobs or Knobs(tokens=[SIMULATOR_TOKEN])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(
        create_app(knobs), log_level="warning", timeout_graceful_shutdown=1, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    running = RunningSimulator(f"http://127.0.0.1:{port}")
    try:
        _wait_until_healthy(running, thread)
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def _wait_until_healthy(running: RunningSimulator, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("the simulator stopped while starting")
        try:
            if requests.get(f"{running.base_url}/health", timeout=0.5).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.02)  # polling interval, not a synchronisation delay
    raise RuntimeError(f"the simulator did not answer /health within {STARTUP_SECONDS} s")


@pytest.fixture
def simulator() -> Iterator[RunningSimulator]:
    """A fresh simulator per test: no latency, no faults, accepts SIMULATOR_TOKEN."""
    with simulator_on_loopback() as running:
        yield running
