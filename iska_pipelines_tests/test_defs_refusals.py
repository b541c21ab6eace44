"""Where a refused file, a duplicate and an unknown name show (SPEC §16, §8): on the file's
partition and on file_intake in Dagster, and in task_status's `detail` — not only in a log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from iska_pipelines.api.run_storage import InstanceRuns
from iska_pipelines.lib.tasks.status import TaskStatus, describe_task
from iska_pipelines_tests.conftest import sample_path

BAD = b"lat,lon,fcat24\n5.6,-0.2,1\n"  # no gid column: the file is refused as a whole


def task(iska, key: str):
    return describe_task(
        key, iska.engine, iska.folders, InstanceRuns(iska.instance), datetime.now(UTC), timedelta(hours=1)
    )


def test_a_refused_files_reason_is_on_its_partition_and_in_task_status(iska):
    iska.drop(BAD, name="forecasts_bad.csv")
    [request] = iska.tick().run_requests
    result = iska.run(request.partition_key)
    assert not result.success
    observed = iska.instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("forecasts"), asset_partitions=[request.partition_key]),
        limit=1,
    ).records
    reason = observed[0].asset_observation.metadata["reason"].value
    assert "gid" in reason
    answer = task(iska, request.partition_key)
    assert answer.status is TaskStatus.FAILURE and answer.detail == f"refused: {reason}"
    intake = iska.instance.fetch_materializations(dg.AssetKey("file_intake"), limit=1).records
    assert intake[0].asset_materialization.metadata["files_refused"].value == 1


def test_an_applied_files_detail_counts_its_rows(iska):
    result = iska.ingest(sample_path("forecasts_ghana.csv"))
    key = result.dagster_run.tags["dagster/partition"]
    answer = task(iska, key)
    assert answer.status is TaskStatus.SUCCESS
    assert answer.detail.startswith("applied ") and "forecasts_ghana.csv" in answer.detail


def test_a_duplicate_and_an_unknown_name_show_on_file_intake_and_in_task_status(iska):
    first = iska.ingest(sample_path("forecasts_ghana.csv"))
    original = first.dagster_run.tags["dagster/partition"]
    iska.drop(sample_path("forecasts_ghana.csv"), name="forecasts_again.csv")
    iska.drop(b"x\n", name="notes.csv")
    result = iska.tick()
    assert result.run_requests == []
    dg.serialize_value(result.asset_events)  # as the daemon stores them
    observed = {
        e.metadata["outcome"].value: e.metadata["detail"].value
        for e in result.asset_events
        if e.asset_key == dg.AssetKey("file_intake")
    }
    assert original in observed["duplicate"] and "notes.csv" in observed["unknown"]
    duplicate_key = original.replace("forecasts_ghana.csv", "forecasts_again.csv")
    answer = task(iska, duplicate_key)
    assert answer.status is TaskStatus.SUCCESS and original in answer.detail
    outcomes = dict(iska.rows("SELECT name, outcome FROM ingested_files"))
    assert outcomes == {
        "forecasts_ghana.csv": "applied",
        "forecasts_again.csv": "duplicate",
        "notes.csv": "unknown",
    }
