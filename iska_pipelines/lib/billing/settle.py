"""Settling a `pending` charge (SPEC §18): once, by whichever comes first of its callback and the
poll, and never again.

The attempt row is changed from `pending` to its end (`success`, `declined` or `expired`) by one
conditional UPDATE: of a callback and a poll racing for the same charge, one wins and the other
finds nothing pending (PostgreSQL re-checks the condition after the winner commits; SQLite has
one writer), so a late or repeated callback changes nothing. In the same transaction the
subscription changes as if the charge had been answered there and then (lib/billing/outcomes.py:
paid on the day it was settled, in the subscriber's region; a decline counts toward the limit and
starts the rest), but only while the subscription is still in the intent the charge was asked for
(its Idempotency-Key): a rejoin or a settled earlier charge meanwhile wins. `expired` changes no
subscription: it is not a decline and cancels nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa

from iska_pipelines.lib.billing.due import billing_day, charge_of
from iska_pipelines.lib.billing.gateway import ChargeResult
from iska_pipelines.lib.billing.outcomes import EXCERPT_CHARS, Answered, apply_changes
from iska_pipelines.lib.db.schema import TIMESTAMP, billing_attempts, subscriptions
from iska_pipelines.lib.regions.config import Regions
from iska_pipelines.lib.vocabulary import ChargeOutcome, SettledBy

ENDS = (ChargeOutcome.SUCCESS, ChargeOutcome.DECLINED, ChargeOutcome.EXPIRED)
SETTLE = sa.text("""
    UPDATE billing_attempts SET outcome = :outcome, settled_at = :now, settled_by = :by,
        response_excerpt = :excerpt
    WHERE reference = :reference AND outcome = :pending
    RETURNING id, subscription_id, idempotency_key
""").bindparams(sa.bindparam("now", type_=TIMESTAMP), pending=str(ChargeOutcome.PENDING))


class SettleOutcome(StrEnum):
    SETTLED = "settled"
    ALREADY_SETTLED = "already_settled"  # nothing pending under the reference: changes nothing
    UNKNOWN_REFERENCE = "unknown_reference"  # no attempt ever had it


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a callback or the poll learnt about the charge asked under `reference`."""

    reference: str
    outcome: ChargeOutcome  # success, declined or expired
    excerpt: str  # the gateway's words (or why ISKA gave up), kept on the attempt
    by: SettledBy

    def __post_init__(self) -> None:
        if self.outcome not in ENDS:
            raise ValueError(f"a charge settles as success, declined or expired, not {self.outcome}")


@dataclass(frozen=True, slots=True)
class Settled:
    reference: str
    outcome: SettleOutcome
    charge: str | None  # the attempt's outcome now (None: unknown reference)
    cancelled: bool = False  # the decline reached MAX_BILLING_TRY_LIMIT


@dataclass(frozen=True)
class SettleRules:
    max_tries: int  # MAX_BILLING_TRY_LIMIT
    regions: Regions  # whose local day a success is paid on


def settle(connection: sa.Connection, settlement: Settlement, now: datetime, rules: SettleRules) -> Settled:
    """Settle the pending attempt under the reference, in the caller's transaction."""
    won = connection.execute(
        SETTLE,
        {
            "outcome": str(settlement.outcome),
            "now": now,
            "by": str(settlement.by),
            "excerpt": settlement.excerpt[:EXCERPT_CHARS] or None,
            "reference": settlement.reference,
        },
    ).first()
    if won is None:
        return _not_pending(connection, settlement.reference)
    cancelled = 0
    if settlement.outcome is not ChargeOutcome.EXPIRED:
        cancelled = _apply(connection, won, settlement, now, rules)
    return Settled(settlement.reference, SettleOutcome.SETTLED, str(settlement.outcome), cancelled > 0)


def _apply(
    connection: sa.Connection,
    won: sa.Row[tuple[int, int, str]],
    settlement: Settlement,
    now: datetime,
    rules: SettleRules,
) -> int:
    row = connection.execute(
        sa.select(subscriptions).where(subscriptions.c.id == won.subscription_id)
    ).first()
    if row is None or row.next_billing_date is None:
        return 0
    charge = charge_of(row)
    if charge.key != won.idempotency_key:
        return 0  # the subscription has moved on to another intent: that one wins
    today = billing_day(now, rules.regions.get(row.region).timezone)
    result = ChargeResult(settlement.outcome, None, settlement.excerpt, 1, settlement.reference)
    return apply_changes(connection, [Answered(charge, result, now)], today, rules.max_tries)


def _not_pending(connection: sa.Connection, reference: str) -> Settled:
    last = connection.execute(
        sa.select(billing_attempts.c.outcome)
        .where(billing_attempts.c.reference == reference)
        .order_by(billing_attempts.c.id.desc())
        .limit(1)
    ).scalar()
    if last is None:
        return Settled(reference, SettleOutcome.UNKNOWN_REFERENCE, None)
    return Settled(reference, SettleOutcome.ALREADY_SETTLED, str(last))
