"""A day of the service written straight into ISKA's tables, with known figures: the health
assets, `/status`, `/` and `iska status` must all show exactly these numbers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa

from iska_pipelines.lib.db.schema import billing_attempts, forecasts, sms_messages, subscriptions
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.inbox.files import FileRecord, record_file
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.sms.outbox import plan_outbox
from iska_pipelines.lib.vocabulary import FileOutcome
from iska_pipelines_tests.sms_world import add_forecast, add_subscriber, today

TEMPLATE = "Iska {date}: next 24h {fcat24}, next 48h {fcat48}"
# today's 20 messages end like this
OUTCOMES = {"delivered": 13, "failed": 2, "undelivered": 1, "rejected": 1, "accepted": 2, "pending": 1}
REFUSAL = "forecasts_bad.csv: the header has no gid column"


@dataclass(frozen=True)
class SeededDay:
    day: date
    msgids: list[str]


def seed_day(engine: sa.Engine) -> SeededDay:
    day = today()
    add_forecast(engine, 1, "1.5", "2", age_hours=2.0)
    for n in range(20):
        add_subscriber(engine, f"2330200{n:05d}", 1, day=day)
    add_subscriber(engine, "233020099999", 1, day=day, paid=False)  # skipped unpaid, still due
    with engine.begin() as connection:
        plan_outbox(connection, day, Settings.from_env({"ISKA_SMS_TEMPLATE": TEMPLATE}).catalog(), 30.0)
        msgids = list(
            connection.execute(
                sa.select(sms_messages.c.msgid)
                .where(sms_messages.c.send_date == day)
                .order_by(sms_messages.c.msisdn)
            ).scalars()
        )
        statuses = [status for status, n in OUTCOMES.items() for _ in range(n)]
        for msgid, status in zip(msgids, statuses, strict=True):
            connection.execute(
                sms_messages.update()
                .where(sms_messages.c.msgid == msgid)
                .values(status=status, attempts=0 if status == "pending" else 1)
            )
        _charges(connection)
        _files(connection)
    return SeededDay(day, msgids)


def _charges(connection: sa.Connection) -> None:
    """Today: 3 daily and 1 weekly charged, 2 declined, 1 transport error; one cancelled for
    billing and one opt-out."""
    now = utcnow()
    ids = list(connection.execute(sa.select(subscriptions.c.id).order_by(subscriptions.c.id)).scalars())
    rows = [("success", "daily")] * 3 + [
        ("success", "weekly"),
        ("declined", "daily"),
        ("declined", "daily"),
        ("error", "daily"),
    ]
    connection.execute(
        billing_attempts.insert(),
        [
            {
                "subscription_id": ids[n],
                "msisdn": f"m{n}",
                "plan": plan,
                "period_start": today(),
                "idempotency_key": f"key-{n}",
                "attempted_at": now,
                "outcome": outcome,
                "run_id": "r",
            }
            for n, (outcome, plan) in enumerate(rows)
        ],
    )
    for sub_id, reason in ((ids[5], "billing"), (ids[6], "user")):
        connection.execute(
            subscriptions.update()
            .where(subscriptions.c.id == sub_id)
            .values(status="cancelled", cancel_reason=reason, unsub_date=now)
        )


def _files(connection: sa.Connection) -> None:
    records = [
        FileRecord(
            "additions-2021-02-05_additions.csv-aaaaaaaaaa",
            "additions",
            "2021-02-05_additions.csv",
            "a" * 64,
            rows_in=10,
            rows_applied=8,
            rows_refused=2,
            refused_by_reason=json.dumps({"invalid_msisdn": 1, "invalid_ts": 1}),
        ),
        FileRecord(
            "forecasts-forecasts_ghana.csv-bbbbbbbbbb",
            "forecasts",
            "forecasts_ghana.csv",
            "b" * 64,
            rows_in=5,
            rows_applied=5,
        ),
        FileRecord(
            "forecasts-forecasts_bad.csv-cccccccccc",
            "forecasts",
            "forecasts_bad.csv",
            "c" * 64,
            outcome=FileOutcome.REJECTED,
            error=REFUSAL,
        ),
        FileRecord(
            "forecasts-forecasts_again.csv-bbbbbbbbbb",
            "forecasts",
            "forecasts_again.csv",
            "b" * 64,
            outcome=FileOutcome.DUPLICATE,
            error="same content as forecasts-forecasts_ghana.csv-bbbbbbbbbb, not applied again",
        ),
        FileRecord(
            "unknown-notes.csv-dddddddddd",
            "unknown",
            "notes.csv",
            "d" * 64,
            outcome=FileOutcome.UNKNOWN,
            error="notes.csv: the name does not say what kind",
        ),
    ]
    for record in records:
        record_file(connection, record)


def age_grid(engine: sa.Engine, hours: float) -> None:
    """Make every grid point issued `hours` ago."""
    issued = utcnow() - timedelta(hours=hours)
    with engine.begin() as connection:
        connection.execute(forecasts.update().values(issued_at=issued, updated_at=issued))
