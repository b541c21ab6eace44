"""Billing without Dagster: keys, answer classification, backoff, the client against the real
simulator, and who is due (SPEC §6)."""

from __future__ import annotations

import socket
import time
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
import sqlalchemy as sa

from iska_pipelines.lib.billing.due import DueCharge, select_due
from iska_pipelines.lib.billing.gateway import BillingClient, ChargeResult, classify
from iska_pipelines.lib.billing.keys import idempotency_key
from iska_pipelines.lib.billing.outcomes import Answered, record_answers
from iska_pipelines.lib.db.schema import subscriptions
from iska_pipelines.lib.db.timestamps import as_utc
from iska_pipelines.lib.http.client import Backoff, Reply, parse_retry_after
from iska_pipelines.lib.inbox.reading import ROW
from iska_pipelines.lib.settings import ConfigurationError
from iska_pipelines.lib.subscriptions.records import EVENT_TIME
from iska_pipelines.lib.subscriptions.storage import apply_file_events
from iska_pipelines.lib.vocabulary import ChargeOutcome, FileKind, Plan
from iska_pipelines_tests.scripted_gateway import Gateway, serving
from iska_pipelines_tests.simulator_server import SIMULATOR_TOKEN

TODAY = date(2024, 3, 10)
NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
QUICK = Backoff(tries=3, base_seconds=0.02, cap_seconds=1.0)


def client_for(url: str, **kwargs) -> BillingClient:
    return BillingClient(
        url, SIMULATOR_TOKEN, **{"pool_size": 4, "timeout_seconds": 0.5, "backoff": QUICK} | kwargs
    )


# --- the key --------------------------------------------------------------------------------


def test_the_key_names_the_intent_and_changes_only_with_subscription_period_billing_period_or_declines():
    key = idempotency_key(7, 1, NOW, TODAY, 0)
    assert key == idempotency_key(7, 1, NOW.replace(tzinfo=None), TODAY, 0)  # SQLite's naive UTC
    assert key != idempotency_key(7, 1, NOW, TODAY, 1)
    assert key != idempotency_key(7, 1, NOW, TODAY + timedelta(days=1), 0)
    assert key != idempotency_key(7, 1, NOW + timedelta(seconds=1), TODAY, 0)  # rejoined: a new period
    assert key != idempotency_key(7, 2, NOW, TODAY, 0)  # rejoined at the same instant: still a new period
    assert key != idempotency_key(8, 1, NOW, TODAY, 0)
    assert key.isascii() and len(idempotency_key(2**31, 10**6, NOW, TODAY, 99)) <= 80  # fits billing_attempts


# --- what an answer means -------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply, outcome",
    [
        (Reply(200, payload={"status": "success"}), ChargeOutcome.SUCCESS),
        (Reply(200, payload={"status": "failure"}), ChargeOutcome.DECLINED),
        (Reply(401), ChargeOutcome.AUTH_ERROR),
        (Reply(403), ChargeOutcome.AUTH_ERROR),
        (Reply(404), ChargeOutcome.ERROR),
        (Reply(None, error="timed out"), None),
        (Reply(503), None),
        (Reply(429, retry_after=2.0), None),
        (Reply(200, text='{"status": "succ'), None),
        (Reply(200, payload={"status": "maybe"}), None),
        (Reply(402, payload={"status": "failure"}), ChargeOutcome.DECLINED),
        (Reply(400, payload={"status": "failure"}), ChargeOutcome.DECLINED),
        (Reply(402, payload={"status": "error"}), ChargeOutcome.ERROR),
        (Reply(401, payload={"status": "failure"}), ChargeOutcome.AUTH_ERROR),
        (Reply(429, payload={"status": "failure"}), None),
        (Reply(503, payload={"status": "failure"}), None),
    ],
)
def test_answers_are_classified_as_the_spec_says(reply, outcome):
    assert classify(reply) == outcome


def test_backoff_grows_exponentially_with_jitter_and_honours_retry_after():
    backoff = Backoff(tries=5, base_seconds=1.0, cap_seconds=8.0)
    for failed, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (6, 8.0)):
        assert ceiling / 2 <= backoff.delay(failed) <= ceiling
    assert backoff.delay(1, retry_after=5.0) == 5.0
    assert backoff.delay(1, retry_after=60.0) == 60.0  # Retry-After is honoured beyond the cap


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Sun, 10 Mar 2024 12:00:30 GMT", now=NOW) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


