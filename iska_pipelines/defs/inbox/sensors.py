"""The watched folder -> one dynamic partition and one run per settled file (SPEC §2)."""

import json
import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from iska_pipelines.defs.health.events import intake_observation
from iska_pipelines.defs.inbox.jobs import ingest_forecasts, ingest_subscriptions
from iska_pipelines.defs.inbox.partitions import partitions_name
from iska_pipelines.defs.resources import SETTINGS, IskaDatabase, IskaInbox
from iska_pipelines.lib.inbox.folders import sha256_of
from iska_pipelines.lib.inbox.look import look_at_inbox, unknown_file_error
from iska_pipelines.lib.inbox.set_aside import duplicate_detail, record_duplicate, record_unknown
from iska_pipelines.lib.vocabulary import RUNS_IN_PROGRESS, FileKind, FileOutcome

IN_PROGRESS = [dg.DagsterRunStatus(name) for name in RUNS_IN_PROGRESS]


@contextmanager
def _file_may_vanish(context: dg.SensorEvaluationContext, path: Path):
    """A file moved or deleted by someone else meanwhile is not this tick's failure."""
    try:
        yield
    except FileNotFoundError:
        context.log.info(f"{path.name} left the inbox while it was being looked at")


@dg.sensor(
    jobs=[ingest_forecasts, ingest_subscriptions],
    minimum_interval_seconds=SETTINGS.sensor_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Takes settled CSV files from the inbox: one partition and one run per file.",
)
def inbox_sensor(
    context: dg.SensorEvaluationContext, database: IskaDatabase, inbox: IskaInbox
) -> dg.SensorResult:
    folders = inbox.folders()
    previous = json.loads(context.cursor) if context.cursor else {}
    look = look_at_inbox(
        folders,
        database.engine(),
        previous.get("hashes", {}),
        time.time(),
        inbox.settle_seconds,
        lambda kind, key: context.instance.has_dynamic_partition(partitions_name(kind), key),
        lambda key: bool(
            context.instance.get_run_records(
                dg.RunsFilter(tags={"dagster/partition": key}, statuses=IN_PROGRESS), limit=1
            )
        ),
    )
    set_aside: list[dg.AssetObservation] = []  # shown on file_intake's day in the UI
    for dropped in look.unknown:
        with _file_may_vanish(context, dropped.path):
            error = unknown_file_error(dropped.path.name)
            record_unknown(database.engine(), dropped, sha256_of(dropped.path), error)
            target = folders.reject(dropped.path, None, None, error)
            context.log.warning(f"{dropped.path.name}: no kind in its name; moved to {target}")
            set_aside.append(intake_observation(dropped.path.name, FileOutcome.UNKNOWN, error, target))
    for dropped, sha, key in look.duplicates:
        look.hashes.pop(str(dropped.path), None)
        assert dropped.kind is not None, "only a file of a known kind is found a duplicate"
        with _file_may_vanish(context, dropped.path):
            record_duplicate(database.engine(), dropped, sha, key)
            target = folders.archive_duplicate(dropped.path, dropped.kind, sha)
            context.log.info(
                f"{dropped.path.name}: same content as {key}, not applied again; moved to {target}"
            )
            set_aside.append(
                intake_observation(dropped.path.name, FileOutcome.DUPLICATE, duplicate_detail(key), target)
            )

    new_keys: dict[str, list[str]] = {}
    requests = []
    for new in look.new:
        new_keys.setdefault(partitions_name(new.kind), []).append(new.key)
        job = ingest_forecasts if new.kind is FileKind.FORECASTS else ingest_subscriptions
        requests.append(
            dg.RunRequest(
                run_key=new.run_key,
                job_name=job.name,
                partition_key=new.key,
                tags={"iska/file": new.path.name, "iska/kind": str(new.kind)},
            )
        )
        context.log.info(f"{new.path.name}: new {new.kind} file, partition {new.key}")
    summary = (
        f"{len(look.new)} new, {len(look.duplicates)} duplicate, {len(look.unknown)} unknown, "
        f"{len(look.unsettled)} still being written, {len(look.in_flight)} in progress"
    )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[
            dg.AddDynamicPartitionsRequest(partitions_def_name=name, partition_keys=keys)
            for name, keys in new_keys.items()
        ],
        cursor=json.dumps({"hashes": look.hashes}),
        asset_events=set_aside,
        skip_reason=None if requests else summary,
    )
