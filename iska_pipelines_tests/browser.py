"""A real headless browser for page tests: Debian's chromium, driven by its command line
(`--dump-dom`, `--screenshot`), so no browser-driver package is needed. CI installs it
(.ci/run); without it the page tests are skipped saying so."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
GUARD_SECONDS = 120  # a hung browser fails the test instead of holding CI; not a timing check
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1280,1500",
]


def need_chromium() -> str:
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine: `apt-get install -y chromium` (CI's .ci/run does)")
    return CHROMIUM


def _run(args: list[str], home: Path) -> subprocess.CompletedProcess:
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [need_chromium(), *FLAGS, f"--user-data-dir={home}", *args],
        capture_output=True,
        text=True,
        timeout=GUARD_SECONDS,
        check=False,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )


def dump_dom(url: str, home: Path) -> str:
    """The page's DOM after the browser loaded and laid it out."""
    done = _run(["--dump-dom", url], home)
    assert done.returncode == 0 and "<html" in done.stdout, done.stderr[-2000:]
    return done.stdout


def screenshot(url: str, target: Path, home: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    done = _run([f"--screenshot={target}", url], home)
    assert done.returncode == 0 and target.exists(), done.stderr[-2000:]
    return target
