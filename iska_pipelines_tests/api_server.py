"""The real ISKA API on 127.0.0.1 for tests: uvicorn in a thread, on a free port, one per test.

The app is built from explicit settings (the test's database, a known callback secret), so
tests never depend on the environment. Readiness is polled on `/health`.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import requests
import uvicorn

from iska_pipelines.api.app import create_app
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.sms.signing import CALLBACK_PATH, sign

CALLBACK_SECRET = "test-callback-secret"
STARTUP_SECONDS = 15.0


@dataclass
class RunningApi:
    base_url: str
    settings: Settings

    @property
    def callback_secret(self) -> str:
        return self.settings.callback_secret

    def report(self, msgid: str, status: str, sig: str | None = None) -> requests.Response:
        """Post a delivery report the way a gateway does (signed unless told otherwise)."""
        sig = sign(msgid, self.callback_secret) if sig is None else sig
        return requests.post(f"{self.base_url}{CALLBACK_PATH}", params={"sig": sig},
                             json={"msgid": msgid, "status": status}, timeout=10)


@contextmanager
def api_on_loopback(settings: Settings) -> Iterator[RunningApi]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    settings = dataclasses.replace(settings, public_url=base_url)
    server = uvicorn.Server(uvicorn.Config(
        create_app(settings), log_level="warning", timeout_graceful_shutdown=1, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    running = RunningApi(base_url, settings)
    try:
        _wait_until_healthy(running, thread)
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def _wait_until_healthy(running: RunningApi, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("the API stopped while starting")
        try:
            if requests.get(f"{running.base_url}/health", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.02)  # polling interval, not a synchronisation delay
    raise RuntimeError(f"the API did not answer /health within {STARTUP_SECONDS} s")


@pytest.fixture
def api(database_url, data_dir) -> Iterator[RunningApi]:
    """The ISKA API over the test's database, with CALLBACK_SECRET."""
    settings = Settings.from_env({"ISKA_DATABASE_URL": database_url, "ISKA_DATA_DIR": str(data_dir),
                                  "ISKA_CALLBACK_SECRET": CALLBACK_SECRET})
    with api_on_loopback(settings) as running:
        yield running


def api_settings(database_url: str, data_dir, **env: str) -> Settings:
    """Settings for a test API over the test's database and data folder, plus `env`."""
    return Settings.from_env({"ISKA_DATABASE_URL": database_url, "ISKA_DATA_DIR": str(data_dir),
                              "ISKA_CALLBACK_SECRET": CALLBACK_SECRET, **env})


@pytest.fixture
def start_api() -> Iterator:
    """Start more APIs within a test, each with its own settings (token, limits, Dagster URL);
    all are stopped when the test ends."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield lambda settings: stack.enter_context(api_on_loopback(settings))
