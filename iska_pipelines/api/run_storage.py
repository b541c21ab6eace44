"""Where the API reads run status: the instance in DAGSTER_HOME when the API has one (same
machine as Dagster, as under `make run`), else the webserver's GraphQL at ISKA_DAGSTER_URL.
Launching always goes through the webserver (api/routes/sms_trigger.py).

The API only reads an instance that exists: creating Dagster's storage is `iska init-instance`'s
job, done before Dagster and the API start (dagster_instance.py says why). Until there is one,
a status request answers 503 saying so."""

from __future__ import annotations

import threading
from pathlib import Path

import dagster as dg

from iska_pipelines.dagster_instance import open_existing
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.tasks.graphql import PARTITION_TAG, DagsterGraphQL, RunReader, RunSummary


class InstanceRuns:
    """Run status straight from Dagster's run storage."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance = instance

    def runs_for_partition(self, partition_key: str) -> list[RunSummary]:
        records = self.instance.get_run_records(dg.RunsFilter(tags={PARTITION_TAG: partition_key}), limit=10)
        return [_summary(record) for record in records]

    def run(self, run_id: str) -> RunSummary | None:
        record = self.instance.get_run_record_by_id(run_id)
        return None if record is None else _summary(record)


def _summary(record: dg.RunRecord) -> RunSummary:
    return RunSummary(
        record.dagster_run.run_id, record.dagster_run.status.value, record.create_timestamp.timestamp()
    )


_instances: dict[str, dg.DagsterInstance] = {}
_lock = threading.Lock()


def run_reader(settings: Settings) -> RunReader:
    if not settings.dagster_home:
        return DagsterGraphQL(settings.dagster_url)
    with _lock:
        instance = _instances.get(settings.dagster_home)
        if instance is None:
            instance = open_existing(Path(settings.dagster_home))
            _instances[settings.dagster_home] = instance
    return InstanceRuns(instance)
