"""Who is due for a charge, and the charge that is asked for them.

Due: active, `next_billing_date` on or before today in ISKA_TIMEZONE, and no declined attempt in
the last ISKA_BILLING_RETRY_MINUTES (a prepaid balance rarely recovers within the hour).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from iska_pipelines.lib.billing.keys import idempotency_key
from iska_pipelines.lib.storage.schema import TIMESTAMP
from iska_pipelines.lib.vocabulary import ChargeOutcome
from iska_pipelines.lib.vocabulary import PLAN_TO_CODE, Plan, SubscriptionStatus


@dataclass(frozen=True)
class DueCharge:
    subscription_id: int
    msisdn: str
    plan: Plan
    period_start: date  # the next_billing_date this charge pays for
    failed_billing_count: int

    @property
    def plan_code(self) -> int:
        return PLAN_TO_CODE[self.plan]

    @property
    def key(self) -> str:
        return idempotency_key(self.subscription_id, self.msisdn, self.period_start,
                               self.failed_billing_count)


def billing_day(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


DUE_SQL = sa.text("""
    SELECT s.id, s.msisdn, s.plan, s.next_billing_date, s.failed_billing_count
    FROM subscriptions s
    WHERE s.status = :active
      AND s.next_billing_date <= :today
      AND NOT EXISTS (
          SELECT 1 FROM billing_attempts a
          WHERE a.subscription_id = s.id AND a.outcome = :declined AND a.attempted_at > :declined_since
      )
    ORDER BY s.id
""").bindparams(sa.bindparam("today", type_=sa.Date), sa.bindparam("declined_since", type_=TIMESTAMP),
                 active=str(SubscriptionStatus.ACTIVE), declined=str(ChargeOutcome.DECLINED))


def select_due(connection: sa.Connection, today: date, now: datetime, retry_minutes: int) -> list[DueCharge]:
    rows = connection.execute(DUE_SQL, {
        "today": today, "declined_since": now - timedelta(minutes=retry_minutes)})
    return [DueCharge(row.id, row.msisdn, Plan(row.plan), _as_date(row.next_billing_date),
                      int(row.failed_billing_count)) for row in rows]


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
