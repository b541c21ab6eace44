"""`make run`: Dagster (UI :3000), the ISKA API (:8000) and the gateway simulator (:8010)
started together and stopped together: on SIGINT or SIGTERM to this process or to `make`
(whose death this process notices), or when any one of the three exits.

Dagster's instance storage is created here before any of them starts: processes that create
it at the same moment can fail (dagster_instance.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dotenv import load_dotenv

from iska_pipelines.dagster_instance import create_instance

# Dagster's own instance (runs, events, schedules) under make run; Makefile copies the root
# dagster.yaml here.
DAGSTER_HOME = ".dagster"
# development only, like the default callback secret: `make run` lets the simulator play a
# subscriber (POST /simulator/inbound) without any setup
DEV_INBOUND_TOKEN = "iska-dev-inbound-token"
INBOUND_PATH = "/subscriptions/api/v1/subscriptions/inbound/"


def with_inbound(env: dict[str, str]) -> dict[str, str]:
    """An inbound token for the API when none is set, and the simulator pointed at the API."""
    fixed = dict(env)
    if not fixed.get("ISKA_INBOUND_TOKEN", "").strip():
        fixed["ISKA_INBOUND_TOKEN"] = DEV_INBOUND_TOKEN
    if not fixed.get("ISKA_SIM_INBOUND_URL", "").strip():
        port = fixed.get("ISKA_API_PORT", "8000")
        fixed["ISKA_SIM_INBOUND_URL"] = (
            f"http://127.0.0.1:{port}{INBOUND_PATH}?token={fixed['ISKA_INBOUND_TOKEN']}"
        )
    return fixed


def commands(bin_dir: Path, root: Path) -> dict[str, list[str]]:
    return {
        "dagster": [
            str(bin_dir / "dagster"),
            "dev",
            "-w",
            str(root / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            os.environ.get("ISKA_DAGSTER_PORT", "3000"),
        ],
        "api": [str(bin_dir / "iska"), "api", "--port", os.environ.get("ISKA_API_PORT", "8000")],
        "simulator": [
            str(bin_dir / "iska"),
            "simulator",
            "--port",
            os.environ.get("ISKA_SIMULATOR_PORT", "8010"),
        ],
    }


def absolute_paths(env: dict[str, str], root: Path) -> dict[str, str]:
    """Relative folders, files and SQLite URLs made absolute against the repository root.

    Dagster runs with its instance folder as working directory (so `dagster dev` reads the
    instance's dagster.yaml from there and says nothing misleading about the root one); the
    settings must still mean the paths the user wrote in .env.
    """
    fixed = dict(env)
    fixed.setdefault("ISKA_DATA_DIR", "data")
    for name, value in env.items():
        if name.startswith("ISKA_") and name.endswith(("_DIR", "_FILE")) and value:
            fixed[name] = str((root / value).resolve())
    fixed["ISKA_DATA_DIR"] = str((root / fixed["ISKA_DATA_DIR"]).resolve())
    url = env.get("ISKA_DATABASE_URL", "")
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        fixed["ISKA_DATABASE_URL"] = prefix + str((root / url[len(prefix) :]).resolve())
    return fixed


DEMO_REGIONS = "samples/regions.toml"


def with_demo_regions(env: dict[str, str], root: Path) -> dict[str, str]:
    """The demo's two regions (Ghana and Nigeria, SPEC §15) unless ISKA_REGIONS_FILE is set
    (set and empty: one region) or the repository has no samples/ folder."""
    if "ISKA_REGIONS_FILE" in env or not (root / DEMO_REGIONS).is_file():
        return env
    return {**env, "ISKA_REGIONS_FILE": DEMO_REGIONS}


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _proc_status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as handle:
            return dict(line.rstrip("\n").split(":\t", 1) for line in handle if ":\t" in line)
    except OSError:
        return {}


def make_ancestor() -> int | None:
    """The pid of the `make` this process runs under, if any (Linux /proc; None elsewhere)."""
    pid = os.getppid()
    while pid > 1:
        status = _proc_status(pid)
        if not status:
            return None
        if status.get("Name") in {"make", "gmake"}:
            return pid
        pid = int(status.get("PPid", "0"))
    return None


def caught_stop_signals(pid: int) -> set[int]:
    """Which of SIGINT/SIGTERM/SIGHUP the process has a handler for (empty once it is gone)."""
    mask = int(_proc_status(pid).get("SigCgt", "0"), 16)
    return {sig for sig in STOP_SIGNALS if mask & (1 << (sig - 1))}


class MakeWatch:
    """Notices a signal sent to `make run`'s own pid.

    A terminal's Ctrl-C reaches the whole process group, but a service manager or a script
    signals make's pid alone, and make does not pass SIGINT on: it waits for its recipe to end.
    GNU make resets a fatal signal to its default disposition the moment it receives it, so a
    handler that disappears from make's caught-signal mask means make was told to stop.
    """

    def __init__(self) -> None:
        self.pid = make_ancestor()
        self.caught = caught_stop_signals(self.pid) if self.pid else set()

    def signalled(self) -> bool:
        if not self.pid:
            return False
        return caught_stop_signals(self.pid) != self.caught


def main() -> int:
    load_dotenv(".env", override=False)
    root = Path.cwd().resolve()
    bin_dir = Path(sys.executable).parent
    env = with_inbound(absolute_paths(with_demo_regions(dict(os.environ), root), root))
    dagster_home = Path(env.get("DAGSTER_HOME") or root / DAGSTER_HOME).resolve()
    env["DAGSTER_HOME"] = str(dagster_home)
    # `dagster dev` is the documented way to run a project locally; its notice that a newer
    # `dg dev` exists is nothing a user of ISKA can act on
    env["PYTHONWARNINGS"] = ",".join(
        filter(None, [env.get("PYTHONWARNINGS"), "ignore:Function `dev_command` is superseded"])
    )
    create_instance(dagster_home)
    print(f"Dagster's instance is ready in {dagster_home}", flush=True)
    parent = os.getppid()
    make = MakeWatch()
    processes: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    for name, command in commands(bin_dir, root).items():
        cwd = dagster_home if name == "dagster" else root
        processes[name] = subprocess.Popen(command, start_new_session=True, env=env, cwd=cwd)
        print(f"started {name}: {' '.join(command)} (pid {processes[name].pid})", flush=True)
    exit_code = 0
    while not stopping:
        if os.getppid() != parent or make.signalled():
            print("make was stopped; stopping Dagster, the API and the simulator", flush=True)
            stopping = True
        for name, process in processes.items():
            if process.poll() is not None:
                print(f"{name} exited with {process.returncode}; stopping the others", flush=True)
                exit_code = process.returncode or 1
                stopping = True
        time.sleep(0.2)
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    print("stopped", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
