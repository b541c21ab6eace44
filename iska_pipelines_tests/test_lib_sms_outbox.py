"""The outbox rules of SPEC §7 on both databases: who gets a row, what it says, exactly once,
and how send outcomes, delivery reports and the 72-hour expiry move it."""

from __future__ import annotations

from datetime import timedelta

from iska_pipelines.lib.db.timestamps import as_utc, utcnow
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.sms.delivery import ReportOutcome, apply_report, expire_unreported, record_outcomes
from iska_pipelines.lib.sms.gateway import SmsOutcome
from iska_pipelines.lib.sms.outbox import plan_outbox
from iska_pipelines.lib.vocabulary import MessageStatus, SkipReason
from iska_pipelines_tests.sms_world import (
    add_forecast,
    add_subscriber,
    last_successful_sms_date,
    message,
    messages,
    today,
)

TEMPLATE = "Iska {date}: next 24h {fcat24}, next 48h {fcat48}"
MAX_AGE_HOURS = 30.0


def plan(engine, day, template=TEMPLATE):
    catalog = Settings.from_env({"ISKA_SMS_TEMPLATE": template}).catalog()
    with engine.begin() as connection:
        return plan_outbox(connection, day, catalog, MAX_AGE_HOURS)


def test_only_paid_active_subscribers_with_a_fresh_forecast_get_a_row(engine):
    day = today()
    add_forecast(engine, 1, "0.3000", "12.7500")
    add_forecast(engine, 2, "0.1000", "0.2000", age_hours=MAX_AGE_HOURS + 1)
    add_forecast(engine, 3, "0.5000", "0.5000", is_active=False)
    add_subscriber(engine, "233010000001", 1, day=day)
    add_subscriber(engine, "233010000002", 1, day=day, paid=False)
    add_subscriber(engine, "233010000003", 1, day=day, status="cancelled")
    add_subscriber(engine, "233010000004", 2, day=day)
    add_subscriber(engine, "233010000005", None, day=day)
    add_subscriber(engine, "233010000006", 3, day=day)

    outcome = plan(engine, day)

    [row] = messages(engine, day)
    assert (row.msisdn, row.status, row.attempts) == ("233010000001", "pending", 0)
    assert row.text == f"Iska {day.isoformat()}: next 24h 0.3, next 48h 12.75"
    assert len(row.msgid) == 36
    assert (outcome.eligible, outcome.planned) == (1, 1)
    assert outcome.skipped == {
        SkipReason.ALREADY_SENT: 0,
        SkipReason.CANCELLED: 1,
        SkipReason.UNPAID: 1,
        SkipReason.NO_GRID_POINT: 2,
        SkipReason.STALE_FORECAST: 1,
    }


def test_a_subscription_paid_only_up_to_the_day_is_unpaid_on_it(engine):
    day = today()
    add_forecast(engine, 1, "1", "2")
    add_subscriber(engine, "233010000001", 1, day=day - timedelta(days=1))  # next billing = day
    assert plan(engine, day).skipped[SkipReason.UNPAID] == 1
    assert messages(engine) == []


def test_planning_a_day_again_writes_nothing_new(engine):
    day = today()
    add_forecast(engine, 1, "1", "2")
    for n in range(3):
        add_subscriber(engine, f"23301000000{n}", 1, day=day)
    first = plan(engine, day)
    msgids = [r.msgid for r in messages(engine)]
    again = plan(engine, day)
    assert (first.planned, again.planned, again.eligible) == (3, 0, 0)
    assert again.skipped[SkipReason.ALREADY_SENT] == 3
    assert [r.msgid for r in messages(engine)] == msgids


def test_the_next_day_is_a_new_message(engine):
    day = today()
    add_forecast(engine, 1, "1", "2")
    add_subscriber(engine, "233010000001", 1, day=day + timedelta(days=1))
    plan(engine, day)
    plan(engine, day + timedelta(days=1))
    assert [r.send_date for r in messages(engine)] == [day, day + timedelta(days=1)]


