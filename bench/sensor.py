"""The inbox sensor's tick with new files waiting, beside a long history in archive/."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from bench import pg
from bench.measure import Sample
from bench.result import Line
from bench.sizes import Sizes
from iska_pipelines.defs.inbox.partitions import subscription_files
from iska_pipelines.defs.inbox.sensors import inbox_sensor
from iska_pipelines.defs.resources import IskaDatabase, IskaInbox
from iska_pipelines.lib.db.engine import engine_for
from iska_pipelines.lib.inbox.folders import InboxFolders, partition_key, sha256_of
from iska_pipelines.lib.vocabulary import FileKind

SETTLED = time.time() - 3600
ROW = "ts,msisdn,service_id,lat,lon\n2026-01-01 06:00:00,{msisdn},11,5.6,-0.2\n"


def _history(folders: InboxFolders, url: str, instance: dg.DagsterInstance, count: int) -> None:
    """`count` applied additions files: archived, recorded, and each a partition of the asset."""
    folder = folders.archive / FileKind.ADDITIONS
    keys, records = [], []
    for i in range(count):
        path = folder / f"2025-{i:06d}_additions.csv"
        path.write_text(ROW.format(msisdn=233_400_000_000 + i))
        sha = sha256_of(path)
        key = partition_key(FileKind.ADDITIONS, path.name, sha)
        keys.append(key)
        records.append({"k": key, "n": path.name, "s": sha})
    if not keys:
        return
    instance.add_dynamic_partitions(subscription_files.name, keys)
    with engine_for(url).begin() as connection:
        connection.execute(
            sa.text("""
            INSERT INTO ingested_files (partition_key, kind, name, sha256, rows_in, rows_applied,
                                        rows_refused, outcome, created_at, updated_at)
            VALUES (:k, 'additions', :n, :s, 1, 1, 0, 'applied', now(), now())"""),
            records,
        )


def _new_files(folders: InboxFolders, count: int) -> None:
    for i in range(count):
        path = folders.inbox / FileKind.ADDITIONS / f"2026-{i:04d}_additions.csv"
        path.write_text(ROW.format(msisdn=233_500_000_000 + i))
        os.utime(path, (SETTLED, SETTLED))


def _tick_seconds(folders: InboxFolders, url: str, instance: dg.DagsterInstance, expected: int) -> float:
    resources = {"database": IskaDatabase(url=url), "inbox": IskaInbox(data_dir=str(folders.root))}
    context = dg.build_sensor_context(instance=instance, cursor=None, resources=resources)
    started = time.perf_counter()
    result = inbox_sensor(context)
    seconds = time.perf_counter() - started
    if len(result.run_requests) != expected:
        raise RuntimeError(f"the sensor asked for {len(result.run_requests)} runs, expected {expected}")
    return seconds


def measure(sizes: Sizes, work: Path) -> list[Line]:
    samples = {}
    for archived in (0, sizes.archived):
        folders = InboxFolders(work / f"sensor-{archived}")
        folders.ensure()
        sample = Sample()
        (work / f"sensor-instance-{archived}").mkdir(parents=True, exist_ok=True)
        with (
            pg.scratch_database() as url,
            dg.instance_for_test(temp_dir=str(work / f"sensor-instance-{archived}")) as instance,
        ):
            engine_for(url)
            _history(folders, url, instance, archived)
            _new_files(folders, sizes.new_files)
            _tick_seconds(folders, url, instance, sizes.new_files)  # warm: imports, connections
            for _ in range(max(5, sizes.repeats)):
                sample.add(1000 * _tick_seconds(folders, url, instance, sizes.new_files))
        samples[archived] = sample
        shutil.rmtree(folders.root, ignore_errors=True)
        shutil.rmtree(work / f"sensor-instance-{archived}", ignore_errors=True)
    with_history, without = samples[sizes.archived], samples[0]
    return [
        Line(
            f"Inbox sensor tick: {sizes.new_files} new files, {sizes.archived:,} applied files in archive/ "
            "(and as partitions and ingested_files rows)",
            f"{sizes.new_files} new",
            with_history,
            "ms",
            "the same tick with 0 archived",
            without,
            f"{with_history.median / without.median:.2f}×",
            "O(new files)",
            with_history.median <= 1.5 * without.median + 5,
        )
    ]
