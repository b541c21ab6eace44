"""Uploads land in the inbox as the sensor expects; task words follow SPEC §8."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from iska_pipelines.lib.inbox.folders import (
    InboxFolders,
    is_candidate,
    parse_key,
    partition_key,
    route_by_name,
)
from iska_pipelines.lib.inbox.uploads import UploadTooLarge, uploaded_at, write_upload
from iska_pipelines.lib.tasks.graphql import RunSummary
from iska_pipelines.lib.tasks.status import FileState, TaskStatus, file_status, run_status
from iska_pipelines.lib.vocabulary import FileKind

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CONTENT = b"ts,msisdn\n2021-02-05 15:25:56,233010000012\n"


def test_an_upload_is_renamed_into_the_kinds_inbox_folder_and_named_by_its_partition_key(tmp_path):
    folders = InboxFolders(tmp_path)
    stored = write_upload(
        folders, FileKind.CANCELLATIONS, "2021-02-06_deletions.csv", [CONTENT[:5], CONTENT[5:]], 1000, now=NOW
    )
    assert stored.path.parent == folders.inbox / "cancellations"
    assert [p.name for p in stored.path.parent.iterdir()] == [stored.path.name]  # no .part left
    assert stored.path.read_bytes() == CONTENT and is_candidate(stored.path.name)
    sha = hashlib.sha256(CONTENT).hexdigest()
    assert stored.task_id == partition_key(FileKind.CANCELLATIONS, stored.path.name, sha)
    assert parse_key(stored.task_id).sanitised_name == stored.path.name
    assert uploaded_at(stored.path.name) == NOW


def test_two_uploads_of_the_same_name_never_clash(tmp_path):
    folders = InboxFolders(tmp_path)
    first = write_upload(folders, FileKind.ADDITIONS, "a.csv", [CONTENT], 1000, now=NOW)
    second = write_upload(folders, FileKind.ADDITIONS, "a.csv", [CONTENT], 1000, now=NOW)
    assert first.path != second.path and first.task_id != second.task_id
    assert first.path.read_bytes() == second.path.read_bytes()


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",  # path-traversal probe
        "C:\\evil\\x.csv",
        "",
        None,
        ".hidden.csv",
        "half.csv.part",
        "spaces and ü.csv",
        "x" * 400,
    ],
)
def test_any_client_file_name_becomes_a_safe_visible_name_inside_the_inbox(tmp_path, name):
    folders = InboxFolders(tmp_path)
    stored = write_upload(folders, FileKind.UPDATES, name, [CONTENT], 1000, now=NOW)
    assert stored.path.parent == folders.inbox / "updates"
    assert is_candidate(stored.path.name) and stored.path.suffix == ".csv"
    assert parse_key(stored.task_id).sanitised_name == stored.path.name


def test_an_upload_over_the_limit_leaves_nothing_in_the_inbox(tmp_path):
    folders = InboxFolders(tmp_path)
    with pytest.raises(UploadTooLarge):
        write_upload(folders, FileKind.FORECASTS, "big.csv", [b"x" * 600, b"x" * 600], 1000)
    assert list((folders.inbox / "forecasts").iterdir()) == []


def test_a_name_without_an_upload_time_has_none():
    assert uploaded_at("2021-02-06_deletions.csv") is None
    assert route_by_name("forecasts.20261125T120000000000Z-abcdef.csv") is FileKind.FORECASTS


def run(status: str, age: timedelta = timedelta(0)) -> RunSummary:
    return RunSummary("r", status, (NOW - age).timestamp())


WAITING = FileState(outcome=None, waiting=True, duplicate=False, uploaded=NOW - timedelta(minutes=1))


@pytest.mark.parametrize(
    "state, runs, expected",
    [
        (WAITING, [], TaskStatus.PENDING),
        (WAITING, [run("QUEUED")], TaskStatus.PENDING),
        (WAITING, [run("STARTING")], TaskStatus.PENDING),
        (WAITING, [run("STARTED")], TaskStatus.STARTED),
        (FileState("applied", False, False, NOW), [run("SUCCESS")], TaskStatus.SUCCESS),
        (FileState("rejected", False, False, NOW), [run("FAILURE")], TaskStatus.FAILURE),
        (FileState("applied", False, False, NOW), [], TaskStatus.SUCCESS),
        (FileState(None, True, False, NOW), [run("FAILURE")], TaskStatus.FAILURE),
        (FileState(None, True, False, NOW), [run("CANCELED")], TaskStatus.FAILURE),
        (FileState("rejected", False, False, NOW), [run("STARTED"), run("FAILURE")], TaskStatus.STARTED),
        (FileState(None, False, True, NOW), [], TaskStatus.SUCCESS),
        (FileState(None, False, False, NOW), [], TaskStatus.EXPIRED),
        (FileState(None, False, False, None), [], TaskStatus.EXPIRED),
        (FileState(None, True, False, NOW - 2 * HOUR), [], TaskStatus.EXPIRED),
        (FileState(None, True, False, NOW - 2 * HOUR), [run("QUEUED")], TaskStatus.EXPIRED),
        (FileState(None, True, False, None), [run("STARTED", 2 * HOUR)], TaskStatus.EXPIRED),
        (FileState("applied", False, False, NOW - 2 * HOUR), [run("SUCCESS")], TaskStatus.SUCCESS),
    ],
    ids=lambda value: None if not isinstance(value, TaskStatus) else str(value),
)
def test_a_file_task_reads_as_its_outcome_or_its_newest_run(state, runs, expected):
    assert file_status(state, runs, NOW, HOUR) is expected


def test_a_run_task_reads_as_its_run():
    assert run_status(None, NOW, HOUR) is TaskStatus.EXPIRED
    assert run_status(run("SUCCESS", 3 * HOUR), NOW, HOUR) is TaskStatus.SUCCESS
    assert run_status(run("STARTED", 3 * HOUR), NOW, HOUR) is TaskStatus.EXPIRED
    assert run_status(run("QUEUED"), NOW, HOUR) is TaskStatus.PENDING
