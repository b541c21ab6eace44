"""The production processes, run natively on 127.0.0.1: what docker-compose.yml runs.

`iska init-instance` first (the compose file's dagster-init), then code server, webserver
(gRPC workspace), daemon, API and simulator, each a real subprocess
with the image's instance files (deploy/), PostgreSQL storage for Dagster and for ISKA.
Every process is stopped (its whole process group) when the stack closes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Stack:
    workdir: Path
    env: dict[str, str]
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, name: str, command: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(
            command,
            env=self.env,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_for(self, name: str, url: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            process = self.processes[name]
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log(name)}")
            try:
                if requests.get(url, timeout=2).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"{name} did not answer on {url}:\n{self.log(name)}")

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def start_stack(
    workdir: Path,
    dagster_db: dict[str, str],
    iska_url: str,
    extra_env: dict[str, str],
    deadline_seconds: float = 120,
) -> Stack:
    home = workdir / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    shutil.copy(ROOT / "deploy" / "workspace.yaml", home / "workspace.yaml")
    ports = {name: free_port() for name in ("code", "webserver", "api", "simulator")}
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_USERNAME": dagster_db["username"],
        "DAGSTER_PG_PASSWORD": dagster_db["password"],
        "DAGSTER_PG_HOST": dagster_db["host"],
        "DAGSTER_PG_PORT": dagster_db["port"],
        "DAGSTER_PG_DB": dagster_db["database"],
        "ISKA_CODE_SERVER_HOST": "127.0.0.1",
        "ISKA_CODE_SERVER_PORT": str(ports["code"]),
        "ISKA_DATA_DIR": str(workdir / "data"),
        "ISKA_DATABASE_URL": iska_url,
        "BILLING_URL": f"http://127.0.0.1:{ports['simulator']}/billing",
        "SMS_URLS": ",".join(f"http://127.0.0.1:{ports['simulator']}/sms/{n}" for n in "abc"),
        "ISKA_PUBLIC_URL": f"http://127.0.0.1:{ports['api']}",
        "ISKA_DAGSTER_URL": f"http://127.0.0.1:{ports['webserver']}",
        **extra_env,
    }
    stack = Stack(workdir, env, ports)
    deadline = time.monotonic() + deadline_seconds
    try:
        # as the compose file's dagster-init service: the instance first, then its processes
        subprocess.run(
            [str(BIN / "iska"), "init-instance"],
            env=env,
            cwd=workdir,
            check=True,
            capture_output=True,
            timeout=120,
        )
        stack.start("simulator", [str(BIN / "iska"), "simulator", "--port", str(ports["simulator"])])
        stack.start(
            "code",
            [
                str(BIN / "dagster"),
                "code-server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports["code"]),
                "--module-name",
                "iska_pipelines.definitions",
                "--location-name",
                "iska_pipelines",
            ],
        )
        stack.start("api", [str(BIN / "iska"), "api", "--port", str(ports["api"])])
        stack.wait_for("simulator", stack.url("simulator") + "/health", deadline)
        stack.wait_for("api", stack.url("api") + "/health", deadline)
        _wait_for_code_server(stack, deadline)
        stack.start(
            "webserver",
            [
                str(BIN / "dagster-webserver"),
                "--host",
                "127.0.0.1",
                "--port",
                str(ports["webserver"]),
                "--workspace",
                str(home / "workspace.yaml"),
            ],
        )
        stack.start(
            "daemon", [str(BIN / "dagster-daemon"), "run", "--workspace", str(home / "workspace.yaml")]
        )
        stack.wait_for("webserver", stack.url("webserver") + "/server_info", deadline)
    except BaseException:
        stack.stop()
        raise
    return stack


def _wait_for_code_server(stack: Stack, deadline: float) -> None:
    while time.monotonic() < deadline:
        if stack.processes["code"].poll() is not None:
            raise RuntimeError(f"the code server exited:\n{stack.log('code')}")
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex(("127.0.0.1", stack.ports["code"])) == 0:
                return
        time.sleep(0.25)
    raise TimeoutError(f"the code server did not listen:\n{stack.log('code')}")
