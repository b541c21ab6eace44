"""The real ISKA API on 127.0.0.1 for tests: uvicorn in a thread, on a free port, one per test.

The app is built from explicit settings (the test's database, a known callback secret), so
tests never depend on the environment. Readiness is polled on `/health`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import requests

from iska_pipelines.api.app import create_app
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.sms.signing import CALLBACK_PATH, sign
from iska_pipelines_tests.loopback import serve_on_loopback

CALLBACK_SECRET = "test-callback-secret"


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
        return requests.post(
            f"{self.base_url}{CALLBACK_PATH}",
            params={"sig": sig},
            json={"msgid": msgid, "status": status},
            timeout=10,
        )


@contextmanager
def api_on_loopback(settings: Settings) -> Iterator[RunningApi]:
    served: list[Settings] = []

    def make_app(base_url: str):
        served.append(settings.model_copy(update={"public_url": base_url}))
        return create_app(served[0])

    with serve_on_loopback(make_app, "API") as base_url:
        yield RunningApi(base_url, served[0])


@pytest.fixture
def api(database_url, data_dir) -> Iterator[RunningApi]:
    """The ISKA API over the test's database, with CALLBACK_SECRET."""
    settings = Settings.from_env(
        {
            "ISKA_DATABASE_URL": database_url,
            "ISKA_DATA_DIR": str(data_dir),
            "ISKA_CALLBACK_SECRET": CALLBACK_SECRET,
        }
    )
    with api_on_loopback(settings) as running:
        yield running


def api_settings(database_url: str, data_dir, **env: str) -> Settings:
    """Settings for a test API over the test's database and data folder, plus `env`."""
    return Settings.from_env(
        {
            "ISKA_DATABASE_URL": database_url,
            "ISKA_DATA_DIR": str(data_dir),
            "ISKA_CALLBACK_SECRET": CALLBACK_SECRET,
            **env,
        }
    )


@pytest.fixture
def start_api() -> Iterator:
    """Start more APIs within a test, each with its own settings (token, limits, Dagster URL);
    all are stopped when the test ends."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield lambda settings: stack.enter_context(api_on_loopback(settings))
