"""`make run` as a service manager or a script uses it: started, then stopped by a signal sent
to make's own pid (not to its process group, as a terminal's Ctrl-C would)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from iska_pipelines_tests.dagster_stack import free_port

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 120.0
STOP_SECONDS = 60.0


def _make_run_in(folder: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    """`make run` from a copy of the repository's top-level files, on free ports, with the
    repository's own virtual environment (already installed by `make test`)."""
    for name in ("Makefile", "pyproject.toml", ".env-example", "dagster.yaml", "workspace.yaml"):
        shutil.copy(ROOT / name, folder / name)
    ports = {name: str(free_port()) for name in ("dagster", "api", "simulator")}
    env = dict(
        os.environ,
        ISKA_DAGSTER_PORT=ports["dagster"],
        ISKA_API_PORT=ports["api"],
        ISKA_SIMULATOR_PORT=ports["simulator"],
        ISKA_DAGSTER_URL=f"http://127.0.0.1:{ports['dagster']}",
        BILLING_URL=f"http://127.0.0.1:{ports['simulator']}/billing",
        SMS_URLS=f"http://127.0.0.1:{ports['simulator']}/sms/a",
    )
    env.pop("DAGSTER_HOME", None)
    venv = Path(sys.executable).parent.parent
    process = subprocess.Popen(
        ["make", "-o", "install", "run", f"VENV={venv}"],
        cwd=folder,
        env=env,
        start_new_session=True,
        stdout=(folder / "make-run.log").open("w"),
        stderr=subprocess.STDOUT,
        # a service manager starts make with default signal handling
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    return process, ports


def _wait_until_serving(process: subprocess.Popen, ports: dict[str, str], log: Path) -> None:
    urls = [
        f"http://127.0.0.1:{ports['api']}/health",
        f"http://127.0.0.1:{ports['simulator']}/health",
        f"http://127.0.0.1:{ports['dagster']}/server_info",
    ]
    deadline = time.monotonic() + STARTUP_SECONDS
    while urls and time.monotonic() < deadline:
        assert process.poll() is None, f"make run exited early:\n{log.read_text()[-3000:]}"
        try:
            if requests.get(urls[0], timeout=2).ok:
                urls.pop(0)
                continue
        except requests.ConnectionError:
            pass
        time.sleep(0.2)  # polling interval, not a synchronisation delay
    assert not urls, f"not serving within {STARTUP_SECONDS} s: {urls}\n{log.read_text()[-3000:]}"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_make_runs_own_pid_stops_dagster_the_api_and_the_simulator(tmp_path, sig):
    process, ports = _make_run_in(tmp_path)
    log = tmp_path / "make-run.log"
    servers: list[psutil.Process] = []
    try:
        _wait_until_serving(process, ports, log)
        servers = psutil.Process(process.pid).children(recursive=True)
        assert len(servers) >= 4  # devserver, dagster dev (+ webserver, daemon), api, simulator
        os.kill(process.pid, sig)
        _, alive = psutil.wait_procs(servers, timeout=STOP_SECONDS)
        assert not alive, f"still running after {sig.name}: {[p.cmdline()[:3] for p in alive]}"
        process.wait(timeout=STOP_SECONDS)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        for server in servers:
            if server.is_running():
                server.kill()
    output = log.read_text()
    assert "stopped" in output
    # a quiet start: the clone's folder name is not the code location's name, and the
    # dagster.yaml that is used is not called unused
    assert "does not match the name" not in output
    assert "will not be used to configure Dagster" not in output
    assert "is superseded" not in output
    # no Python warning (BetaWarning, DeprecationWarning, ...) that a user cannot act on
    assert "Warning: " not in output, [line for line in output.splitlines() if "Warning: " in line][:3]


def test_under_make_run_the_simulator_plays_a_subscriber_texting_the_api(tmp_path):
    """`make run` needs no setup for the consent demo: the API gets a development inbound token
    and the simulator posts `POST /simulator/inbound` to it (README)."""
    process, ports = _make_run_in(tmp_path)
    log = tmp_path / "make-run.log"
    try:
        _wait_until_serving(process, ports, log)
        answer = requests.post(
            f"http://127.0.0.1:{ports['simulator']}/simulator/inbound",
            data='{"msisdn": "233209999999", "text": "HELP"}',
            timeout=30,
        ).json()
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    assert answer["iska_status"] == 200, answer
    assert (answer["iska_answer"]["keyword"], answer["iska_answer"]["outcome"]) == ("help", "helped")
