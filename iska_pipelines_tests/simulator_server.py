"""The real gateway simulator on 127.0.0.1 for tests: uvicorn in a thread, on a free port.

Knobs are changed per test through the simulator's own `/admin/config`, and `/stats` is what
tests read to prove exactly-once behaviour. Readiness is polled on `/health`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import requests

from iska_pipelines.simulator.app import create_app
from iska_pipelines.simulator.knobs import Knobs
from iska_pipelines_tests.loopback import serve_on_loopback

SIMULATOR_TOKEN = "test-token"


@dataclass
class RunningSimulator:
    base_url: str

    @property
    def billing_url(self) -> str:
        return f"{self.base_url}/billing"

    @property
    def momo_url(self) -> str:
        """MTN MoMo Collections' requesttopay (BILLING_PROTOCOL=momo)."""
        return f"{self.base_url}/collection/v1_0/requesttopay"

    def momo_requests(self) -> dict[str, dict]:
        """Every requesttopay the simulator holds, by reference."""
        return self.stats()["billing"]["momo"]

    def send_held_callbacks(self, *fates: str) -> list[dict]:
        """Send the callbacks held back (`momo_hold_callbacks`); `fates` per callback, in order."""
        response = requests.post(
            f"{self.base_url}/simulator/momo/callbacks", json={"fates": list(fates)}, timeout=30
        )
        response.raise_for_status()
        return response.json()["callbacks"]

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

    def arrivals(self) -> dict[str, list[float]]:
        """Each request's arrival time per gateway ("billing", "sms/<name>")."""
        response = requests.get(f"{self.base_url}/arrivals", timeout=5)
        response.raise_for_status()
        return response.json()

    def charges(self) -> dict[str, int]:
        return self.stats()["billing"]["charges"]

    def billing_counts(self) -> dict[str, int]:
        return self.stats()["billing"]["counts"]


@contextmanager
def simulator_on_loopback(knobs: Knobs | None = None) -> Iterator[RunningSimulator]:
    knobs = knobs or Knobs(tokens=[SIMULATOR_TOKEN])
    with serve_on_loopback(lambda _url: create_app(knobs), "simulator") as base_url:
        yield RunningSimulator(base_url)


@pytest.fixture
def simulator() -> Iterator[RunningSimulator]:
    """A fresh simulator per test: no latency, no faults, accepts SIMULATOR_TOKEN."""
    with simulator_on_loopback() as running:
        yield running
