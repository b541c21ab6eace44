"""billing_job with BILLING_PROTOCOL=momo (SPEC §18): a charge is asked, stays pending until its
callback or the poll settles it, and is never asked twice; a lost callback, a payer who never
answers and a gateway that already holds the reference cancel nobody and charge nobody twice.
Every test runs on SQLite and PostgreSQL, against the simulator's MoMo on 127.0.0.1."""

from __future__ import annotations

from datetime import timedelta

import requests
import sqlalchemy as sa

from iska_pipelines.lib.billing.references import reference_for
from iska_pipelines.lib.db.schema import consent_events
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.health import billing as billing_figures
from iska_pipelines.lib.health.checks import HealthRules
from iska_pipelines.lib.health.status import snapshot
from iska_pipelines.lib.sms.signing import sign
from iska_pipelines.operator_cli import status_text
from iska_pipelines_tests.api_server import CALLBACK_SECRET
from iska_pipelines_tests.momo_world import MAX_TRIES
from iska_pipelines_tests.test_defs_billing import (
    DAILY,
    TIMEZONE,
    WEEKLY,
    failure_message,
    metadata,
    msisdns,
    today,
)
from iska_pipelines_tests.test_defs_health_reports import latest

POLL_MINUTES = 10  # ISKA_BILLING_POLL_MINUTES, the default
PENDING_HOURS = 24  # ISKA_BILLING_PENDING_HOURS, the default


def test_a_charge_is_pending_until_its_callback_says_successful_then_paid_once(momo):
    daily, weekly = msisdns(2)
    momo.billing.subscribe({daily: DAILY, weekly: WEEKLY})

    asked = momo.run()

    assert asked.success and metadata(asked)["pending"] == 2 and metadata(asked)["charged"] == 0
    assert momo.outcomes() == ["pending", "pending"]
    for msisdn in (daily, weekly):
        row = momo.billing.subscription(msisdn)
        assert (row.last_billing_date, row.next_billing_date) == (None, today())  # not paid: no SMS
    assert metadata(momo.run())["due"] == 0  # pending: never asked a second time
    assert momo.simulator.billing_counts()["requested"] == 2

    answers = momo.simulator.send_held_callbacks()

    assert [a["iska_status"] for a in answers] == [[200], [200]]
    assert momo.outcomes() == ["success", "success"]
    assert {a.settled_by for a in momo.attempts()} == {"callback"}
    for msisdn, days in ((daily, 1), (weekly, 7)):
        row = momo.billing.subscription(msisdn)
        assert (row.last_billing_date, row.next_billing_date) == (today(), today() + timedelta(days=days))
    assert momo.simulator.charges() == {daily: 1, weekly: 1}
    assert metadata(momo.run())["due"] == 0


def test_the_request_is_momo_s_requesttopay_field_for_field(momo):
    (msisdn,) = msisdns(1)
    momo.billing.subscribe({msisdn: WEEKLY})

    assert momo.run(price_weekly="1.50 EUR", target_environment="sandbox").success

    (attempt,) = momo.attempts()
    (reference, request), *_ = momo.simulator.momo_requests().items()
    assert attempt.reference == reference == reference_for(attempt.idempotency_key)
    assert (attempt.http_status, attempt.outcome) == (202, "pending")
    assert request["amount"] == "1.50" and request["currency"] == "EUR"
    assert request["payer"] == {"partyIdType": "MSISDN", "partyId": msisdn}
    assert request["externalId"] == reference and request["payeeNote"] == attempt.idempotency_key
    assert request["callback"] == (
        f"{momo.api.base_url}/billing/api/v1/momo/callback/?ref={reference}"
        f"&sig={sign(reference, CALLBACK_SECRET)}"
    )


