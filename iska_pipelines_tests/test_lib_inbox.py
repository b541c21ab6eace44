"""The watched folder's rules (SPEC §2), without Dagster."""

import os
import time

import pytest

from iska_pipelines.lib.inbox.folders import (
    InboxFolders,
    is_candidate,
    is_settled,
    parse_key,
    partition_key,
    route_by_name,
    sanitise,
    sha256_of,
)
from iska_pipelines.lib.vocabulary import FileKind


@pytest.mark.parametrize(
    "name, kind",
    [
        ("forecasts_ghana.csv", FileKind.FORECASTS),
        ("FORECAST-2026-11-25.CSV", FileKind.FORECASTS),
        ("2021-02-05_additions.csv", FileKind.ADDITIONS),
        ("2021-02-06_deletions.csv", FileKind.CANCELLATIONS),
        ("cancellations_today.csv", FileKind.CANCELLATIONS),
        ("2021-02-06_locupdates.csv", FileKind.UPDATES),
        ("Updates.csv", FileKind.UPDATES),
        ("subscribers.csv", None),
    ],
)
def test_names_at_the_inbox_root_route_to_their_kind(name, kind):
    assert route_by_name(name) == kind


@pytest.mark.parametrize(
    "name",
    [
        ".hidden.csv",
        "big.csv.part",
        "big.csv.tmp",
        "big.csv~",
        "x_additions.csv.rejected.csv",
        "x_forecast.csv.error.txt",
    ],
)
def test_hidden_temporary_and_report_names_are_never_taken(name):
    assert not is_candidate(name)


def test_a_file_is_settled_only_after_the_settle_time_without_changes():
    now = time.time()
    assert not is_settled(now - 1, now, settle_seconds=5)
    assert is_settled(now - 5, now, settle_seconds=5)


def test_partition_keys_are_safe_and_carry_kind_name_and_fingerprint():
    key = partition_key(FileKind.ADDITIONS, "new subs (Feb) é.csv", "ab" * 32)
    assert key == "additions-new_subs_Feb_.csv-ababababab"
    parts = parse_key(key)
    assert (parts.kind, parts.sanitised_name, parts.hash_prefix) == (
        FileKind.ADDITIONS,
        "new_subs_Feb_.csv",
        "ababababab",
    )
    assert all(c.isalnum() or c in "._-" for c in key)
    assert sanitise("..") == "file"


def test_waiting_files_come_oldest_first_by_mtime_then_name(tmp_path):
    folders = InboxFolders(tmp_path)
    folders.ensure()
    now = time.time()
    for name, age in [("b_additions.csv", 30), ("a_additions.csv", 30), ("c_additions.csv", 60)]:
        path = folders.inbox / name
        path.write_text("msisdn,ts\n")
        os.utime(path, (now - age, now - age))
    assert [f.path.name for f in folders.waiting()] == [
        "c_additions.csv",
        "a_additions.csv",
        "b_additions.csv",
    ]


def test_locate_finds_a_file_by_key_in_the_inbox_or_the_archive(tmp_path):
    folders = InboxFolders(tmp_path)
    folders.ensure()
    path = folders.inbox / "forecasts" / "grid.csv"
    path.write_text("gid,lat,lon,fcat24,fcat48\n")
    sha = sha256_of(path)
    key = partition_key(FileKind.FORECASTS, path.name, sha)
    assert folders.locate(key) == path
    archived = folders.archive_applied(path, FileKind.FORECASTS, sha)
    assert folders.locate(key) == archived


def test_an_archived_name_clash_keeps_both_files(tmp_path):
    folders = InboxFolders(tmp_path)
    folders.ensure()
    first = folders.inbox / "grid_forecast.csv"
    first.write_text("one\n")
    folders.archive_applied(first, FileKind.FORECASTS, sha256_of(first))
    second = folders.inbox / "grid_forecast.csv"
    second.write_text("two\n")
    sha = sha256_of(second)
    moved = folders.archive_applied(second, FileKind.FORECASTS, sha)
    assert moved.name == f"grid_forecast-{sha[:10]}.csv"
    assert (folders.archive / "forecasts" / "grid_forecast.csv").read_text() == "one\n"
    assert folders.locate(partition_key(FileKind.FORECASTS, "grid_forecast.csv", sha)) == moved
