"""Claims on the day's pending messages (SPEC §7): a sender claims a message before sending it.

A claim names its sender and expires. Only unclaimed rows, or rows whose claim has expired (the
sender died), can be claimed, so two live senders never send the same msgid and a crash never
strands a message: once its claim expires, whoever sends the day next takes it again.

PostgreSQL claims with `FOR UPDATE SKIP LOCKED`: concurrent claimers take disjoint rows without
waiting on each other. SQLite serialises writers (every transaction starts `BEGIN IMMEDIATE`, see
db/engine.py), so the same conditional UPDATE is enough there.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from iska_pipelines.lib.db.schema import TIMESTAMP
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.vocabulary import MessageKind, MessageStatus

PENDING = f"'{MessageStatus.PENDING}'"
# the daily job's messages only: replies (SPEC §13) are sent apart, by lib/consent/replies.py
FORECAST = f"kind = '{MessageKind.FORECAST}'"
CLAIMABLE = f"""send_date = :day AND status = {PENDING} AND {FORECAST}
                AND (claim_expires_at IS NULL OR claim_expires_at <= :now)"""
EVERYONE = "1 = 1"  # `in_region` of a deployment with one region: Regions.in_region("region", ...)


def _params(day: date, now: datetime) -> list[sa.BindParameter[Any]]:
    return [sa.bindparam("day", day, type_=sa.Date), sa.bindparam("now", now, type_=TIMESTAMP)]


def claim(
    connection: sa.Connection,
    day: date,
    owner: str,
    limit: int,
    claim_seconds: float,
    now: datetime | None = None,
    in_region: str = EVERYONE,
) -> list[sa.Row[Any]]:
    """Claim up to `limit` of day D's claimable pending messages for `owner`; returns their
    (msgid, msisdn, text). Call inside a transaction (engine.begin())."""
    now = now or utcnow()
    lock = " FOR UPDATE SKIP LOCKED" if connection.dialect.name == "postgresql" else ""
    return list(
        connection.execute(
            sa.text(f"""
        UPDATE sms_messages SET claimed_by = :owner, claim_expires_at = :expires
        WHERE msgid IN (SELECT msgid FROM sms_messages WHERE {CLAIMABLE} AND {in_region}
                        ORDER BY msgid LIMIT :limit{lock})
        RETURNING msgid, msisdn, text
    """).bindparams(
                *_params(day, now),
                sa.bindparam("expires", now + timedelta(seconds=claim_seconds), type_=TIMESTAMP),
                owner=owner[:64],
                limit=limit,
            )
        )
    )


def extend_claims(
    connection: sa.Connection, owner: str, claim_seconds: float, now: datetime | None = None
) -> int:
    """Push back the expiry of `owner`'s claims still pending: a long send keeps its messages."""
    now = now or utcnow()
    return connection.execute(
        sa.text(f"""
        UPDATE sms_messages SET claim_expires_at = :expires
        WHERE claimed_by = :owner AND status = {PENDING} AND claim_expires_at > :now
    """).bindparams(
            sa.bindparam("now", now, type_=TIMESTAMP),
            sa.bindparam("expires", now + timedelta(seconds=claim_seconds), type_=TIMESTAMP),
            owner=owner[:64],
        )
    ).rowcount


def skip_too_late(
    connection: sa.Connection, day: date, now: datetime | None = None, in_region: str = EVERYONE
) -> int:
    """Day D's claimable pending messages end `skipped_too_late` (they will never be sent)."""
    now = now or utcnow()
    return connection.execute(
        sa.text(f"""
        UPDATE sms_messages SET status = '{MessageStatus.SKIPPED_TOO_LATE}', claim_expires_at = NULL,
               updated_at = :now
        WHERE {CLAIMABLE} AND {in_region}
    """).bindparams(*_params(day, now))
    ).rowcount


def day_statuses(connection: sa.Connection, day: date, in_region: str = EVERYONE) -> dict[str, int]:
    """How many of day D's messages are in each status."""
    return {
        status: n
        for status, n in connection.execute(
            sa.text(
                f"SELECT status, count(*) FROM sms_messages WHERE send_date = :day AND {FORECAST} "
                f"AND {in_region} GROUP BY status"
            ).bindparams(sa.bindparam("day", day, type_=sa.Date))
        )
    }


def next_claim_expiry(connection: sa.Connection, day: date, in_region: str = EVERYONE) -> datetime | None:
    """When the first live claim on day D's pending messages runs out (None: no live claim)."""
    return connection.execute(
        sa.text(f"""
        SELECT min(claim_expires_at) FROM sms_messages
        WHERE send_date = :day AND status = {PENDING} AND {FORECAST} AND claim_expires_at IS NOT NULL
              AND {in_region}
    """)
        .columns(sa.column("expiry", TIMESTAMP))
        .bindparams(sa.bindparam("day", day, type_=sa.Date))
    ).scalar()


def pending_count(connection: sa.Connection, day: date, in_region: str = EVERYONE) -> int:
    return int(
        connection.execute(
            sa.text(
                f"SELECT count(*) FROM sms_messages WHERE send_date = :day AND status = {PENDING} "
                f"AND {FORECAST} AND {in_region}"
            ).bindparams(sa.bindparam("day", day, type_=sa.Date))
        ).scalar_one()
    )


def pending_by_region(connection: sa.Connection) -> dict[tuple[date, str | None], int]:
    """Every (day, stored region) that still has pending messages, with how many."""
    return {
        (day, region): n
        for day, region, n in connection.execute(
            sa.text(
                f"SELECT send_date, region, count(*) FROM sms_messages WHERE status = {PENDING} "
                f"AND {FORECAST} GROUP BY send_date, region"
            ).columns(sa.column("send_date", sa.Date), sa.column("region"), sa.column("n"))
        )
    }


def cutoff(day: date, latest_hour: int, timezone: str) -> datetime:
    """The moment day D's messages stop going out: `latest_hour` o'clock local time on D."""
    return datetime.combine(day, time(0), ZoneInfo(timezone)) + timedelta(hours=latest_hour)
