"""One billing run: charge every due subscription concurrently and record every answer.

Worker threads only talk HTTP (lib/http/fanout.py, a connection pool sized to the concurrency); the
calling thread writes the answers as they arrive, a batch per transaction, each attempt row beside its
subscription update. A crash therefore loses at most the answers not yet written, and those
charges are asked again with the same Idempotency-Key, which the gateway answers from memory.
One subscriber's bad data (an msisdn no gateway can take, an unknown plan) never stops the run:
that charge is recorded as an `error` saying why it was not sent, and the others go on.
An asynchronous gateway (MoMo, SPEC §18) answers most charges `pending`: recorded like any
answer, they change no subscription until lib/billing/settle.py settles them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from iska_pipelines.lib.billing.due import DueCharge, billing_day, select_due
from iska_pipelines.lib.billing.gateway import Charger, ChargeResult
from iska_pipelines.lib.billing.outcomes import Answered, record_answers
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.http.fanout import fan_out
from iska_pipelines.lib.regions.config import Regions, single_region
from iska_pipelines.lib.settings import DEFAULTS
from iska_pipelines.lib.vocabulary import ChargeOutcome

BILLING_LOCK_ID = 0x15CA_0003


class BillingAlreadyRunning(RuntimeError):
    """Another process holds the billing lock."""


@dataclass(frozen=True)
class BillingRules:
    max_tries: int = DEFAULTS.max_billing_try_limit
    retry_minutes: int = DEFAULTS.billing_retry_minutes
    timezone: str = DEFAULTS.timezone
    concurrency: int = DEFAULTS.http_concurrency
    # each region is billed on its own local day (SPEC §15); None: one region in `timezone`
    regions: Regions | None = None

    def billed_regions(self) -> Regions:
        return self.regions or single_region(self.timezone, 0, None, (), 0.0)


@dataclass
class BillingSummary:
    due: int = 0
    outcomes: Counter[ChargeOutcome] = field(default_factory=Counter)
    cancelled: int = 0
    not_sendable: int = 0  # errors of the subscriber's data: never sent to the gateway
    not_sent: int = 0
    duration_seconds: float = 0.0
    auth_error: str | None = None
    asynchronous: bool = False  # the gateway answers later (SPEC §18): `pending` is counted

    @property
    def pending(self) -> int:
        return self.outcomes[ChargeOutcome.PENDING]

    @property
    def charged(self) -> int:
        return self.outcomes[ChargeOutcome.SUCCESS]

    @property
    def declined(self) -> int:
        return self.outcomes[ChargeOutcome.DECLINED]

    @property
    def errors(self) -> int:
        return self.outcomes[ChargeOutcome.ERROR]

    @property
    def transport_errors(self) -> int:
        return self.errors - self.not_sendable

    @property
    def answered(self) -> int:
        return sum(self.outcomes.values())

    def metadata(self) -> dict[str, int | float]:
        rate = self.answered / self.duration_seconds if self.duration_seconds > 0 else 0.0
        return {
            "due": self.due,
            "charged": self.charged,
            "declined": self.declined,
            "transport_errors": self.transport_errors,
            "cancelled": self.cancelled,
            "auth_errors": self.outcomes[ChargeOutcome.AUTH_ERROR],
            "not_sendable": self.not_sendable,
            "not_sent": self.not_sent,
            **({"pending": self.pending} if self.asynchronous else {}),
            "duration_seconds": round(self.duration_seconds, 3),
            "charges_per_second": round(rate, 1),
        }

    def summary(self) -> str:
        return (
            f"{self.due} due: {self.charged} charged, {self.declined} declined "
            f"({self.cancelled} cancelled at the limit), {self.transport_errors} transport errors"
            + (f", {self.pending} pending (the payer has not answered yet)" if self.pending else "")
            + (f", {self.not_sendable} not sendable (bad subscriber data)" if self.not_sendable else "")
            + (f", {self.not_sent} not sent" if self.not_sent else "")
            + f" in {self.duration_seconds:.1f} s"
        )


def bill_due(
    engine: sa.Engine,
    client: Charger,
    rules: BillingRules,
    run_id: str | None = None,
    now: Callable[[], datetime] = utcnow,
) -> BillingSummary:
    """Charge every region's due subscriptions, each region on its own local day."""
    started = time.monotonic()
    summary = BillingSummary(asynchronous=client.asynchronous)
    regions = rules.billed_regions()
    with billing_lock(engine):
        for region in regions.all:
            if summary.auth_error is not None:
                break  # the token is wrong for every region too
            today = billing_day(now(), region.timezone)
            in_region = regions.in_region("s.region", region.code)
            with engine.connect() as connection:
                due = select_due(connection, today, now(), rules.retry_minutes, in_region)
            summary.due += len(due)
            _bill(engine, client, due, today, rules, run_id, now, summary)
    summary.not_sent = summary.due - summary.answered
    summary.duration_seconds = time.monotonic() - started
    return summary


def _bill(
    engine: sa.Engine,
    client: Charger,
    due: list[DueCharge],
    today: date,
    rules: BillingRules,
    run_id: str | None,
    now: Callable[[], datetime],
    summary: BillingSummary,
) -> None:
    """Charge `due` (one region's, on its local `today`) and add the answers to `summary`."""
    for batch in _answers(due, client, rules.concurrency, now):
        with engine.begin() as connection:
            summary.cancelled += record_answers(connection, batch, today, rules.max_tries, run_id)
        for answered in batch:
            summary.outcomes[answered.result.outcome] += 1
            summary.not_sendable += not answered.result.sent
            if answered.result.outcome is ChargeOutcome.AUTH_ERROR and summary.auth_error is None:
                summary.auth_error = f"HTTP {answered.result.http_status}: {answered.result.excerpt}"


def _answers(
    due: list[DueCharge], client: Charger, concurrency: int, now: Callable[[], datetime]
) -> Iterator[list[Answered]]:
    """Charges go out from `concurrency` threads; answers come back in batches as they land.

    After a 401/403 nothing more is sent: the token is wrong for every charge.
    """

    def answer(charge: DueCharge) -> Answered:
        return Answered(charge, _charge_one(client, charge), now())

    return fan_out(
        due,
        answer,
        concurrency=min(concurrency, max(1, len(due))),
        stop=lambda answered: answered.result.outcome is ChargeOutcome.AUTH_ERROR,
    )


def _charge_one(client: Charger, charge: DueCharge) -> ChargeResult:
    """One charge; a subscriber whose data cannot be sent gets an `error` saying why."""
    problem = charge.unsendable()
    if problem is None:
        try:
            return client.ask(charge)
        except Exception as failure:  # one row's data must not stop the others
            problem = f"{type(failure).__name__}: {failure}"
    return ChargeResult(ChargeOutcome.ERROR, None, f"not sent: {problem}", tries=0)


@contextmanager
def billing_lock(engine: sa.Engine) -> Iterator[None]:
    """Never two billing runs at once, even outside the run queue (PostgreSQL advisory lock).

    SQLite deployments are single-host and rely on the run queue's tag limit alone.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        got = connection.execute(
            sa.text("SELECT pg_try_advisory_lock(:id)"), {"id": BILLING_LOCK_ID}
        ).scalar()
        connection.commit()
        if not got:
            raise BillingAlreadyRunning("another billing run is in progress; this one charged nobody")
        try:
            yield
        finally:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": BILLING_LOCK_ID})
            connection.commit()
