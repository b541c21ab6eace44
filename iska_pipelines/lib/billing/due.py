"""Who is due for a charge, and the charge that is asked for them.

Due: active, `next_billing_date` on or before today in the subscriber's region's time zone
(ISKA_TIMEZONE when there is one region, SPEC §15), and no declined attempt in
the last ISKA_BILLING_RETRY_MINUTES (a prepaid balance rarely recovers within the hour) in the
current subscription period: a rejoin is due at once (SPEC §5), whatever the earlier period's
declines. The period is told by `failed_billing_count` (a rejoin sets it to 0, a decline in the
period raises it), not by `sub_date`: a rejoin's ts can be older than the earlier period's
last decline.

A subscription with a `pending` charge (SPEC §18) is not due, whatever that charge is for: the
gateway may still take the money, and a second request could charge the farmer twice. The rest
after a decline counts from when the decline was known (`settled_at` of a charge answered late).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache, cached_property
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from iska_pipelines.lib.billing.keys import idempotency_key
from iska_pipelines.lib.billing.references import reference_for
from iska_pipelines.lib.db.schema import TIMESTAMP
from iska_pipelines.lib.vocabulary import PLAN_TO_CODE, ChargeOutcome, Plan, SubscriptionStatus

SENDABLE_MSISDN = re.compile(r"[0-9]{1,15}")


@dataclass(frozen=True)
class DueCharge:
    subscription_id: int
    msisdn: str
    plan: Plan | str  # a str only when the row holds something that is not a plan
    sub_date: datetime  # the start of the subscription period (a rejoin starts a new one)
    period_start: date  # the next_billing_date this charge pays for
    failed_billing_count: int
    joins: int = 1  # the subscription period's number (a reactivation raises it)

    @property
    def plan_code(self) -> int:
        return PLAN_TO_CODE[self.plan]

    @cached_property  # asked for the request and again for its attempt row
    def key(self) -> str:
        return idempotency_key(
            self.subscription_id, self.joins, self.sub_date, self.period_start, self.failed_billing_count
        )

    @cached_property
    def reference(self) -> str:
        """The X-Reference-Id of an asynchronous charge (SPEC §18): the key's, as a UUID."""
        return reference_for(self.key)

    def unsendable(self) -> str | None:
        """Why this charge cannot be asked for at all (bad data in the row), or None."""
        if not SENDABLE_MSISDN.fullmatch(self.msisdn):
            return f"msisdn {self.msisdn!r} of subscription {self.subscription_id} is not 1-15 digits 0-9"
        if self.plan not in PLAN_TO_CODE:
            return f"plan {self.plan!r} of subscription {self.subscription_id} is not daily or weekly"
        return None


def billing_day(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


@cache
def due_sql(in_region: str = "1 = 1") -> sa.TextualSelect:
    """The due subscriptions of one region (`in_region`, from Regions.in_region on `s.region`)."""
    return (
        sa.text(f"""
    SELECT s.id, s.msisdn, s.plan, s.sub_date, s.next_billing_date, s.failed_billing_count, s.joins
    FROM subscriptions s
    WHERE s.status = :active
      AND s.next_billing_date <= :today
      AND {in_region}
      AND NOT EXISTS (
          SELECT 1 FROM billing_attempts a
          WHERE a.subscription_id = s.id AND a.outcome = :declined
            AND COALESCE(a.settled_at, a.attempted_at) > :declined_since
            AND s.failed_billing_count > 0
      )
      AND NOT EXISTS (
          SELECT 1 FROM billing_attempts p WHERE p.subscription_id = s.id AND p.outcome = :pending
      )
    ORDER BY s.id
""")
        .bindparams(
            sa.bindparam("today", type_=sa.Date),
            sa.bindparam("declined_since", type_=TIMESTAMP),
            active=str(SubscriptionStatus.ACTIVE),
            declined=str(ChargeOutcome.DECLINED),
            pending=str(ChargeOutcome.PENDING),
        )
        .columns(sub_date=TIMESTAMP)
    )


def select_due(
    connection: sa.Connection, today: date, now: datetime, retry_minutes: int, in_region: str = "1 = 1"
) -> list[DueCharge]:
    """Due on `today` (the region's local day) among the subscriptions `in_region` selects."""
    rows = connection.execute(
        due_sql(in_region), {"today": today, "declined_since": now - timedelta(minutes=retry_minutes)}
    )
    return [charge_of(row) for row in rows]


def charge_of(row: sa.Row[Any]) -> DueCharge:
    """The charge a subscription row is in for now: the intent its next charge is asked for,
    or, for a charge asked earlier, the intent it must still be in for that answer to apply."""
    return DueCharge(
        row.id,
        row.msisdn,
        _plan(row.plan),
        row.sub_date,
        _as_date(row.next_billing_date),
        int(row.failed_billing_count),
        int(row.joins),
    )


def _plan(value: str) -> Plan | str:
    try:
        return Plan(value)
    except ValueError:
        return value  # refused when sent (DueCharge.unsendable), not here: others are still due


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
