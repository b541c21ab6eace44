"""Drives the real sensor and assets the way the daemon would, synchronously, for tests."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from iska_pipelines.defs.forecasts.assets import forecasts
from iska_pipelines.defs.inbox.sensors import inbox_sensor
from iska_pipelines.defs.resources import IskaDatabase, IskaInbox, IskaRules
from iska_pipelines.defs.subscriptions.assets import subscriptions
from iska_pipelines.lib.db.engine import engine_for
from iska_pipelines.lib.inbox.folders import InboxFolders

SETTLED_AGE = 60.0


@dataclass
class Iska:
    database_url: str
    data_dir: Path
    instance: dg.DagsterInstance
    settle_seconds: float = 5.0
    max_reject_fraction: float = 0.2
    max_grid_distance_km: float = 50.0
    cursor: str | None = None
    runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)

    @property
    def folders(self) -> InboxFolders:
        return InboxFolders(self.data_dir)

    @property
    def engine(self) -> sa.Engine:
        return engine_for(self.database_url)

    def resources(self) -> dict:
        return {
            "database": IskaDatabase(url=self.database_url),
            "inbox": IskaInbox(data_dir=str(self.data_dir), settle_seconds=self.settle_seconds),
            "rules": IskaRules(
                max_reject_fraction=self.max_reject_fraction, max_grid_distance_km=self.max_grid_distance_km
            ),
        }

    def drop(
        self,
        source: Path | str | bytes,
        name: str | None = None,
        folder: str = "",
        settled: bool = True,
        mtime: float | None = None,
    ) -> Path:
        """Put a file into the inbox (root or a kind folder), settled unless told otherwise."""
        target_dir = self.folders.inbox / folder
        target_dir.mkdir(parents=True, exist_ok=True)
        if isinstance(source, Path):
            target = target_dir / (name or source.name)
            shutil.copyfile(source, target)
        else:
            target = target_dir / name
            target.write_bytes(source.encode() if isinstance(source, str) else source)
        when = mtime if mtime is not None else (time.time() - SETTLED_AGE if settled else time.time())
        os.utime(target, (when, when))
        return target

    def tick(self) -> dg.SensorResult:
        """One sensor evaluation; registers the partitions it adds (as the daemon would)."""
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources=self.resources()
        )
        result = inbox_sensor(context)
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        self.cursor = result.cursor
        return result

    def run(self, partition_key: str, raise_on_error: bool = False) -> dg.ExecuteInProcessResult:
        asset = forecasts if partition_key.startswith("forecasts-") else subscriptions
        result = dg.materialize(
            [asset],
            partition_key=partition_key,
            instance=self.instance,
            resources=self.resources(),
            raise_on_error=raise_on_error,
        )
        self.runs.append(result)
        return result

    def process(self) -> list[dg.ExecuteInProcessResult]:
        """Tick once and run every requested run, in the order requested."""
        result = self.tick()
        return [self.run(request.partition_key) for request in result.run_requests]

    def ingest(
        self, source: Path | str | bytes, name: str | None = None, folder: str = "", **drop
    ) -> dg.ExecuteInProcessResult:
        self.drop(source, name=name, folder=folder, **drop)
        results = self.process()
        assert len(results) == 1, f"expected one run, got {len(results)}"
        return results[0]

    def scalar(self, sql: str, **params):
        with self.engine.connect() as connection:
            return connection.execute(sa.text(sql), params).scalar()

    def rows(self, sql: str, **params) -> list[sa.Row]:
        with self.engine.connect() as connection:
            return list(connection.execute(sa.text(sql), params))


def materialization_metadata(result: dg.ExecuteInProcessResult) -> dict:
    events = result.get_asset_materialization_events()
    assert events, "the run materialised nothing"
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, str]]:
    return (
        {
            e.asset_check_evaluation_data.check_name: (
                e.asset_check_evaluation_data.passed,
                e.asset_check_evaluation_data.severity.value,
            )
            for e in result.get_asset_check_evaluations()
            if hasattr(e, "asset_check_evaluation_data")
        }
        if hasattr(result, "get_asset_check_evaluations")
        else {ev.check_name: (ev.passed, ev.severity.value) for ev in result.get_asset_check_evaluations()}
    )
