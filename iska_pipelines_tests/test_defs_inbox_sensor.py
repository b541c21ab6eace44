"""The inbox sensor: settled files only, routing, unknown names, cost per tick (SPEC §2)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import time_machine
import yaml

from iska_pipelines.defs.inbox.jobs import ingest_subscriptions
from iska_pipelines.defs.inbox.sensors import inbox_sensor
from iska_pipelines_tests.conftest import sample_path
from iska_pipelines_tests.opened_paths import paths_touched_during

ROOT = Path(__file__).resolve().parents[1]


def test_files_are_routed_by_folder_and_by_name(iska):
    iska.drop("msisdn,ts\n", name="monday.csv", folder="cancellations")
    iska.drop(sample_path("2021-02-06_locupdates.csv"))
    iska.drop(sample_path("forecasts_ghana.csv"), name="grid_forecast_today.csv")
    result = iska.tick()
    kinds = sorted(r.tags["iska/kind"] for r in result.run_requests)
    assert kinds == ["cancellations", "forecasts", "updates"]
    jobs = {r.partition_key.split("-")[0]: r.job_name for r in result.run_requests}
    assert jobs == {
        "cancellations": "ingest_subscriptions",
        "updates": "ingest_subscriptions",
        "forecasts": "ingest_forecasts",
    }
    assert set(iska.instance.get_dynamic_partitions("subscription_files")) == {
        r.partition_key for r in result.run_requests if r.job_name == "ingest_subscriptions"
    }


def test_a_name_that_routes_nowhere_goes_to_rejected_unknown_with_a_reason(iska):
    iska.drop("a,b\n1,2\n", name="subscribers.csv")
    result = iska.tick()
    assert result.run_requests == []
    moved = iska.folders.rejected / "unknown" / "subscribers.csv"
    assert moved.exists()
    assert "inbox/additions/" in moved.with_name("subscribers.csv.error.txt").read_text()


def test_only_settled_files_are_taken_and_a_settled_file_is_taken_on_the_next_tick(iska):
    path = iska.drop(sample_path("2021-02-05_additions.csv"), settled=False)
    assert iska.tick().run_requests == []
    import os
    import time

    os.utime(path, (time.time() - 60, time.time() - 60))
    assert len(iska.tick().run_requests) == 1


def test_a_file_whose_run_is_pending_is_not_requested_twice(iska):
    iska.drop(sample_path("2021-02-05_additions.csv"))
    assert len(iska.tick().run_requests) == 1
    second = iska.tick()
    assert second.run_requests == []
    assert "1 in progress" in second.skip_reason.skip_message


def test_subscription_files_dropped_together_are_requested_in_arrival_order_on_one_serial_queue(iska):
    import time

    now = time.time()
    iska.drop(sample_path("2021-02-06_deletions.csv"), mtime=now - 30)
    iska.drop(sample_path("2021-02-05_additions.csv"), mtime=now - 90)
    iska.drop(sample_path("2021-02-06_additions.csv"), mtime=now - 60)
    result = iska.tick()
    assert [r.tags["iska/file"] for r in result.run_requests] == [
        "2021-02-05_additions.csv",
        "2021-02-06_additions.csv",
        "2021-02-06_deletions.csv",
    ]
    # every subscriptions run carries the tag that the run queue admits one at a time
    assert ingest_subscriptions.tags["iska/serial"] == "subscriptions"
    instance_settings = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    limits = instance_settings["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {"key": "iska/serial", "value": "subscriptions", "limit": 1} in limits


def test_a_tick_with_many_archived_files_does_not_read_them(iska):
    archive = iska.folders.archive / "forecasts"
    archive.mkdir(parents=True, exist_ok=True)
    for i in range(1000):
        (archive / f"old_{i}.csv").write_text("gid,lat,lon,fcat24,fcat48\n")
    iska.drop(sample_path("2021-02-05_additions.csv"))
    with paths_touched_during() as touched:
        result = iska.tick()
    assert len(result.run_requests) == 1
    assert not [p for p in touched if str(iska.folders.archive) in p]
    assert any("2021-02-05_additions.csv" in p for p in touched)


def test_the_sensor_runs_by_default_on_the_configured_interval():
    assert inbox_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert inbox_sensor.minimum_interval_seconds == 15


def test_definitions_load_and_validate():
    from iska_pipelines.definitions import defs

    definitions = defs()
    dg.Definitions.validate_loadable(definitions)
    assert {"forecasts", "subscriptions"} <= {
        k.to_user_string() for k in definitions.resolve_asset_graph().get_all_asset_keys()
    }
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_a_file_whose_run_is_still_in_progress_is_neither_new_nor_a_duplicate(iska):
    """The run commits, then moves its file: a tick in between must leave the file alone."""
    from iska_pipelines.lib.inbox.files import FileRecord, record_file
    from iska_pipelines.lib.inbox.folders import sha256_of

    path = iska.drop(sample_path("2021-02-05_additions.csv"))
    [request] = iska.tick().run_requests
    run = iska.instance.create_run_for_job(
        job_def=ingest_subscriptions.resolve(asset_graph=_asset_graph()),
        tags={"dagster/partition": request.partition_key},
    )
    assert run.status == dg.DagsterRunStatus.NOT_STARTED  # queued for launch, not finished
    with iska.engine.begin() as connection:  # the run's transaction has committed
        record_file(connection, FileRecord(request.partition_key, "additions", path.name, sha256_of(path)))
    result = iska.tick()
    assert result.run_requests == [] and "1 in progress" in result.skip_reason.skip_message
    assert path.exists()
    iska.instance.report_run_canceled(run)  # finished: a file still here is a duplicate now
    iska.tick()
    assert not path.exists()
    assert (iska.folders.archive / "additions" / "duplicates" / path.name).exists()


def _asset_graph():
    from iska_pipelines.definitions import defs

    return defs().resolve_asset_graph()


def test_a_refused_file_dropped_again_after_its_content_was_applied_under_another_name_is_a_duplicate(iska):
    """SPEC §2: identical content dropped again is a duplicate, even under a name once refused."""
    now = datetime.now(UTC)
    ahead = (now + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S")  # future_ts, for now
    additions = f"msisdn,ts,service_id,lat,lon\n233020000071,{ahead},11,5.6,-0.2\n"
    with time_machine.travel(now, tick=False):
        assert not iska.ingest(additions, name="early_additions.csv").success  # refused as a whole
    with time_machine.travel(now + timedelta(hours=3), tick=False):
        assert iska.ingest(additions, name="later_additions.csv").success  # the same rows apply now
        iska.drop(additions, name="early_additions.csv")  # the refused name, the applied content

        tick = iska.tick()

    assert tick.run_requests == []
    assert list((iska.folders.archive / "additions" / "duplicates").iterdir())
