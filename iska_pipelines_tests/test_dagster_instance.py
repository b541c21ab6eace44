"""Dagster's instance storage has one creator (SPEC §11): `iska init-instance`, run before the
processes that share it, never the API.

Two processes creating a fresh DAGSTER_HOME's SQLite storage at the same moment can fail on
Alembic's "more than one head present"; the API and the daemon started together on a fresh home
did. The procedure of `make run` and the compose file (create the instance, then start
everything at once) is run here with real processes, ten times.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import dagster as dg
import requests

from iska_pipelines.dagster_instance import DEFAULT_STORAGE_FILES, create_instance
from iska_pipelines_tests.api_server import api_on_loopback, api_settings
from iska_pipelines_tests.stack import BIN, ROOT, Stack, free_port

TASK_STATUS = "/forecasts/api/v1/forecasts/task_status/"
STARTS = 10
START_SECONDS = 120.0  # each start's deadline, generous for a busy machine


def fresh_home(folder: Path) -> Path:
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def test_the_api_on_a_home_without_an_instance_creates_none_and_says_how_to_create_one(
    database_url, data_dir, tmp_path
):
    home = fresh_home(tmp_path)
    settings = api_settings(database_url, data_dir, DAGSTER_HOME=str(home))
    with api_on_loopback(settings) as api:
        before = requests.get(api.base_url + TASK_STATUS, params={"task_id": "forecasts-x"}, timeout=30)
        assert before.status_code == 503 and "iska init-instance" in before.json()["detail"]
        assert sorted(p.name for p in home.iterdir()) == ["dagster.yaml"]

        create_instance(home)
        after = requests.get(api.base_url + TASK_STATUS, params={"task_id": "forecasts-x"}, timeout=30)
        assert (after.status_code, after.json()["task_status"]) == (200, "EXPIRED")


def test_init_instance_creates_the_storage_and_finds_it_ready_the_second_time(tmp_path):
    home = fresh_home(tmp_path)
    for _ in range(2):
        done = subprocess.run(
            [str(BIN / "iska"), "init-instance"],
            env={"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0 and "ready" in done.stdout, done.stderr
    assert all((home / name).is_file() for name in DEFAULT_STORAGE_FILES)


def start_api_and_daemon_at_once(folder: Path) -> Stack:
    """`make run`'s order on a fresh home: the instance first, then its processes together."""
    home = fresh_home(folder)
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "DAGSTER_HOME": str(home),
        "ISKA_DATA_DIR": str(folder / "data"),
        "ISKA_DATABASE_URL": f"sqlite:///{folder / 'iska.sqlite3'}",
    }
    stack = Stack(folder, env, {"api": port})
    subprocess.run(
        [str(BIN / "iska"), "init-instance"], env=env, check=True, capture_output=True, timeout=120
    )
    stack.start("api", [str(BIN / "iska"), "api", "--port", str(port)])
    stack.start("daemon", [str(BIN / "dagster-daemon"), "run", "--empty-workspace"])
    return stack


def both_serve(stack: Stack, deadline: float) -> None:
    """The API answers a task status from the instance; the daemon has written a heartbeat."""
    stack.wait_for("api", stack.url("api") + "/health", deadline)
    answer = requests.get(stack.url("api") + TASK_STATUS, params={"task_id": "forecasts-x"}, timeout=30)
    assert answer.status_code == 200, answer.text
    with dg.DagsterInstance.from_config(stack.env["DAGSTER_HOME"]) as instance:
        while not instance.get_daemon_heartbeats():
            for name, process in stack.processes.items():
                assert process.poll() is None, f"{name} exited with {process.returncode}:\n{stack.log(name)}"
            assert time.monotonic() < deadline, f"no daemon heartbeat:\n{stack.log('daemon')}"
            time.sleep(0.25)  # polling interval, not a synchronisation delay


def test_the_api_and_the_daemon_started_at_once_on_a_fresh_home_both_come_up_every_time(tmp_path):
    for start in range(STARTS):
        stack = start_api_and_daemon_at_once(tmp_path / f"start-{start}")
        try:
            both_serve(stack, time.monotonic() + START_SECONDS)
            for name, process in stack.processes.items():
                assert process.poll() is None, f"start {start}: {name} exited:\n{stack.log(name)}"
                assert "more than one head" not in stack.log(name)
        finally:
            stack.stop()
