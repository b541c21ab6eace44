"""`make run`: Dagster (UI :3000), the ISKA API (:8000) and the gateway simulator (:8010)
started together and stopped together (Ctrl-C, or when any one of them exits)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dotenv import load_dotenv


def commands(bin_dir: Path) -> dict[str, list[str]]:
    return {
        "dagster": [str(bin_dir / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
                    "-p", os.environ.get("ISKA_DAGSTER_PORT", "3000")],
        "api": [str(bin_dir / "iska"), "api", "--port", os.environ.get("ISKA_API_PORT", "8000")],
        "simulator": [str(bin_dir / "iska"), "simulator", "--port",
                      os.environ.get("ISKA_SIMULATOR_PORT", "8010")],
    }


def main() -> int:
    load_dotenv(".env", override=False)
    bin_dir = Path(sys.executable).parent
    processes: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, command in commands(bin_dir).items():
        processes[name] = subprocess.Popen(command, start_new_session=True)
        print(f"started {name}: {' '.join(command)} (pid {processes[name].pid})", flush=True)
    exit_code = 0
    while not stopping:
        for name, process in processes.items():
            if process.poll() is not None:
                print(f"{name} exited with {process.returncode}; stopping the others", flush=True)
                exit_code = process.returncode or 1
                stopping = True
        time.sleep(0.5)
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
