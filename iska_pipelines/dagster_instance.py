"""Dagster's own instance storage in DAGSTER_HOME: created once, before the processes that share it.

Dagster creates an instance's storage (runs, event logs, schedules) the first time a process
opens an instance whose storage is missing. Two processes doing so at the same moment, say the
daemon and the API on a fresh DAGSTER_HOME, both run Alembic's first migration, and one of them
dies on "more than one head present". So the storage has one creator: `iska init-instance`,
which `make run` (devserver.py) and the compose file's `dagster-init` service run before they
start anything else. The API never creates it: it opens only an instance that is there
(`open_existing`), and says how to create one when it is not.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import dagster as dg

from iska_pipelines.lib.tasks.graphql import DagsterUnavailable

# what Dagster's default storage (no storage block in dagster.yaml) keeps under DAGSTER_HOME
DEFAULT_STORAGE_FILES = ("history/runs.db", "history/runs/index.db", "schedules/schedules.db")
# a top-level storage block in dagster.yaml: the storage is configured elsewhere (PostgreSQL)
STORAGE_BLOCK = re.compile(r"^(storage|run_storage|event_log_storage|schedule_storage)\s*:", re.MULTILINE)
HOW_TO_CREATE = (
    "run `iska init-instance` with the same DAGSTER_HOME first (make run and the compose file's "
    "dagster-init service do), before Dagster and the API start"
)


class NoInstance(DagsterUnavailable):
    """DAGSTER_HOME holds no instance storage yet; the message says how to create it."""


def create_instance(home: Path) -> None:
    """Create (or just open) the instance in `home`, alone: call it before starting any
    process that uses it."""
    home.mkdir(parents=True, exist_ok=True)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_run_records(limit=1)  # every storage exists once the instance has answered


def missing_storage(home: Path) -> list[str]:
    """The default storage's files not yet in `home`. Empty when they are all there, and when
    dagster.yaml configures the storage elsewhere (PostgreSQL): that one is created by
    `iska init-instance` before anyone starts, which is the compose file's order."""
    config_file = home / "dagster.yaml"
    if config_file.is_file() and STORAGE_BLOCK.search(config_file.read_text(encoding="utf-8")):
        return []
    return [name for name in DEFAULT_STORAGE_FILES if not (home / name).is_file()]


def open_existing(home: Path) -> dg.DagsterInstance:
    """The instance in `home`, never created here (see the module's docstring)."""
    missing = missing_storage(home)
    if missing:
        raise NoInstance(
            f"there is no Dagster instance in DAGSTER_HOME={home} yet ({missing[0]} is missing), "
            f"and the API does not create one: {HOW_TO_CREATE}"
        )
    return dg.DagsterInstance.from_config(str(home))


def init_instance_command() -> int:
    """`iska init-instance`: DAGSTER_HOME's instance created, or found ready."""
    home = os.environ.get("DAGSTER_HOME", "").strip()
    if not home:
        print("iska init-instance: DAGSTER_HOME is not set (make run uses .dagster/)", file=sys.stderr)
        return 2
    create_instance(Path(home).resolve())
    print(f"Dagster's instance is ready in {Path(home).resolve()}")
    return 0
