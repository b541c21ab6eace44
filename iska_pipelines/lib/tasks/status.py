"""`task_status` (SPEC §8): the old service's task words for what happened to an upload or run.

A task id is either an upload's partition key (lib/inbox/uploads.py) or a run id (the SMS trigger).
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

from iska_pipelines.lib.health.intake import file_account
from iska_pipelines.lib.inbox.files import file_row
from iska_pipelines.lib.inbox.folders import InboxFolders, parse_key, sanitise
from iska_pipelines.lib.inbox.uploads import uploaded_at
from iska_pipelines.lib.tasks.graphql import RunReader, RunSummary
from iska_pipelines.lib.vocabulary import FileOutcome, TaskStatus

KEY_MAX = 255  # ingested_files.partition_key
RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


FROM_RUN = {
    "QUEUED": TaskStatus.PENDING,
    "NOT_STARTED": TaskStatus.PENDING,
    "STARTING": TaskStatus.PENDING,
    "STARTED": TaskStatus.STARTED,
    "MANAGED": TaskStatus.STARTED,
    "SUSPENDED": TaskStatus.STARTED,
    "CANCELING": TaskStatus.STARTED,
    "SUCCESS": TaskStatus.SUCCESS,
    "FAILURE": TaskStatus.FAILURE,
    "CANCELED": TaskStatus.FAILURE,
}
UNFINISHED = (TaskStatus.PENDING, TaskStatus.STARTED)


@dataclass(frozen=True)
class FileState:
    """Where the file of a task stands outside Dagster."""

    outcome: str | None  # ingested_files.outcome
    waiting: bool  # still in the inbox
    duplicate: bool  # moved to archive/<kind>/duplicates/ by the sensor
    uploaded: datetime | None
    account: str = ""  # ISKA's record of it in words (rows applied, refusal reason, duplicate of)


@dataclass(frozen=True)
class TaskAnswer:
    status: TaskStatus
    detail: str


def file_status(state: FileState, runs: list[RunSummary], now: datetime, timeout: timedelta) -> TaskStatus:
    newest = FROM_RUN.get(runs[0].status, TaskStatus.STARTED) if runs else None
    if newest in UNFINISHED:
        status = newest  # a re-run in progress says more than an older outcome
    elif state.outcome == FileOutcome.APPLIED:
        return TaskStatus.SUCCESS
    elif state.outcome == FileOutcome.REJECTED:
        return TaskStatus.FAILURE
    elif state.outcome == FileOutcome.DUPLICATE:
        return TaskStatus.SUCCESS
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


def file_words(status: TaskStatus, state: FileState, runs: list[RunSummary]) -> str:
    """`detail`: what happened to the file, in words (SPEC §8)."""
    newest = f"run {runs[0].run_id}" if runs else ""
    if status is TaskStatus.PENDING:
        return f"queued as {newest}" if runs else "waiting in the inbox for the sensor to take it"
    if status is TaskStatus.STARTED:
        return f"being applied by {newest}"
    if status is TaskStatus.EXPIRED:
        return "unknown task, or not finished within TASK_TIMEOUT"
    if state.account:
        return state.account
    if state.duplicate:
        return "same content as a file applied earlier, not applied again"
    return (
        f"{newest} ended {runs[0].status} before the file was recorded; see it in the Dagster UI"
        if runs
        else ""
    )


def file_state(engine: sa.Engine, folders: InboxFolders, key: str) -> FileState:
    parts = parse_key(key)
    with engine.connect() as connection:
        row = file_row(connection, key)
    outcome = row.outcome if row is not None else None
    name = parts.sanitised_name  # uploads are named so that this is the file's name
    return FileState(
        account=file_account(row) if row is not None else "",
        outcome=outcome,
        waiting=_exists(folders.inbox / parts.kind / name) or _exists(folders.inbox / name),
        duplicate=_exists(folders.archive / parts.kind / "duplicates" / name),
        uploaded=uploaded_at(name),
    )


def task_status(
    task_id: str, engine: sa.Engine, folders: InboxFolders, runs: RunReader, now: datetime, timeout: timedelta
) -> TaskStatus:
    """The status of an upload (its partition key) or of a run (its id)."""
    return describe_task(task_id, engine, folders, runs, now, timeout).status


def describe_task(
    task_id: str, engine: sa.Engine, folders: InboxFolders, runs: RunReader, now: datetime, timeout: timedelta
) -> TaskAnswer:
    """The status of an upload (its partition key) or of a run (its id), and what happened."""
    task_id = task_id.strip()
    if RUN_ID.match(task_id):
        run = runs.run(task_id)
        status = run_status(run, now, timeout)
        return TaskAnswer(status, f"run {task_id} is {run.status}" if run is not None else "unknown run id")
    try:
        parts = parse_key(task_id)
    except ValueError:
        return TaskAnswer(TaskStatus.EXPIRED, "not a task id this API gave out")
    if sanitise(parts.sanitised_name) != parts.sanitised_name or len(task_id) > KEY_MAX:
        return TaskAnswer(TaskStatus.EXPIRED, "not a task id this API gave out")
    state = file_state(engine, folders, task_id)
    found = runs.runs_for_partition(task_id)
    status = file_status(state, found, now, timeout)
    return TaskAnswer(status, file_words(status, state, found))


def _exists(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False
