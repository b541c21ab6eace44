"""`ingested_files`: what happened to every dropped file, written with the data it brought."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from iska_pipelines.lib.db.schema import ingested_files
from iska_pipelines.lib.db.timestamps import as_utc, utcnow
from iska_pipelines.lib.vocabulary import FileOutcome


@dataclass(frozen=True)
class FileRecord:
    partition_key: str
    kind: str
    name: str
    sha256: str
    rows_in: int = 0
    rows_applied: int = 0
    rows_refused: int = 0
    outcome: FileOutcome = FileOutcome.APPLIED
    error: str | None = None
    run_id: str | None = None
    refused_by_reason: str | None = None  # JSON {"reason": rows}


def record_file(connection: sa.Connection, record: FileRecord) -> None:
    now = utcnow()
    values = {**record.__dict__, "outcome": str(record.outcome), "updated_at": now}
    updated = connection.execute(
        ingested_files.update().where(ingested_files.c.partition_key == record.partition_key).values(**values)
    )
    if updated.rowcount == 0:
        connection.execute(ingested_files.insert().values(**values, created_at=now))


def file_outcome(connection: sa.Connection, partition_key: str) -> str | None:
    return connection.execute(
        sa.select(ingested_files.c.outcome).where(ingested_files.c.partition_key == partition_key)
    ).scalar_one_or_none()


def first_taken_at(connection: sa.Connection, partition_key: str) -> datetime | None:
    """When the file was first applied or refused (None: never), the moment its rows are judged
    against, so that running its partition again gives the same result."""
    found = connection.execute(
        sa.select(ingested_files.c.created_at).where(ingested_files.c.partition_key == partition_key)
    ).scalar_one_or_none()
    return as_utc(found) if found is not None else None


def applied_key_for_content(connection: sa.Connection, kind: str, sha256: str) -> str | None:
    """The partition that already applied this exact content, if any (duplicate detection)."""
    return connection.execute(
        sa.select(ingested_files.c.partition_key)
        .where(
            ingested_files.c.kind == kind,
            ingested_files.c.sha256 == sha256,
            ingested_files.c.outcome == str(FileOutcome.APPLIED),
        )
        .limit(1)
    ).scalar_one_or_none()


def record_set_aside(connection: sa.Connection, record: FileRecord) -> None:
    """A duplicate or an unknown name, kept so the day's figures and `iska files` show it; never
    over an applied or refused file's own record (the same file dropped again)."""
    exists = connection.execute(
        sa.select(ingested_files.c.outcome).where(ingested_files.c.partition_key == record.partition_key)
    ).scalar_one_or_none()
    if exists is None or exists == record.outcome:
        record_file(connection, record)


def file_row(connection: sa.Connection, partition_key: str) -> sa.Row[Any] | None:
    """The file's whole record (outcome, rows, error, refused_by_reason), if any."""
    return connection.execute(
        sa.select(ingested_files).where(ingested_files.c.partition_key == partition_key)
    ).one_or_none()
