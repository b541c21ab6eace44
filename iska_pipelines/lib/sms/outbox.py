"""The day's outbox (SPEC §7): who is eligible, their rendered texts, and the rows to send.

Planning is one transaction: classify every subscription for day D, render one text per grid
point and language (SPEC §14: the subscriber's language, else the region's default, else
ISKA_DEFAULT_LANGUAGE, else English; the GSM-7 fallback applied when it is on, so the stored
text is the text sent, with its encoding and segments), and insert one row per (subscription, D) with a fresh UUID msgid. The insert ignores
rows that already exist (ON CONFLICT DO NOTHING on the forecasts' unique (subscription_id, send_date)), so
re-running or backfilling a day, even two runs at once, never plans a second message.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TypeVar

import polars as pl
import sqlalchemy as sa

from iska_pipelines.lib.db.bulk import create_staging, load_staging
from iska_pipelines.lib.db.schema import FCAT, TIMESTAMP
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.regions.config import Region
from iska_pipelines.lib.sms.encoding import Measure
from iska_pipelines.lib.sms.templates import Catalog
from iska_pipelines.lib.vocabulary import MessageKind, MessageStatus, SkipReason, SubscriptionStatus

STAGE = "stage_sms_outbox"
STAGE_COLUMNS = {
    "msgid": "VARCHAR(36)",
    "subscription_id": "INTEGER",
    "msisdn": "VARCHAR(15)",
    "text": "VARCHAR(480)",
    "language": "VARCHAR(8)",
    "encoding": "VARCHAR(4)",
    "segments": "INTEGER",
}
ELIGIBLE = "eligible"
EVERYONE = "1 = 1"  # the region condition of a deployment with one region

# one reason per subscription, the first that applies, in this order; {in_region} picks the
# subscriptions of the region being planned (SPEC §15; everyone when there is one region)
CLASSIFIED = f"""
    SELECT s.id, s.msisdn, s.lid, s.language, f.fcat24, f.fcat48,
           CASE WHEN m.msgid IS NOT NULL THEN '{SkipReason.ALREADY_SENT}'
                WHEN s.status <> '{SubscriptionStatus.ACTIVE}' THEN '{SkipReason.CANCELLED}'
                WHEN s.last_billing_date IS NULL OR s.next_billing_date IS NULL
                     OR s.next_billing_date <= :day THEN '{SkipReason.UNPAID}'
                WHEN f.gid IS NULL THEN '{SkipReason.NO_GRID_POINT}'
                WHEN coalesce(f.issued_at, f.updated_at) <= :fresh_after THEN '{SkipReason.STALE_FORECAST}'
                ELSE '{ELIGIBLE}' END AS reason
    FROM subscriptions s
    LEFT JOIN forecasts f ON f.gid = s.lid AND f.is_active
    LEFT JOIN sms_messages m ON m.subscription_id = s.id AND m.send_date = :day
                              AND m.kind = '{MessageKind.FORECAST}'
    WHERE {{in_region}}