# --- the client against the simulator -------------------------------------------------------


def test_a_charge_that_timed_out_after_the_gateway_charged_is_retried_with_the_same_key(simulator):
    simulator.configure(faults=["charge_then_timeout"], hang_seconds=3)
    with client_for(simulator.billing_url) as client:
        result = client.charge("233020000001", 11, "key-1")
    assert (result.outcome, result.tries) == (ChargeOutcome.SUCCESS, 2)
    assert simulator.charges() == {"233020000001": 1}


def test_a_throttled_charge_waits_as_long_as_retry_after_says(simulator):
    simulator.configure(faults=["429"], retry_after_seconds=0.3)
    with client_for(simulator.billing_url) as client:
        started = time.monotonic()
        result = client.charge("233020000001", 11, "key-1")
    assert result.outcome is ChargeOutcome.SUCCESS
    assert time.monotonic() - started >= 0.3


def test_5xx_and_malformed_answers_are_retried_until_one_is_readable(simulator):
    simulator.configure(faults=["5xx", "malformed"])
    with client_for(simulator.billing_url) as client:
        result = client.charge("233020000001", 21, "key-1")
    assert (result.outcome, result.tries) == (ChargeOutcome.SUCCESS, 3)
    assert simulator.charges() == {"233020000001": 1}


def test_a_gateway_that_never_answers_is_a_transport_error_after_every_try(simulator):
    simulator.configure(error_rate=1.0)
    with client_for(simulator.billing_url) as client:
        result = client.charge("233020000001", 11, "key-1")
    assert (result.outcome, result.http_status, result.tries) == (ChargeOutcome.ERROR, 503, 3)


def test_a_refused_connection_is_a_transport_error():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with client_for(f"http://127.0.0.1:{port}/billing") as client:
        result = client.charge("233020000001", 11, "key-1")
    assert (result.outcome, result.http_status, result.tries) == (ChargeOutcome.ERROR, None, 3)
    assert "connection" in result.excerpt.lower()


def test_a_decline_answered_with_http_402_is_a_decline_and_not_asked_again():
    with serving(
        Gateway(lambda _n: (402, {"status": "failure", "detail": "insufficient balance"}, {}))
    ) as gateway:
        with client_for(gateway.url) as client:
            result = client.charge("233020000001", 11, "key-1")
    assert (result.outcome, result.http_status, result.tries) == (ChargeOutcome.DECLINED, 402, 1)
    assert gateway.tries["233020000001"] == 1


def throttled_once(retry_after: str) -> Gateway:
    return Gateway(
        lambda n: (
            (429, {"status": "error"}, {"Retry-After": retry_after})
            if n == 1
            else (200, {"status": "success"}, {})
        )
    )


def test_a_retry_after_longer_than_the_backoff_cap_is_waited_for_in_full():
    patient = Backoff(tries=3, base_seconds=0.02, cap_seconds=0.05, max_retry_after_seconds=2.0)
    with serving(throttled_once("0.4")) as gateway, client_for(gateway.url, backoff=patient) as client:
        started = time.monotonic()
        result = client.charge("233020000001", 11, "key-1")
    assert (result.outcome, result.tries) == (ChargeOutcome.SUCCESS, 2)
    assert time.monotonic() - started >= 0.4


def test_a_retry_after_beyond_the_maximum_ends_the_tries_as_a_transport_error():
    impatient = Backoff(tries=3, base_seconds=0.02, cap_seconds=1.0, max_retry_after_seconds=0.5)
    with serving(throttled_once("3")) as gateway, client_for(gateway.url, backoff=impatient) as client:
        started = time.monotonic()
        result = client.charge("233020000001", 11, "key-1")
    assert (result.outcome, result.http_status, result.tries) == (ChargeOutcome.ERROR, 429, 1)
    assert "Retry-After" in result.excerpt
    assert time.monotonic() - started < 1.0  # it did not wait 3 s, nor 0.5


def test_a_wrong_token_is_an_auth_error_at_once(simulator):
    with BillingClient(simulator.billing_url, "wrong", backoff=QUICK) as client:
        result = client.charge("233020000001", 11, "key-1")
    assert (result.outcome, result.http_status, result.tries) == (ChargeOutcome.AUTH_ERROR, 401, 1)


