"""`billing_outcomes` of a day: the day's charges from `billing_attempts`, and who left.

Revenue is counted in plan units (one daily or one weekly plan charged), since prices are the
operator's business, not ISKA's. With several regions a day is one region's: `people` is
Regions.in_region on `s.region` (the charged subscription's region) and `timezone` the region's,
the local day its subscribers are billed on (SPEC §15). A charge asked asynchronously (SPEC §18)
counts on the day it was asked, under what it has come to so far: `pending` until its callback or
the poll settles it.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from iska_pipelines.lib.health.days import bound_params
from iska_pipelines.lib.sms.outbox import EVERYONE
from iska_pipelines.lib.vocabulary import CancelReason, ChargeOutcome, Plan, SubscriptionStatus

Outcome = ChargeOutcome


# the day's attempts, each with its subscription as `s` (for `people`)
ATTEMPTS = """FROM billing_attempts a LEFT JOIN subscriptions s ON s.id = a.subscription_id
        WHERE a.attempted_at >= :start AND a.attempted_at < :end"""


def day_figures(
    connection: sa.Connection, day: date, timezone: str, still_due: int | None = None, people: str = EVERYONE
) -> dict[str, int]:
    """`still_due`: subscriptions due now and not yet tried (today only; None for a past day)."""
    attempts = connection.execute(
        sa.text(
            f"SELECT a.outcome, a.plan, count(*) {ATTEMPTS} AND {people} GROUP BY a.outcome, a.plan"
        ).bindparams(*bound_params(day, timezone))
    ).all()
    tried = connection.execute(
        sa.text(f"SELECT count(DISTINCT a.subscription_id) {ATTEMPTS} AND {people}").bindparams(
            *bound_params(day, timezone)
        )
    ).scalar_one()
    left: dict[str, int] = dict(
        connection.execute(
            sa.text(f"""
        SELECT s.cancel_reason, count(*) FROM subscriptions s
        WHERE s.status = :cancelled AND s.unsub_date >= :start AND s.unsub_date < :end AND {people}
        GROUP BY s.cancel_reason
    """).bindparams(*bound_params(day, timezone), cancelled=str(SubscriptionStatus.CANCELLED))
        ).all()
    )

    def count(outcome: ChargeOutcome, plan: Plan | None = None) -> int:
        return sum(n for o, p, n in attempts if o == outcome and (plan is None or p == plan))

    return {
        "due": int(tried) + (still_due or 0),
        "attempts": sum(n for _, _, n in attempts),
        "charged": count(Outcome.SUCCESS),
        "declined": count(Outcome.DECLINED),
        "transport_errors": count(Outcome.ERROR),
        "auth_errors": count(Outcome.AUTH_ERROR),
        # asynchronous billing (SPEC §18): asked, the payer has not answered (no SMS, nobody
        # cancelled); given up after ISKA_BILLING_PENDING_HOURS (not a decline)
        "pending": count(Outcome.PENDING),
        "expired": count(Outcome.EXPIRED),
        "cancelled_for_billing": int(left.get(str(CancelReason.BILLING), 0)),
        "opt_outs": int(left.get(str(CancelReason.USER), 0)) + int(left.get(str(CancelReason.OPT_OUT), 0)),
        "cancelled_by_api": int(left.get(str(CancelReason.API), 0)),
        "revenue_daily_plans": count(Outcome.SUCCESS, Plan.DAILY),
        "revenue_weekly_plans": count(Outcome.SUCCESS, Plan.WEEKLY),
    }


def due_untried(connection: sa.Connection, day: date, timezone: str, people: str = EVERYONE) -> int:
    """Active subscriptions due on `day` that no charge has been tried for yet that day."""
    return int(
        connection.execute(
            sa.text(f"""
        SELECT count(*) FROM subscriptions s
        WHERE s.status = :active AND s.next_billing_date <= :day AND {people}
          AND NOT EXISTS (SELECT 1 FROM billing_attempts a WHERE a.subscription_id = s.id
                          AND a.attempted_at >= :start AND a.attempted_at < :end)
    """).bindparams(
                *bound_params(day, timezone),
                sa.bindparam("day", day, type_=sa.Date),
                active=str(SubscriptionStatus.ACTIVE),
            )
        ).scalar_one()
    )