"""


@dataclass(frozen=True)
class OutboxPlan:
    """What planning day D did: rows written now, and why everyone else got none."""

    day: date
    eligible: int
    planned: int
    skipped: dict[SkipReason, int] = field(default_factory=dict)

    def summary(self) -> str:
        skips = ", ".join(f"{n} {r}" for r, n in self.skipped.items() if n) or "none skipped"
        return f"planned {self.planned} SMS for {self.day} of {self.eligible} eligible ({skips})"


TextClauseT = TypeVar("TextClauseT", sa.TextClause, sa.TextualSelect)


def _bind(statement: TextClauseT, day: date, fresh_after: datetime) -> TextClauseT:
    return statement.bindparams(
        sa.bindparam("day", day, type_=sa.Date), sa.bindparam("fresh_after", fresh_after, type_=TIMESTAMP)
    )


def plan_outbox(
    connection: sa.Connection,
    day: date,
    catalog: Catalog,
    forecast_max_age_hours: float,
    now: datetime | None = None,
    region: Region | None = None,
    in_region: str = EVERYONE,
) -> OutboxPlan:
    """Write day D's outbox rows of the subscriptions `in_region` selects (Regions.in_region on
    `s.region`), with `region`'s default language and code; call inside one transaction."""
    now = now or utcnow()
    classified = CLASSIFIED.format(in_region=in_region)
    fresh_after = now - timedelta(hours=forecast_max_age_hours)
    counts = Counter(
        {
            reason: n
            for reason, n in connection.execute(
                _bind(
                    sa.text(f"SELECT reason, count(*) FROM ({classified}) c GROUP BY reason"),
                    day,
                    fresh_after,
                )
            )
        }
    )
    rows = connection.execute(
        _bind(
            sa.text(
                f"SELECT id, msisdn, lid, language, fcat24, fcat48 FROM ({classified}) c "
                f"WHERE reason = '{ELIGIBLE}'"
            ).columns(
                sa.column("id"),
                sa.column("msisdn"),
                sa.column("lid"),
                sa.column("language"),
                sa.column("fcat24", FCAT),
                sa.column("fcat48", FCAT),
            ),
            day,
            fresh_after,
        )
    ).all()
    texts: dict[tuple[int, str | None], tuple[str, str, Measure]] = {}
    for row in rows:
        if (row.lid, row.language) not in texts:
            language = catalog.language(row.language, region_default=region.language if region else None)
            text, size = catalog.outgoing(language.render_forecast(day, row.fcat24, row.fcat48))
            texts[row.lid, row.language] = (text, language.code, size)
    chosen = [texts[row.lid, row.language] for row in rows]
    frame = pl.DataFrame(
        {
            "msgid": [str(uuid.uuid4()) for _ in rows],
            "subscription_id": [row.id for row in rows],
            "msisdn": [row.msisdn for row in rows],
            "text": [text for text, _, _ in chosen],
            "language": [code for _, code, _ in chosen],
            "encoding": [str(size.encoding) for _, _, size in chosen],
            "segments": [size.segments for _, _, size in chosen],
        },
        schema={
            "msgid": pl.String,
            "subscription_id": pl.Int64,
            "msisdn": pl.String,
            "text": pl.String,
            "language": pl.String,
            "encoding": pl.String,
            "segments": pl.Int64,
        },
    )
    planned = _insert_outbox(connection, frame, day, now, region.code if region else None)
    skipped = {reason: counts.get(str(reason), 0) for reason in SkipReason}
    # a concurrent run of the same day planned the difference first
    skipped[SkipReason.ALREADY_SENT] += len(rows) - planned
    return OutboxPlan(day=day, eligible=len(rows), planned=planned, skipped=skipped)


def _insert_outbox(
    connection: sa.Connection, frame: pl.DataFrame, day: date, now: datetime, region: str | None
) -> int:
    if frame.height == 0:
        return 0
    create_staging(connection, STAGE, STAGE_COLUMNS)
    load_staging(connection, STAGE, frame)
    result = connection.execute(
        sa.text(f"""
        INSERT INTO sms_messages (msgid, subscription_id, msisdn, send_date, text, language,
                                  encoding, segments, region, status, attempts, created_at, updated_at)
        SELECT s.msgid, s.subscription_id, s.msisdn, :day, s.text, s.language, s.encoding,
               s.segments, :region, '{MessageStatus.PENDING}', 0, :now, :now
        FROM {STAGE} s WHERE true
        ON CONFLICT (subscription_id, send_date) WHERE kind = '{MessageKind.FORECAST}' DO NOTHING
    """).bindparams(
            sa.bindparam("day", day, type_=sa.Date),
            sa.bindparam("now", now, type_=TIMESTAMP),
            sa.bindparam("region", region, type_=sa.String),
        )
    )
    return result.rowcount
