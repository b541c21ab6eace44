"""What answered charges change: their `billing_attempts` rows and their subscriptions, together.

A batch of answers is written in the caller's transaction, so after a crash each attempt row
and its subscription change either both exist or neither does. Rows are written with
executemany (one round trip per kind of change, not per subscriber) so recording keeps up with
the gateway. A subscription only changes if it is still in the state its charge was asked for
(same subscription period, same billing period, same decline count): a change made meanwhile (a
rejoin, another run) wins. A billing cancellation moves `last_event_at` to its own time (SPEC §5),
so re-running an older subscription file cannot reactivate the subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from iska_pipelines.lib.billing.due import DueCharge
from iska_pipelines.lib.gateways.billing import ChargeResult
from iska_pipelines.lib.storage.schema import TIMESTAMP, billing_attempts, subscriptions
from iska_pipelines.lib.vocabulary import CancelReason, ChargeOutcome, Plan, SubscriptionStatus

PLAN_PERIOD: dict[str, timedelta] = {Plan.DAILY: timedelta(days=1), Plan.WEEKLY: timedelta(days=7)}
ACTIVE = str(SubscriptionStatus.ACTIVE)


@dataclass(frozen=True)
class Answered:
    charge: DueCharge
    result: ChargeResult
    attempted_at: datetime

    def unchanged_since(self) -> dict[str, Any]:
        return {"b_id": self.charge.subscription_id, "b_joins": self.charge.joins, "b_sub": self.charge.sub_date,
                "b_period": self.charge.period_start, "b_count": self.charge.failed_billing_count,
                "b_now": self.attempted_at}


_NOW = sa.bindparam("b_now", type_=TIMESTAMP)
_SAME_INTENT = sa.and_(
    subscriptions.c.id == sa.bindparam("b_id"),
    subscriptions.c.joins == sa.bindparam("b_joins"),
    subscriptions.c.sub_date == sa.bindparam("b_sub"),
    subscriptions.c.next_billing_date == sa.bindparam("b_period"),
    subscriptions.c.failed_billing_count == sa.bindparam("b_count"),
)
PAID = sa.update(subscriptions).where(_SAME_INTENT).values(
    last_billing_date=sa.bindparam("b_today"), next_billing_date=sa.bindparam("b_next"),
    failed_billing_count=0, updated_at=sa.bindparam("b_now"))
DECLINED = sa.update(subscriptions).where(_SAME_INTENT, subscriptions.c.status == ACTIVE).values(
    failed_billing_count=subscriptions.c.failed_billing_count + 1, updated_at=sa.bindparam("b_now"))
CANCELLED = DECLINED.values(
    status=str(SubscriptionStatus.CANCELLED), cancel_reason=str(CancelReason.BILLING),
    unsub_date=sa.bindparam("b_now"),
    last_event_at=sa.case((subscriptions.c.last_event_at < _NOW, _NOW), else_=subscriptions.c.last_event_at))


def record_answers(connection: sa.Connection, batch: list[Answered], today: date, max_tries: int,
                   run_id: str | None) -> int:
    """Write the attempts and apply them; returns how many subscriptions were cancelled."""
    if not batch:
        return 0
    connection.execute(sa.insert(billing_attempts), [_attempt_row(a, run_id) for a in batch])
    paid = [a.unchanged_since() | {"b_today": today, "b_next": today + PLAN_PERIOD[a.charge.plan]}
            for a in batch if a.result.outcome is ChargeOutcome.SUCCESS]
    if paid:
        connection.execute(PAID, paid)
    declined = [a for a in batch if a.result.outcome is ChargeOutcome.DECLINED]
    still_trying = [a.unchanged_since() for a in declined if a.charge.failed_billing_count + 1 < max_tries]
    if still_trying:
        connection.execute(DECLINED, still_trying)
    cancelled = 0
    for answered in (a for a in declined if a.charge.failed_billing_count + 1 >= max_tries):
        cancelled += connection.execute(CANCELLED, answered.unchanged_since()).rowcount
    return cancelled  # transport and auth errors change nothing but their attempt row


def _attempt_row(answered: Answered, run_id: str | None) -> dict[str, Any]:
    charge, result = answered.charge, answered.result
    return {"subscription_id": charge.subscription_id, "msisdn": charge.msisdn, "plan": str(charge.plan),
            "period_start": charge.period_start, "idempotency_key": charge.key,
            "attempted_at": answered.attempted_at, "outcome": str(result.outcome),
            "http_status": result.http_status, "response_excerpt": result.excerpt[:500] or None,
            "run_id": run_id}