def test_the_client_refuses_to_start_without_a_token():
    with pytest.raises(ConfigurationError, match="BILLING_TOKEN"):
        BillingClient("http://127.0.0.1:8010/billing", "")


# --- who is due -----------------------------------------------------------------------------


def add_subscription(
    engine: sa.Engine,
    msisdn: str,
    plan: str = "daily",
    status: str = "active",
    next_billing_date: date | None = TODAY,
    failed: int = 0,
) -> int:
    with engine.begin() as connection:
        return connection.execute(
            sa.text("""
            INSERT INTO subscriptions (msisdn, plan, status, lat, lon, sub_date, next_billing_date,
                failed_billing_count, last_event_at, created_at, updated_at)
            VALUES (:msisdn, :plan, :status, 5.6, -0.2, :now, :next, :failed, :now, :now, :now)
            RETURNING id
        """).bindparams(
                sa.bindparam("now", type_=sa.DateTime(timezone=True)), sa.bindparam("next", type_=sa.Date)
            ),
            {
                "msisdn": msisdn,
                "plan": plan,
                "status": status,
                "now": NOW,
                "next": next_billing_date,
                "failed": failed,
            },
        ).scalar_one()


def record(
    engine: sa.Engine, charge: DueCharge, outcome: ChargeOutcome, at: datetime, max_tries: int = 5
) -> int:
    with engine.begin() as connection:
        return record_answers(
            connection,
            [Answered(charge, ChargeResult(outcome, 200, "", 1), at)],
            TODAY,
            max_tries,
            run_id="test",
        )


def due_msisdns(engine: sa.Engine, now: datetime = NOW, retry_minutes: int = 60) -> list[str]:
    with engine.connect() as connection:
        return [c.msisdn for c in select_due(connection, TODAY, now, retry_minutes)]


def test_due_means_active_and_billing_date_reached(engine):
    add_subscription(engine, "233020000001", next_billing_date=TODAY)
    add_subscription(engine, "233020000002", next_billing_date=TODAY - timedelta(days=3))
    add_subscription(engine, "233020000003", next_billing_date=TODAY + timedelta(days=1))
    add_subscription(engine, "233020000004", status="cancelled")
    add_subscription(engine, "233020000005", next_billing_date=None)
    assert due_msisdns(engine) == ["233020000001", "233020000002"]


def test_a_declined_subscriber_rests_for_the_retry_interval(engine):
    add_subscription(engine, "233020000001")
    with engine.connect() as connection:
        (charge,) = select_due(connection, TODAY, NOW, 60)
    record(engine, charge, ChargeOutcome.DECLINED, NOW)
    assert due_msisdns(engine, NOW + timedelta(minutes=59)) == []
    assert due_msisdns(engine, NOW + timedelta(minutes=61)) == ["233020000001"]


def test_a_rejoin_is_due_at_once_even_when_its_ts_is_older_than_the_earlier_period_s_decline(engine):
    """A rejoin file's ts can be earlier than the decline that preceded the rejoin (a cancellation
    file and a re-addition both dated before that billing run): the new period is due now."""
    subscription_id = add_subscription(engine, "233020000001")
    with engine.connect() as connection:
        (charge,) = select_due(connection, TODAY, NOW, 60)
    record(engine, charge, ChargeOutcome.DECLINED, NOW + timedelta(minutes=10))
    with engine.begin() as connection:  # cancelled by a file, then re-added with ts NOW + 5 min
        connection.execute(
            subscriptions.update()
            .where(subscriptions.c.id == subscription_id)
            .values(
                status="active",
                failed_billing_count=0,
                sub_date=NOW + timedelta(minutes=5),
                next_billing_date=TODAY,
            )
        )
    assert due_msisdns(engine, NOW + timedelta(minutes=20)) == ["233020000001"]


def apply_event(engine: sa.Engine, kind: FileKind, msisdn: str, ts: datetime) -> None:
    """One event through the same code as a file's rows (lib/subscriptions/events.py)."""
    columns = {
        ROW: pl.Series([0], dtype=pl.UInt32),
        "msisdn": [msisdn],
        "ts": pl.Series([ts], dtype=EVENT_TIME),
    }
    if kind is FileKind.ADDITIONS:
        columns |= {"lat": [5.6], "lon": [-0.2], "lid": [1], "no_grid": [False], "plan": ["daily"]}
    with engine.begin() as connection:
        apply_file_events(connection, pl.DataFrame(columns), kind, TODAY)