def test_a_failed_charge_is_a_decline_with_momo_s_reason_and_the_limit_cancels(momo):
    (msisdn,) = msisdns(1)
    momo.billing.subscribe({msisdn: DAILY})
    momo.simulator.configure(momo_script={msisdn: ["decline"] * MAX_TRIES})

    for declines in range(1, MAX_TRIES + 1):
        assert momo.run().success
        assert momo.billing.subscription(msisdn).failed_billing_count == declines - 1  # pending
        momo.simulator.send_held_callbacks()
        assert momo.billing.subscription(msisdn).failed_billing_count == declines
        assert metadata(momo.run())["due"] == 0  # resting for ISKA_BILLING_RETRY_MINUTES
        momo.minutes_pass(momo.billing.policy["retry_minutes"] + 1)

    row = momo.billing.subscription(msisdn)
    assert (row.status, row.cancel_reason) == ("cancelled", "billing")
    assert momo.outcomes() == ["declined"] * MAX_TRIES
    assert all("NOT_ENOUGH_FUNDS" in a.response_excerpt for a in momo.attempts())
    assert len({a.reference for a in momo.attempts()}) == MAX_TRIES  # each decline: a new intent
    with momo.billing.engine.connect() as connection:
        events = connection.execute(sa.select(consent_events.c.event, consent_events.c.source)).all()
    assert [tuple(e) for e in events] == [("cancelled", "billing")]


def test_lost_callbacks_are_settled_by_the_poll_once_the_charges_are_poll_minutes_old(momo):
    daily, weekly = msisdns(2)
    momo.billing.subscribe({daily: DAILY, weekly: WEEKLY})
    assert momo.run().success
    momo.simulator.send_held_callbacks("lost", "lost")

    assert "looked up 0 pending" in momo.poll()  # too young to ask about
    momo.minutes_pass(POLL_MINUTES + 1)
    said = momo.poll()  # both in one tick

    assert "2 paid" in said
    assert {(a.outcome, a.settled_by) for a in momo.attempts()} == {("success", "poll")}
    for msisdn, days in ((daily, 1), (weekly, 7)):
        assert momo.billing.subscription(msisdn).next_billing_date == today() + timedelta(days=days)
    assert momo.simulator.charges() == {daily: 1, weekly: 1}


def test_a_callback_after_the_poll_settled_the_charge_changes_nothing(momo):
    (msisdn,) = msisdns(1)
    momo.billing.subscribe({msisdn: DAILY})
    assert momo.run().success
    momo.minutes_pass(POLL_MINUTES + 1)
    momo.poll()
    before = momo.billing.subscription(msisdn), momo.attempts()

    (late,) = momo.simulator.send_held_callbacks("twice")

    assert late["iska_status"] == [200, 200]
    assert (momo.billing.subscription(msisdn), momo.attempts()) == before
    (attempt,) = momo.attempts()
    contrary = momo.callback(attempt.reference, {"externalId": attempt.reference, "status": "FAILED"})
    assert contrary.status_code == 200 and contrary.json()["outcome"] == "already_settled"
    assert (momo.billing.subscription(msisdn), momo.attempts()) == before


def test_a_charge_nobody_answers_expires_after_pending_hours_and_cancels_nobody(momo):
    (msisdn,) = msisdns(1)
    momo.billing.subscribe({msisdn: DAILY})
    momo.billing.policy["max_tries"] = 1  # one decline would cancel: an expiry must not
    momo.simulator.configure(momo_script={msisdn: ["timeout"]})
    assert momo.run().success

    momo.minutes_pass(POLL_MINUTES + 1)
    assert "1 still pending" in momo.poll()
    momo.minutes_pass(PENDING_HOURS * 60)
    assert "1 expired" in momo.poll()

    (attempt,) = momo.attempts()
    assert (attempt.outcome, attempt.settled_by) == ("expired", "poll")
    row = momo.billing.subscription(msisdn)
    assert (row.status, row.failed_billing_count, row.next_billing_date) == ("active", 0, today())
    with momo.billing.engine.connect() as connection:  # asked 24 h ago: today or up to 2 days back
        days = [
            billing_figures.day_figures(connection, today() - timedelta(days=n), TIMEZONE) for n in range(3)
        ]
    assert sum(d["expired"] for d in days) == 1 and sum(d["declined"] + d["pending"] for d in days) == 0

    again = momo.run()  # due again: asked under the same reference, which the gateway holds

    assert again.success and metadata(again)["pending"] == 1
    assert momo.outcomes() == ["expired", "pending"]
    assert len({a.reference for a in momo.attempts()}) == 1
    counts = momo.simulator.billing_counts()
    assert (counts["requested"], counts["duplicates"]) == (1, 1)
    assert momo.simulator.charges() == {}


