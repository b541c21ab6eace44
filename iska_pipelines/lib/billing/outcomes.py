"""What one answered charge changes: its `billing_attempts` row and the subscription, together.

Both are written in the caller's transaction, so after a crash either both exist or neither
does. The subscription is only changed if it is still in the state the charge was asked for
(same period, same decline count): a change made meanwhile (a reactivation, another run) wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from iska_pipelines.lib.billing.due import DueCharge
from iska_pipelines.lib.gateways.billing import ChargeOutcome, ChargeResult
from iska_pipelines.lib.storage.schema import billing_attempts, subscriptions
from iska_pipelines.lib.vocabulary import CancelReason, Plan, SubscriptionStatus

PLAN_PERIOD = {Plan.DAILY: timedelta(days=1), Plan.WEEKLY: timedelta(days=7)}


@dataclass(frozen=True)
class Answered:
    charge: DueCharge
    result: ChargeResult
    attempted_at: datetime


def record_answer(connection: sa.Connection, answered: Answered, today: date, max_tries: int,
                  run_id: str | None) -> bool:
    """Write the attempt and apply it; True when the subscription was cancelled for billing."""
    charge, result = answered.charge, answered.result
    connection.execute(sa.insert(billing_attempts).values(
        subscription_id=charge.subscription_id, msisdn=charge.msisdn, plan=str(charge.plan),
        period_start=charge.period_start, idempotency_key=charge.key,
        attempted_at=answered.attempted_at, outcome=str(result.outcome),
        http_status=result.http_status, response_excerpt=result.excerpt[:500] or None, run_id=run_id,
    ))
    unchanged = sa.update(subscriptions).where(
        subscriptions.c.id == charge.subscription_id,
        subscriptions.c.next_billing_date == charge.period_start,
        subscriptions.c.failed_billing_count == charge.failed_billing_count,
    )
    if result.outcome is ChargeOutcome.SUCCESS:
        connection.execute(unchanged.values(
            last_billing_date=today, next_billing_date=today + PLAN_PERIOD[charge.plan],
            failed_billing_count=0, updated_at=answered.attempted_at))
    elif result.outcome is ChargeOutcome.DECLINED:
        declines = charge.failed_billing_count + 1
        values: dict = {"failed_billing_count": declines, "updated_at": answered.attempted_at}
        if declines >= max_tries:
            values |= {"status": str(SubscriptionStatus.CANCELLED), "cancel_reason": str(CancelReason.BILLING),
                       "unsub_date": answered.attempted_at}
        changed = connection.execute(unchanged.where(
            subscriptions.c.status == str(SubscriptionStatus.ACTIVE)).values(**values))
        return declines >= max_tries and changed.rowcount == 1
    return False  # a transport or auth error changes nothing
