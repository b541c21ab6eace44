"""Applying a subscription file to the `subscriptions` table with set-based SQL (SPEC §5).

The msisdns the file names are staged, their current rows read in one query, the events applied
as frame arithmetic (lib/subscriptions/events.py), and the result written back with one INSERT for new
subscribers and one UPDATE ... FROM for the rest. Files never interleave: a transaction-level
lock (PostgreSQL advisory lock; SQLite's write lock) is held from the read to the commit.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import sqlalchemy as sa

from iska_pipelines.lib.consent.chain import Consent, append
from iska_pipelines.lib.db.bulk import create_staging, load_staging, read_frame
from iska_pipelines.lib.db.locks import lock_subscriptions
from iska_pipelines.lib.db.schema import TIMESTAMP
from iska_pipelines.lib.db.timestamps import as_utc, utcnow
from iska_pipelines.lib.inbox.reading import ROW
from iska_pipelines.lib.subscriptions.events import (
    OUTCOME,
    STATE_COLUMNS,
    EventsApplied,
    Outcome,
    apply_events,
)
from iska_pipelines.lib.vocabulary import ConsentEvent, ConsentSource, FileKind

STAGE_MSISDNS = "stage_msisdns"
STAGE_STATE = "stage_subscriptions"
WRITTEN = [c for c in STATE_COLUMNS if c != "id"]
STAGE_TYPES = {
    "id": "BIGINT",
    "msisdn": "VARCHAR(15)",
    "plan": "VARCHAR(8)",
    "status": "VARCHAR(10)",
    "cancel_reason": "VARCHAR(10)",
    "lat": "DOUBLE PRECISION",
    "lon": "DOUBLE PRECISION",
    "lid": "BIGINT",
    "sub_date": "TIMESTAMP WITH TIME ZONE",
    "unsub_date": "TIMESTAMP WITH TIME ZONE",
    "next_billing_date": "DATE",
    "failed_billing_count": "INTEGER",
    "joins": "INTEGER",
    "last_event_at": "TIMESTAMP WITH TIME ZONE",
    "language": "VARCHAR(8)",
    "region": "VARCHAR(16)",
}


def current_state(
    connection: sa.Connection, msisdns: pl.Series, created_before: datetime | None = None
) -> pl.DataFrame:
    """The stored rows of `msisdns`; with `created_before`, only subscriptions that existed then."""
    create_staging(connection, STAGE_MSISDNS, {"msisdn": "VARCHAR(15) PRIMARY KEY"})
    load_staging(connection, STAGE_MSISDNS, msisdns.unique().to_frame("msisdn"))
    columns = ", ".join(f"s.{c}" for c in STATE_COLUMNS)
    state = read_frame(
        connection,
        f"SELECT {columns}, s.created_at FROM subscriptions s JOIN {STAGE_MSISDNS} m ON m.msisdn = s.msisdn",
        STATE_COLUMNS | {"created_at": STATE_COLUMNS["sub_date"]},
    )
    if created_before is not None:
        state = state.filter(pl.col("created_at") < as_utc(created_before))
    return state.drop("created_at")


def apply_file_events(
    connection: sa.Connection,
    events: pl.DataFrame,
    kind: FileKind,
    today: date,
    rerun_of: datetime | None = None,
    source: ConsentSource = ConsentSource.FILE,
    detail: str = "",
) -> EventsApplied:
    """`rerun_of`: when the file was first taken, if it was applied before. A re-run gives the
    first run's result: a cancellation or update for a subscriber created since (at or after that
    moment) stays `unknown_msisdn` instead of applying now. Refusing more in a re-run can never
    change a table, so an instant shared with the first taking counts as "since".

    Every addition that gives consent (new or reactivated) and every cancellation is appended to
    the consent log with `source` and `detail` (the file's name and hash, SPEC §13)."""
    lock_subscriptions(connection)
    known_before = rerun_of if kind is not FileKind.ADDITIONS else None
    state = current_state(connection, events["msisdn"], known_before)
    result = apply_events(state, events, kind, today, rerun_of is not None)
    write_state(connection, result.state.filter(pl.col("touched")).drop("touched"))
    append(connection, consent_changes(events, result, source, detail))
    return result


CONSENT_OUTCOMES = {
    Outcome.NEW: ConsentEvent.ADDED,
    Outcome.REACTIVATED: ConsentEvent.ADDED,
    Outcome.CANCELLED: ConsentEvent.CANCELLED,
}


def consent_changes(
    events: pl.DataFrame, result: EventsApplied, source: ConsentSource, detail: str
) -> list[Consent]:
    """The applied events that changed consent, in the order they took effect."""
    changed = (
        result.outcomes.filter(pl.col(OUTCOME).is_in(list(CONSENT_OUTCOMES)))
        .join(events.select(ROW, "msisdn", "ts"), on=ROW)
        .sort("ts", "msisdn", ROW)
    )
    return [
        Consent(row["msisdn"], CONSENT_OUTCOMES[row[OUTCOME]], source, detail, row["ts"])
        for row in changed.iter_rows(named=True)
    ]


def write_state(connection: sa.Connection, rows: pl.DataFrame) -> None:
    if rows.height == 0:
        return
    create_staging(connection, STAGE_STATE, STAGE_TYPES)
    load_staging(connection, STAGE_STATE, rows.select(list(STAGE_TYPES)))
    now = sa.bindparam("now", utcnow(), type_=TIMESTAMP)
    assignments = ", ".join(f"{c} = s.{c}" for c in WRITTEN if c != "msisdn")
    connection.execute(
        sa.text(f"""
        UPDATE subscriptions SET {assignments}, updated_at = :now
        FROM {STAGE_STATE} s WHERE subscriptions.id = s.id
    """).bindparams(now)
    )
    columns = ", ".join(WRITTEN)
    connection.execute(
        sa.text(f"""
        INSERT INTO subscriptions ({columns}, created_at, updated_at)
        SELECT {", ".join("s." + c for c in WRITTEN)}, :now, :now
        FROM {STAGE_STATE} s WHERE s.id IS NULL ORDER BY s.msisdn
    """).bindparams(now)
    )
