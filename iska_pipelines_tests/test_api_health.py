"""`/health` and start-up of `iska api` (SPEC §8, §10): a database out of reach is a 503 that
says so, and a malformed ISKA_DATABASE_URL stops `iska api` before it serves anything.

These run `iska api` as the operator does, in a subprocess on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ISKA = str(Path(sys.executable).parent / "iska")
STARTUP_SECONDS = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def iska_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISKA_")}
    return {**env, "ISKA_DATA_DIR": str(tmp_path / "data"), "ISKA_DATABASE_URL": database_url}


@pytest.fixture
def api_without_its_database(tmp_path) -> Iterator[str]:
    """`iska api` whose PostgreSQL is down (nothing listens on its port); yields the base URL
    once the server answers at all."""
    dead_port = free_port()
    port = free_port()
    server = subprocess.Popen(
        [ISKA, "api", "--port", str(port)],
        cwd=tmp_path,
        env=iska_env(tmp_path, f"postgresql://postgres@127.0.0.1:{dead_port}/iska"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if server.poll() is not None:
                pytest.fail(f"iska api stopped while starting: {server.stderr.read()}")
            try:
                requests.get(f"{base_url}/health", timeout=10)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail(f"iska api did not listen on {port} within {STARTUP_SECONDS} s")
                time.sleep(0.05)  # polling interval, not a synchronisation delay
        yield base_url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_health_is_503_naming_the_database_when_it_is_unreachable(api_without_its_database):
    answer = requests.get(f"{api_without_its_database}/health", timeout=30)
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "error" and "database" in body["detail"]


def test_records_answer_503_not_500_while_the_database_is_unreachable(api_without_its_database):
    for path in ("/subscriptions/api/v1/subscriptions/", "/forecasts/api/v1/forecasts/1/"):
        answer = requests.get(api_without_its_database + path, timeout=30)
        assert answer.status_code == 503, path
        assert "database" in answer.json()["detail"] and "Traceback" not in answer.text


@pytest.mark.parametrize(
    "database_url",
    [
        "not a url",
        "postgresql://postgres@127.0.0.1:port/iska",
        "postgresql+nodriver://127.0.0.1/iska",
        "nosuchdb://127.0.0.1/iska",
        "mysql://root@127.0.0.1/iska",
    ],
)
def test_iska_api_with_a_malformed_database_url_stops_naming_iska_database_url(tmp_path, database_url):
    server = subprocess.Popen(
        [ISKA, "api", "--port", str(free_port())],
        cwd=tmp_path,
        env=iska_env(tmp_path, database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _out, err = server.communicate(timeout=STARTUP_SECONDS)
    except subprocess.TimeoutExpired:
        server.kill()
        server.communicate()
        pytest.fail(f"iska api kept serving with ISKA_DATABASE_URL={database_url!r}")
    assert server.returncode != 0
    assert "ISKA_DATABASE_URL" in err and "Traceback" not in err
