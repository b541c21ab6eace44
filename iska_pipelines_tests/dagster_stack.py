"""A real Dagster deployment for API tests: `dagster dev` (webserver + daemon + code location)
on a free loopback port, a temporary DAGSTER_HOME, ISKA data folder and database, and the
gateway simulator for billing and SMS. One per test module (it takes a while to start).

Readiness is polled (the webserver answers GraphQL and serves the code location) under a
deadline; stopping ends the process group this fixture started, and nothing else.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.tasks.graphql import DagsterGraphQL, DagsterUnavailable
from iska_pipelines_tests.simulator_server import SIMULATOR_TOKEN, simulator_on_loopback

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 300.0  # a deadline, generous for a busy machine
FAST_QUEUE = """
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""


@dataclass
class DagsterStack:
    url: str
    home: Path
    data_dir: Path
    database_url: str
    env: dict[str, str]
    log: Path

    def settings(self, **overrides: str) -> Settings:
        """Settings of an API that shares this deployment's data folder, database and Dagster."""
        return Settings.from_env({**self.env, **overrides})

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stack_env(home: Path, data_dir: Path, database_url: str, simulator_url: str, dagster_url: str) -> dict:
    return {
        "DAGSTER_HOME": str(home),
        "ISKA_DATA_DIR": str(data_dir),
        "ISKA_DATABASE_URL": database_url,
        "ISKA_FILE_SETTLE_SECONDS": "0",
        "ISKA_SENSOR_INTERVAL_SECONDS": "1",
        "ISKA_DAGSTER_URL": dagster_url,
        "BILLING_URL": f"{simulator_url}/billing",
        "BILLING_TOKEN": SIMULATOR_TOKEN,
        "SMS_URLS": f"{simulator_url}/sms/a",
        "ISKA_HTTP_TRIES": "1",
        "MAX_TASK_RETRY": "0",
    }


@pytest.fixture(scope="module")
def dagster_stack(tmp_path_factory) -> Iterator[DagsterStack]:
    root = tmp_path_factory.mktemp("stack")
    home, data_dir = root / "dagster_home", root / "data"
    home.mkdir()
    data_dir.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    with (home / "dagster.yaml").open("a") as config:  # the queue looks every second, not every 5
        config.write(FAST_QUEUE)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "dagster.log"
    with simulator_on_loopback() as simulator:
        env = stack_env(home, data_dir, f"sqlite:///{data_dir / 'iska.sqlite3'}", simulator.base_url, url)
        command = [
            str(Path(sys.executable).parent / "dagster"),
            "dev",
            "-w",
            str(ROOT / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                cwd=root,
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        stack = DagsterStack(url, home, data_dir, env["ISKA_DATABASE_URL"], env, log)
        try:
            _wait_until_serving(stack, process)
            yield stack
        finally:
            _stop(process)


@contextmanager
def webserver_alone(root: Path, env: dict[str, str]) -> Iterator[DagsterStack]:
    """`dagster-webserver` alone over a fresh DAGSTER_HOME under `root`, with ISKA's `env`
    (ISKA_DAGSTER_URL is set here): launches are queued and stay queued, since no daemon runs.
    Lighter than `dagster_stack` for tests of what the API asks the webserver."""
    home, data_dir = root / "dagster_home", root / "data"
    home.mkdir()
    data_dir.mkdir(exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**env, "DAGSTER_HOME": str(home), "ISKA_DAGSTER_URL": url}
    env.setdefault("ISKA_DATA_DIR", str(data_dir))
    env.setdefault("ISKA_DATABASE_URL", f"sqlite:///{data_dir / 'iska.sqlite3'}")
    log = root / "webserver.log"
    command = [
        str(Path(sys.executable).parent / "dagster-webserver"),
        *("-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=root,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = DagsterStack(url, home, Path(env["ISKA_DATA_DIR"]), env["ISKA_DATABASE_URL"], env, log)
    try:
        _wait_until_serving(stack, process)
        yield stack
    finally:
        _stop(process)


def _wait_until_serving(stack: DagsterStack, process: subprocess.Popen) -> None:
    client = DagsterGraphQL(stack.url, timeout_seconds=5)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster exited with {process.returncode}:\n{stack.log_tail()}")
        try:
            client.job_location("sms_job")
            return
        except DagsterUnavailable:
            time.sleep(0.25)  # polling interval, not a synchronisation delay
    raise RuntimeError(f"dagster did not serve the code within {STARTUP_SECONDS} s:\n{stack.log_tail()}")


def _stop(process: subprocess.Popen) -> None:
    """dagster dev (or the webserver) stops its children on SIGTERM to its group."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
