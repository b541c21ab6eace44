"""`task_status` (SPEC §8): the old service's task words for what happened to an upload or run.

A task id is either an upload's partition key (lib/uploads.py) or a run id (the SMS trigger).
For a file, ISKA's own record of it (`ingested_files`) is the final word once written; before
that, its newest run says how far it got; with no run yet, a file still waiting in the inbox is
PENDING. A file the sensor recognised as a duplicate of applied content was never run and is
SUCCESS: its content is in. Anything unfinished after TASK_TIMEOUT, or unknown, is EXPIRED.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from iska_pipelines.lib.dagster_client import RunReader, RunSummary
from iska_pipelines.lib.inbox import InboxFolders, parse_key, sanitise
from iska_pipelines.lib.storage.files import file_outcome
from iska_pipelines.lib.uploads import uploaded_at
from iska_pipelines.lib.vocabulary import FileOutcome, TaskStatus

KEY_MAX = 255  # ingested_files.partition_key
RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


FROM_RUN = {
    "QUEUED": TaskStatus.PENDING, "NOT_STARTED": TaskStatus.PENDING, "STARTING": TaskStatus.PENDING,
    "STARTED": TaskStatus.STARTED, "MANAGED": TaskStatus.STARTED, "SUSPENDED": TaskStatus.STARTED,
    "CANCELING": TaskStatus.STARTED,
    "SUCCESS": TaskStatus.SUCCESS, "FAILURE": TaskStatus.FAILURE, "CANCELED": TaskStatus.FAILURE,
}
UNFINISHED = (TaskStatus.PENDING, TaskStatus.STARTED)


@dataclass(frozen=True)
class FileState:
    """Where the file of a task stands outside Dagster."""

    outcome: str | None  # ingested_files.outcome
    waiting: bool  # still in the inbox
    duplicate: bool  # moved to archive/<kind>/duplicates/ by the sensor
    uploaded: datetime | None


def file_status(state: FileState, runs: list[RunSummary], now: datetime, timeout: timedelta) -> TaskStatus:
    newest = FROM_RUN.get(runs[0].status, TaskStatus.STARTED) if runs else None
    if newest in UNFINISHED:
        status = newest  # a re-run in progress says more than an older outcome
    elif state.outcome == FileOutcome.APPLIED:
        return TaskStatus.SUCCESS
    elif state.outcome == FileOutcome.REJECTED:
        return TaskStatus.FAILURE
    elif newest is not None:
        return newest
    elif state.duplicate:
        return TaskStatus.SUCCESS
    elif state.waiting:
        status = TaskStatus.PENDING
    else:
        return TaskStatus.EXPIRED
    started = state.uploaded or (datetime.fromtimestamp(runs[-1].created, now.tzinfo) if runs else None)
    return TaskStatus.EXPIRED if started is not None and now - started > timeout else status


def run_status(run: RunSummary | None, now: datetime, timeout: timedelta) -> TaskStatus:
    if run is None:
        return TaskStatus.EXPIRED
    status = FROM_RUN.get(run.status, TaskStatus.STARTED)
    if status in UNFINISHED and now - datetime.fromtimestamp(run.created, now.tzinfo) > timeout:
        return TaskStatus.EXPIRED
    return status


def file_state(engine: sa.Engine, folders: InboxFolders, key: str) -> FileState:
    parts = parse_key(key)
    with engine.connect() as connection:
        outcome = file_outcome(connection, key)
    name = parts.sanitised_name  # uploads are named so that this is the file's name
    return FileState(
        outcome=outcome,
        waiting=_exists(folders.inbox / parts.kind / name) or _exists(folders.inbox / name),
        duplicate=_exists(folders.archive / parts.kind / "duplicates" / name),
        uploaded=uploaded_at(name),
    )


def task_status(task_id: str, engine: sa.Engine, folders: InboxFolders, runs: RunReader,
                now: datetime, timeout: timedelta) -> TaskStatus:
    """The status of an upload (its partition key) or of a run (its id)."""
    task_id = task_id.strip()
    if RUN_ID.match(task_id):
        return run_status(runs.run(task_id), now, timeout)
    try:
        parts = parse_key(task_id)
    except ValueError:
        return TaskStatus.EXPIRED  # never an id this API gave out
    if sanitise(parts.sanitised_name) != parts.sanitised_name or len(task_id) > KEY_MAX:
        return TaskStatus.EXPIRED  # not a key the sensor can have made (and no path tricks)
    return file_status(file_state(engine, folders, task_id), runs.runs_for_partition(task_id), now, timeout)


def _exists(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False
