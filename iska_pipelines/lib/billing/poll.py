"""The poll of pending charges (SPEC §18): MoMo sends each result once, by callback, and a lost
callback is never sent again, so ISKA asks.

A charge pending for more than ISKA_BILLING_POLL_MINUTES is looked up (`GET …/requesttopay/{ref}`),
and again every ISKA_BILLING_POLL_MINUTES while it stays pending (`polled_at` spaces the
lookups, so a crowd of unanswered charges does not become a lookup per charge per minute).
SUCCESSFUL and FAILED settle it (lib/billing/settle.py); still PENDING, or no usable answer,
leaves it pending; once it is older than ISKA_BILLING_PENDING_HOURS it ends `expired` (after
one last lookup, so a charge the payer approved is never given up on while the gateway can say
so). An expired charge is not a decline: the subscription stays due, and its next billing run
asks under the same reference, which the gateway answers 409, then with the charge's status.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa

from iska_pipelines.lib.billing.momo import Lookup, MomoClient
from iska_pipelines.lib.billing.settle import Settlement, SettleOutcome, SettleRules, settle
from iska_pipelines.lib.db.schema import TIMESTAMP
from iska_pipelines.lib.db.timestamps import as_utc
from iska_pipelines.lib.http.fanout import fan_out
from iska_pipelines.lib.vocabulary import ChargeOutcome, SettledBy

T = TypeVar("T")
BATCH = 1000  # lookups per tick at most; the oldest first, the rest on the next tick
SETTLED = (ChargeOutcome.SUCCESS, ChargeOutcome.DECLINED)
DUE_FOR_LOOKUP = (
    sa.text("""
    SELECT reference, attempted_at FROM billing_attempts
    WHERE outcome = :pending AND reference IS NOT NULL AND COALESCE(polled_at, attempted_at) <= :asked_before
    ORDER BY attempted_at, id
    LIMIT :limit
""")
    .bindparams(sa.bindparam("asked_before", type_=TIMESTAMP), pending=str(ChargeOutcome.PENDING))
    .columns(reference=sa.String, attempted_at=TIMESTAMP)
)
POLLED = sa.text("""
    UPDATE billing_attempts SET polled_at = :now WHERE reference = :reference AND outcome = :pending
""").bindparams(sa.bindparam("now", type_=TIMESTAMP), pending=str(ChargeOutcome.PENDING))


@dataclass(frozen=True)
class PollRules:
    poll_minutes: int  # ISKA_BILLING_POLL_MINUTES
    pending_hours: int  # ISKA_BILLING_PENDING_HOURS
    settle: SettleRules
    concurrency: int = 8
    batch: int = BATCH
    # no lookup is started after this long: a sensor tick must end well within a minute
    budget_seconds: float = 30.0


@dataclass
class PollSummary:
    looked_up: int = 0
    ended: Counter[str] = field(default_factory=Counter)  # success, declined, expired
    still_pending: int = 0
    unanswered: int = 0  # lookups with no usable answer (they stay pending)
    cancelled: int = 0
    auth_error: str | None = None

    def summary(self) -> str:
        return (
            f"looked up {self.looked_up} pending charges: {self.ended['success']} paid, "
            f"{self.ended['declined']} declined ({self.cancelled} cancelled at the limit), "
            f"{self.ended['expired']} expired, {self.still_pending} still pending"
            + (f" ({self.unanswered} lookups got no usable answer)" if self.unanswered else "")
        )


@dataclass(frozen=True, slots=True)
class _Looked:
    reference: str
    attempted_at: datetime
    found: Lookup


def poll_pending(
    engine: sa.Engine, client: MomoClient, rules: PollRules, now: Callable[[], datetime]
) -> PollSummary:
    """Look up the charges pending long enough, settle what the gateway says, expire the old."""
    started = now()
    with engine.connect() as connection:
        due = connection.execute(
            DUE_FOR_LOOKUP,
            {"asked_before": started - timedelta(minutes=rules.poll_minutes), "limit": rules.batch},
        ).all()
    summary = PollSummary()
    expire_before = started - timedelta(hours=rules.pending_hours)
    items = _until(
        time.monotonic() + rules.budget_seconds, [(r.reference, as_utc(r.attempted_at)) for r in due]
    )
    for batch in _lookups(items, client, rules.concurrency, len(due)):
        with engine.begin() as connection:
            for looked in batch:
                _record(connection, looked, expire_before, now(), rules, summary)
    return summary


def _until(deadline: float, items: list[T]) -> Iterator[T]:
    """The items, drawn lazily, until the deadline (monotonic seconds) has passed."""
    for item in items:
        if time.monotonic() > deadline:
            return
        yield item


def _lookups(
    due: Iterable[tuple[str, datetime | None]], client: MomoClient, concurrency: int, count: int
) -> Iterator[list[_Looked]]:
    def look(item: tuple[str, datetime | None]) -> _Looked:
        reference, attempted_at = item
        assert attempted_at is not None, "billing_attempts.attempted_at is NOT NULL"
        return _Looked(reference, attempted_at, client.lookup(reference))

    return fan_out(
        due,
        look,
        concurrency=min(concurrency, max(1, count)),
        stop=lambda looked: looked.found.outcome is ChargeOutcome.AUTH_ERROR,
    )


def _record(
    connection: sa.Connection,
    looked: _Looked,
    expire_before: datetime,
    now: datetime,
    rules: PollRules,
    summary: PollSummary,
) -> None:
    found = looked.found
    summary.looked_up += 1
    if found.outcome is ChargeOutcome.AUTH_ERROR:
        summary.auth_error = summary.auth_error or f"HTTP {found.http_status}: {found.excerpt}"
        return
    if found.outcome in SETTLED:
        ending = Settlement(looked.reference, found.outcome, found.excerpt, SettledBy.POLL)
    elif looked.attempted_at <= expire_before:
        ending = Settlement(
            looked.reference,
            ChargeOutcome.EXPIRED,
            f"still pending after ISKA_BILLING_PENDING_HOURS ({rules.pending_hours} h); last lookup "
            f"{found.http_status}: {found.excerpt}",
            SettledBy.POLL,
        )
    else:
        summary.still_pending += 1
        summary.unanswered += found.outcome is not ChargeOutcome.PENDING
        connection.execute(POLLED, {"now": now, "reference": looked.reference})
        return
    settled = settle(connection, ending, now, rules.settle)
    if settled.outcome is SettleOutcome.SETTLED:
        summary.ended[str(ending.outcome)] += 1
        summary.cancelled += settled.cancelled