def test_a_charge_whose_answer_was_lost_is_found_by_its_reference_and_never_asked_again(momo):
    (msisdn,) = msisdns(1)
    momo.billing.subscribe({msisdn: DAILY})
    momo.simulator.configure(faults=["charge_then_timeout"], hang_seconds=1.0)

    result = momo.run(tries=2)  # the first try took the request; the second gets 409, then looks

    assert result.success
    (attempt,) = momo.attempts()
    assert (attempt.outcome, attempt.settled_by, attempt.http_status) == ("success", "request", 200)
    assert attempt.response_excerpt.startswith("409, asked before")
    counts = momo.simulator.billing_counts()
    assert (counts["requested"], counts["duplicates"], counts["lookups"]) == (1, 1, 1)
    assert momo.simulator.charges() == {msisdn: 1}
    assert momo.simulator.send_held_callbacks()[0]["iska_status"] == [200]  # late: changes nothing
    assert momo.outcomes() == ["success"]


def test_a_refused_token_stops_the_run_naming_billing_token_and_the_poll_too(momo):
    subscribers = msisdns(3)
    momo.billing.subscribe({m: DAILY for m in subscribers})

    refused = momo.run(token="not-the-token", concurrency=1)

    assert "BILLING_TOKEN" in failure_message(refused)
    assert metadata(refused)["not_sent"] == 2
    assert momo.simulator.momo_requests() == {}
    assert momo.run().success
    momo.minutes_pass(POLL_MINUTES + 1)
    try:
        momo.poll(token="not-the-token")
    except Exception as error:  # noqa: BLE001 - the tick fails, saying why
        assert "BILLING_TOKEN" in str(error)
    else:
        raise AssertionError("a poll with a refused token should fail its tick")
    assert momo.outcomes() == ["auth_error", "pending", "pending", "pending"]


def test_a_momo_gateway_outage_is_a_transport_error_and_cancels_nobody(momo):
    subscribers = msisdns(2)
    momo.billing.subscribe({m: DAILY for m in subscribers})
    momo.billing.policy["max_tries"] = 1
    momo.simulator.configure(error_rate=1.0)

    down = momo.run()

    assert "2 of 2 charges got no answer" in failure_message(down)
    assert momo.outcomes() == ["error", "error"]
    assert all(momo.billing.subscription(m).status == "active" for m in subscribers)
    momo.simulator.configure(error_rate=0.0)
    assert momo.run().success and momo.outcomes()[2:] == ["pending", "pending"]
    attempts = momo.attempts()
    assert {a.reference for a in attempts[:2]} == {a.reference for a in attempts[2:]}  # same intents


def test_billing_outcomes_the_status_page_and_iska_status_count_pending_and_expired_charges(momo):
    waiting, never = msisdns(2)
    momo.billing.subscribe({waiting: DAILY, never: DAILY})
    momo.simulator.configure(momo_script={never: ["timeout"]})
    assert momo.run().success
    _day, reported = latest(momo.billing.instance, "billing_outcomes")  # written by the run itself
    assert (reported["pending"], reported["expired"], reported["charged"]) == (2, 0, 0)
    momo.simulator.send_held_callbacks("lost")
    momo.minutes_pass(PENDING_HOURS * 60 + POLL_MINUTES + 1)
    momo.poll()  # one paid (the lookup says so), one expired
    # back to when they were asked (today: the page counts today's charges)
    momo.minutes_pass(-(PENDING_HOURS * 60 + POLL_MINUTES + 1))

    status = requests.get(f"{momo.api.base_url}/status", timeout=10).json()["billing"]
    page = requests.get(f"{momo.api.base_url}/", timeout=10).text
    terminal = status_text(snapshot(momo.billing.engine, utcnow(), HealthRules(timezone=TIMEZONE)))

    assert (status["charged"], status["pending"], status["expired"], status["declined"]) == (1, 0, 1, 0)
    assert '<div class="tile" data-figure="billing.expired"><b>1</b><span>expired</span>' in page
    assert "awaiting the payer 0  expired 1" in terminal
