"""What answered charges change: their `billing_attempts` rows and their subscriptions, together.

A batch of answers is written in the caller's transaction, so after a crash each attempt row
and its subscription change either both exist or neither does. A batch costs a fixed handful of
statements whatever its size: the attempts and the intended changes are appended in bulk (COPY
on PostgreSQL), then one UPDATE per kind of change (paid, declined, cancelled) joins the changes.
A subscription only changes if it is still in the state its charge was asked for (same
subscription period, same billing period, same decline count): a change made meanwhile (a
rejoin, another run) wins. A billing cancellation moves `last_event_at` to its own time (SPEC §5),
so re-running an older subscription file cannot reactivate the subscriber, and is written to
the consent log (SPEC §13).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa

from iska_pipelines.lib.billing.due import DueCharge
from iska_pipelines.lib.billing.gateway import ChargeResult
from iska_pipelines.lib.consent.chain import Consent, append
from iska_pipelines.lib.db.bulk import insert_rows, stage_rows
from iska_pipelines.lib.db.schema import TIMESTAMP
from iska_pipelines.lib.vocabulary import (
    CancelReason,
    ChargeOutcome,
    ConsentEvent,
    ConsentSource,
    Plan,
    SettledBy,
    SubscriptionStatus,
)

PLAN_PERIOD = {Plan.DAILY: timedelta(days=1), Plan.WEEKLY: timedelta(days=7)}
EXCERPT_CHARS = 500
STAGE = "stage_billing_changes"
ATTEMPT_COLUMNS = [
    "subscription_id",
    "msisdn",
    "plan",
    "period_start",
    "idempotency_key",
    "attempted_at",
    "outcome",
    "http_status",
    "response_excerpt",
    "run_id",
    "reference",
    "settled_at",
    "settled_by",
]


class Change(StrEnum):
    PAID_DAILY = "daily"
    PAID_WEEKLY = "weekly"
    DECLINED = "declined"
    CANCELLED = "cancelled"


_SAME_INTENT = """subscriptions.id = c.id AND subscriptions.joins = c.joins
    AND subscriptions.sub_date = c.sub_date AND subscriptions.next_billing_date = c.period
    AND subscriptions.failed_billing_count = c.count"""
ACTIVE = f"subscriptions.status = '{SubscriptionStatus.ACTIVE}'"
_NOW = sa.bindparam("now", type_=TIMESTAMP)
PAID = sa.text(f"""
    UPDATE subscriptions SET last_billing_date = :today, failed_billing_count = 0, updated_at = :now,
        next_billing_date = CASE c.change WHEN '{Change.PAID_DAILY}' THEN :next_daily ELSE :next_weekly END
    FROM {STAGE} c
    WHERE {_SAME_INTENT} AND c.change IN ('{Change.PAID_DAILY}', '{Change.PAID_WEEKLY}')
""").bindparams(_NOW, *(sa.bindparam(name, type_=sa.Date) for name in ("today", "next_daily", "next_weekly")))
DECLINED = sa.text(f"""
    UPDATE subscriptions SET failed_billing_count = subscriptions.failed_billing_count + 1, updated_at = :now
    FROM {STAGE} c
    WHERE {_SAME_INTENT} AND c.change = '{Change.DECLINED}' AND {ACTIVE}
""").bindparams(_NOW)
CANCELLED = sa.text(f"""
    UPDATE subscriptions SET failed_billing_count = subscriptions.failed_billing_count + 1, updated_at = :now,
        status = '{SubscriptionStatus.CANCELLED}', cancel_reason = '{CancelReason.BILLING}', unsub_date = :now,
        last_event_at = CASE WHEN subscriptions.last_event_at < :now THEN :now ELSE subscriptions.last_event_at END
    FROM {STAGE} c
    WHERE {_SAME_INTENT} AND c.change = '{Change.CANCELLED}' AND {ACTIVE}
    RETURNING subscriptions.msisdn, subscriptions.failed_billing_count
""").bindparams(_NOW)


@dataclass(frozen=True, slots=True)
class Answered:
    charge: DueCharge
    result: ChargeResult
    attempted_at: datetime


def record_answers(
    connection: sa.Connection, batch: list[Answered], today: date, max_tries: int, run_id: str | None
) -> int:
    """Write the attempts and apply them; returns how many subscriptions were cancelled."""
    if not batch:
        return 0
    insert_rows(connection, "billing_attempts", ATTEMPT_COLUMNS, [_attempt_row(a, run_id) for a in batch])
    return apply_changes(connection, batch, today, max_tries)


def apply_changes(connection: sa.Connection, batch: list[Answered], today: date, max_tries: int) -> int:
    """What the answers change in their subscriptions (their attempt rows are the caller's);
    returns how many subscriptions were cancelled. A charge settled later (SPEC §18) changes
    its subscription through here too, with the day it was settled as `today`."""
    changes = [
        (
            a.charge.subscription_id,
            a.charge.joins,
            a.charge.sub_date,
            a.charge.period_start,
            a.charge.failed_billing_count,
            change,
        )
        for a in batch
        if (change := _change(a, max_tries)) is not None
    ]
    if not changes:
        return 0  # transport and auth errors change nothing but their attempt row
    timestamp = "TIMESTAMPTZ" if connection.dialect.name == "postgresql" else "TIMESTAMP"
    stage_rows(
        connection,
        STAGE,
        {
            "id": "INTEGER",
            "joins": "INTEGER",
            "sub_date": timestamp,
            "period": "DATE",
            "count": "INTEGER",
            "change": "VARCHAR(10)",
        },
        changes,
    )
    kinds = {change[-1] for change in changes}
    now = max(a.attempted_at for a in batch)
    if kinds & {Change.PAID_DAILY, Change.PAID_WEEKLY}:
        connection.execute(
            PAID,
            {
                "now": now,
                "today": today,
                "next_daily": today + PLAN_PERIOD[Plan.DAILY],
                "next_weekly": today + PLAN_PERIOD[Plan.WEEKLY],
            },
        )
    if Change.DECLINED in kinds:
        connection.execute(DECLINED, {"now": now})
    if Change.CANCELLED in kinds:
        cancelled = connection.execute(CANCELLED, {"now": now}).all()
        append(
            connection,
            [
                Consent(
                    msisdn, ConsentEvent.CANCELLED, ConsentSource.BILLING, f"{declines} declined charges", now
                )
                for msisdn, declines in sorted(cancelled)
            ],
        )
        return len(cancelled)
    return 0


def _change(answered: Answered, max_tries: int) -> Change | None:
    outcome = answered.result.outcome
    if outcome is ChargeOutcome.SUCCESS:
        return Change.PAID_DAILY if answered.charge.plan == Plan.DAILY else Change.PAID_WEEKLY
    if outcome is ChargeOutcome.DECLINED:
        return Change.CANCELLED if answered.charge.failed_billing_count + 1 >= max_tries else Change.DECLINED
    return None


def _attempt_row(answered: Answered, run_id: str | None) -> tuple[object, ...]:
    charge, result = answered.charge, answered.result
    settled = result.reference is not None and result.outcome in (
        ChargeOutcome.SUCCESS,
        ChargeOutcome.DECLINED,
    )
    return (
        charge.subscription_id,
        charge.msisdn,
        str(charge.plan),
        charge.period_start,
        charge.key,
        answered.attempted_at,
        str(result.outcome),
        result.http_status,
        result.excerpt[:EXCERPT_CHARS] or None,
        run_id,
        result.reference,
        answered.attempted_at if settled else None,  # a 409's lookup answered it at once
        str(SettledBy.REQUEST) if settled else None,
    )
