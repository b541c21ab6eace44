"""`file_intake` of a day and the last files: what became of every file taken that day.

A file belongs to the day it was first taken (`ingested_files.created_at`, local day), so
re-running it later does not move it to another day.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from iska_pipelines.lib.health.billing import _bounds
from iska_pipelines.lib.storage.schema import ingested_files
from iska_pipelines.lib.storage.timestamps import as_utc
from iska_pipelines.lib.vocabulary import FileOutcome

F = FileOutcome


def day_figures(connection: sa.Connection, day: date, timezone: str) -> dict[str, int]:
    rows = connection.execute(sa.text("""
        SELECT outcome, rows_applied, rows_refused, refused_by_reason FROM ingested_files
        WHERE created_at >= :start AND created_at < :end
    """).bindparams(*_bounds(day, timezone))).all()
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
    detail: str  # the refusal reason, the file a duplicate matched, or the rows refused by reason
    taken_at: datetime

    def as_dict(self) -> dict:
        return {**self.__dict__, "taken_at": self.taken_at.isoformat()}


def recent_files(connection: sa.Connection, limit: int = 10, refused_only: bool = False) -> list[FileLine]:
    """The last files taken, newest first; `refused_only`: files refused as a whole or set aside."""
    t = ingested_files.c
    query = sa.select(ingested_files).order_by(t.created_at.desc(), t.partition_key).limit(limit)
    if refused_only:
        query = query.where(t.outcome.in_([str(F.REJECTED), str(F.UNKNOWN)]))
    return [FileLine(row.partition_key, row.kind, row.name, row.outcome, row.rows_in, row.rows_applied,
                     row.rows_refused, file_detail(row.outcome, row.error, row.refused_by_reason),
                     as_utc(row.created_at))
            for row in connection.execute(query)]


def file_detail(outcome: str, error: str | None, refused_by_reason: str | None) -> str:
    if outcome == F.APPLIED:
        reasons = json.loads(refused_by_reason) if refused_by_reason else {}
        return ", ".join(f"{n} {reason}" for reason, n in reasons.items()) or "every row applied"
    return (error or "").strip()