def one_planned_message(engine):
    day = today()
    add_forecast(engine, 1, "1", "2")
    add_subscriber(engine, "233010000001", 1, day=day)
    plan(engine, day)
    [row] = messages(engine)
    return row


def test_an_accepted_outcome_records_tries_gateway_and_time(engine):
    row = one_planned_message(engine)
    with engine.begin() as connection:
        record_outcomes(connection, [SmsOutcome(row.msgid, True, 3, "http://gw/sms/a")])
    stored = message(engine, row.msgid)
    assert (stored.status, stored.attempts, stored.gateway) == ("accepted", 3, "http://gw/sms/a")
    assert stored.accepted_at is not None and stored.last_error is None


def test_a_failed_outcome_keeps_the_last_error(engine):
    row = one_planned_message(engine)
    with engine.begin() as connection:
        record_outcomes(connection, [SmsOutcome(row.msgid, False, 5, "http://gw/sms/b", "HTTP 500: boom")])
    stored = message(engine, row.msgid)
    assert (stored.status, stored.attempts, stored.last_error) == ("failed", 5, "HTTP 500: boom")


def test_a_report_that_overtook_the_send_call_is_not_undone_by_it(engine):
    row = one_planned_message(engine)
    with engine.begin() as connection:
        assert apply_report(connection, row.msgid, MessageStatus.DELIVERED).outcome is ReportOutcome.APPLIED
        record_outcomes(connection, [SmsOutcome(row.msgid, True, 1, "http://gw/sms/a")])
    stored = message(engine, row.msgid)
    assert stored.status == "delivered" and stored.accepted_at is not None
    assert last_successful_sms_date(engine, "233010000001") == row.send_date


def test_final_states_never_change_again(engine):
    row = one_planned_message(engine)
    with engine.begin() as connection:
        record_outcomes(connection, [SmsOutcome(row.msgid, True, 1, "http://gw/sms/a")])
        first = apply_report(connection, row.msgid, MessageStatus.UNDELIVERED)
        late = apply_report(connection, row.msgid, MessageStatus.DELIVERED)
    assert (first.outcome, late.outcome, late.status) == (
        ReportOutcome.APPLIED,
        ReportOutcome.ALREADY_FINAL,
        "undelivered",
    )
    assert message(engine, row.msgid).delivered_at is None
    assert last_successful_sms_date(engine, "233010000001") is None


def test_an_unknown_msgid_changes_nothing(engine):
    one_planned_message(engine)
    with engine.begin() as connection:
        outcome = apply_report(connection, "no-such-msgid", MessageStatus.DELIVERED)
    assert outcome.outcome is ReportOutcome.UNKNOWN_MSGID
    assert [r.status for r in messages(engine)] == ["pending"]


def test_accepted_messages_without_a_report_expire_after_72_hours(engine):
    row = one_planned_message(engine)
    with engine.begin() as connection:
        record_outcomes(connection, [SmsOutcome(row.msgid, True, 1, "http://gw/sms/a")])
    accepted_at = as_utc(message(engine, row.msgid).accepted_at)
    with engine.begin() as connection:
        assert expire_unreported(connection, now=accepted_at + timedelta(hours=71)) == 0
        assert expire_unreported(connection, now=accepted_at + timedelta(hours=73)) == 1
        assert (
            apply_report(connection, row.msgid, MessageStatus.DELIVERED).outcome
            is ReportOutcome.ALREADY_FINAL
        )
    assert message(engine, row.msgid).status == "expired"


def test_expiry_leaves_pending_and_final_messages_alone(engine):
    row = one_planned_message(engine)
    with engine.begin() as connection:
        assert expire_unreported(connection, now=utcnow() + timedelta(days=30)) == 0
    assert message(engine, row.msgid).status == "pending"
