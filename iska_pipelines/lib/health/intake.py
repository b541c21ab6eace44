"""`file_intake` of a day and the last files: what became of every file taken that day.

A file belongs to the day it was first taken (`ingested_files.created_at`, local day), so
re-running it later does not move it to another day.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from iska_pipelines.lib.db.schema import ingested_files
from iska_pipelines.lib.db.timestamps import as_utc
from iska_pipelines.lib.health.days import bound_params, day_bounds
from iska_pipelines.lib.vocabulary import FileOutcome

F = FileOutcome


def day_figures(connection: sa.Connection, day: date, timezone: str) -> dict[str, int]:
    rows = connection.execute(
        sa.text("""
        SELECT outcome, rows_applied, rows_refused, refused_by_reason FROM ingested_files
        WHERE created_at >= :start AND created_at < :end
    """).bindparams(*bound_params(day, timezone))
    ).all()
    files: Counter[str] = Counter(row.outcome for row in rows)
    by_reason: Counter[str] = Counter()
    for row in rows:
        by_reason.update(json.loads(row.refused_by_reason) if row.refused_by_reason else {})
    applied = [row for row in rows if row.outcome == F.APPLIED]
    return {
        "files_applied": files[F.APPLIED],
        "files_refused": files[F.REJECTED],
        "duplicates": files[F.DUPLICATE],
        "unknown_names": files[F.UNKNOWN],
        "rows_applied": sum(row.rows_applied for row in applied),
        "rows_refused": sum(row.rows_refused for row in applied),
        **{f"refused_{reason}": n for reason, n in sorted(by_reason.items())},
    }


@dataclass(frozen=True)
class FileLine:
    """One file as `iska files` and the status page list it."""

    partition_key: str
    kind: str
    name: str
    outcome: str
    rows_in: int
    rows_applied: int
    rows_refused: int
    detail: str  # file_account: rows applied/refused, the refusal reason, or the file a duplicate matched
    taken_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "taken_at": self.taken_at.isoformat()}


def recent_files(
    connection: sa.Connection,
    limit: int = 10,
    refused_only: bool = False,
    day: date | None = None,
    timezone: str = "UTC",
) -> list[FileLine]:
    """The last files taken, newest first; `refused_only`: files refused as a whole or whose
    name routed nowhere; `day`: only those first taken that local day."""
    t = ingested_files.c
    query = sa.select(ingested_files).order_by(t.created_at.desc(), t.partition_key).limit(limit)
    if refused_only:
        query = query.where(t.outcome.in_([str(F.REJECTED), str(F.UNKNOWN)]))
    if day is not None:
        start, end = day_bounds(day, timezone)
        query = query.where(t.created_at >= start, t.created_at < end)
    return [
        FileLine(
            row.partition_key,
            row.kind,
            row.name,
            row.outcome,
            row.rows_in,
            row.rows_applied,
            row.rows_refused,
            file_account(row),
            _taken_at(row.created_at),
        )
        for row in connection.execute(query)
    ]


def _taken_at(value: datetime) -> datetime:
    taken = as_utc(value)
    assert taken is not None, "ingested_files.created_at is NOT NULL"
    return taken


def file_account(row: sa.Row[Any]) -> str:
    """An `ingested_files` row in words: rows applied and refused by reason, why the file was
    refused, or which earlier file a duplicate matched (task_status's `detail` too)."""
    if row.outcome == F.APPLIED:
        reasons = json.loads(row.refused_by_reason) if row.refused_by_reason else {}
        refused = ", ".join(f"{n} {reason}" for reason, n in reasons.items())
        return f"applied {row.rows_applied} of {row.rows_in} rows from {row.name}" + (
            f"; refused {row.rows_refused} ({refused})" if row.rows_refused else ""
        )
    if row.outcome == F.REJECTED:
        return f"refused: {(row.error or '').strip()}"
    return str(row.error or row.outcome).strip()