@pytest.mark.parametrize(
    "first_answer", [ChargeOutcome.SUCCESS, None], ids=["answered", "crashed-unrecorded"]
)
def test_a_rejoin_dated_at_the_instant_of_the_first_addition_is_asked_with_a_new_key(engine, first_answer):
    """Addition, cancellation and re-addition can all carry the same ts (events at the instant of
    the last one apply when they change something): the rejoin's charge is a new intent (SPEC §6),
    so the gateway must not replay the first period's answer, even when that answer was never
    recorded (the run died between the gateway's charge and its write)."""
    apply_event(engine, FileKind.ADDITIONS, "233020000001", NOW)
    with engine.connect() as connection:
        (first,) = select_due(connection, TODAY, NOW, 60)
    if first_answer is not None:
        record(engine, first, first_answer, NOW)
    apply_event(engine, FileKind.CANCELLATIONS, "233020000001", NOW)
    apply_event(engine, FileKind.ADDITIONS, "233020000001", NOW)
    with engine.connect() as connection:
        (rejoined,) = select_due(connection, TODAY, NOW, 60)
    assert (rejoined.subscription_id, rejoined.sub_date) == (first.subscription_id, first.sub_date)
    assert rejoined.key != first.key


def test_an_answer_for_an_earlier_subscription_period_changes_nothing_in_the_new_one(engine):
    """A run that asked before a cancellation and a same-instant rejoin records its answer late:
    the attempt row stays, but the rejoined period is not marked paid by it."""
    apply_event(engine, FileKind.ADDITIONS, "233020000001", NOW)
    with engine.connect() as connection:
        (first,) = select_due(connection, TODAY, NOW, 60)
    apply_event(engine, FileKind.CANCELLATIONS, "233020000001", NOW)
    apply_event(engine, FileKind.ADDITIONS, "233020000001", NOW)
    record(engine, first, ChargeOutcome.SUCCESS, NOW)
    assert due_msisdns(engine) == ["233020000001"]


def test_a_transport_error_does_not_delay_the_next_try(engine):
    add_subscription(engine, "233020000001")
    with engine.connect() as connection:
        (charge,) = select_due(connection, TODAY, NOW, 60)
    record(engine, charge, ChargeOutcome.ERROR, NOW)
    with engine.connect() as connection:
        (again,) = select_due(connection, TODAY, NOW + timedelta(minutes=1), 60)
    assert again.key == charge.key  # same intent, same key


def test_the_last_allowed_decline_cancels_for_billing(engine):
    add_subscription(engine, "233020000001", failed=4)
    with engine.connect() as connection:
        (charge,) = select_due(connection, TODAY, NOW, 60)
    assert record(engine, charge, ChargeOutcome.DECLINED, NOW, max_tries=5) == 1
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(
                subscriptions.c.status,
                subscriptions.c.cancel_reason,
                subscriptions.c.failed_billing_count,
                subscriptions.c.unsub_date,
            )
        ).one()
    assert (row.status, row.cancel_reason, row.failed_billing_count) == ("cancelled", "billing", 5)
    assert as_utc(row.unsub_date) == NOW


def test_an_answer_for_a_period_already_settled_changes_nothing(engine):
    add_subscription(engine, "233020000001", plan="weekly")
    with engine.connect() as connection:
        (charge,) = select_due(connection, TODAY, NOW, 60)
    assert charge.plan is Plan.WEEKLY
    record(engine, charge, ChargeOutcome.SUCCESS, NOW)
    record(engine, charge, ChargeOutcome.DECLINED, NOW)  # a late duplicate answer for the same intent
    with engine.connect() as connection:
        row = connection.execute(
            sa.text("SELECT next_billing_date, failed_billing_count FROM subscriptions")
        ).one()
        attempts = connection.execute(sa.text("SELECT count(*) FROM billing_attempts")).scalar()
    assert (str(row.next_billing_date), row.failed_billing_count) == (str(TODAY + timedelta(days=7)), 0)
    assert attempts == 2  # every attempt is on record, even one that changed nothing
