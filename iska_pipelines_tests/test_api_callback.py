"""The delivery-report callback of SPEC §7–8 on the real API (uvicorn on 127.0.0.1)."""

from __future__ import annotations

import pytest
import requests

from iska_pipelines.api.server import check_bind
from iska_pipelines.lib.settings import ConfigurationError, Settings
from iska_pipelines.lib.sms.outbox import plan_outbox
from iska_pipelines.lib.sms.signing import CALLBACK_PATH, sign
from iska_pipelines_tests.sms_runs import run_sms_day
from iska_pipelines_tests.sms_world import (
    add_forecast,
    add_subscriber,
    last_successful_sms_date,
    message,
    messages,
    today,
)

MSISDN = "233010000801"


@pytest.fixture
def planned(engine):
    """One message for today in the outbox, not sent yet."""
    day = today()
    add_forecast(engine, 1, "0.3000", "0.6000")
    add_subscriber(engine, MSISDN, 1, day=day)
    with engine.begin() as connection:
        plan_outbox(
            connection,
            day,
            Settings.from_env({"ISKA_SMS_TEMPLATE": "Iska {date}: {fcat24}/{fcat48}"}).catalog(),
            30,
        )
    [row] = messages(engine, day)
    return row


def test_health_answers_ok(api):
    assert requests.get(f"{api.base_url}/health", timeout=5).json() == {"status": "ok"}


def test_delivered_then_a_late_failed_keeps_delivered(engine, api, planned):
    first = api.report(planned.msgid, "delivered")
    late = api.report(planned.msgid, "failed")
    again = api.report(planned.msgid, "delivered")

    assert [r.status_code for r in (first, late, again)] == [200, 200, 200]
    assert first.json()["outcome"] == "applied"
    assert late.json() == {"msgid": planned.msgid, "outcome": "already_final", "status": "delivered"}
    stored = message(engine, planned.msgid)
    assert stored.status == "delivered" and stored.delivered_at is not None
    assert last_successful_sms_date(engine, MSISDN) == planned.send_date


def test_a_report_for_an_unknown_msgid_answers_200_and_changes_nothing(engine, api, planned, caplog):
    with caplog.at_level("WARNING", logger="iska.api.callback"):
        answer = api.report("00000000-0000-0000-0000-000000000000", "delivered")
    assert answer.status_code == 200 and answer.json()["outcome"] == "unknown_msgid"
    assert "unknown msgid 00000000-0000-0000-0000-000000000000" in caplog.text
    assert message(engine, planned.msgid).status == "pending"


@pytest.mark.parametrize("sig", ["", "0" * 64, "not-hex", sign("another-msgid", "test-callback-secret")])
def test_a_bad_sig_is_refused_with_403(engine, api, planned, sig):
    answer = api.report(planned.msgid, "delivered", sig=sig)
    assert answer.status_code == 403 and "sig" in answer.json()["detail"]
    assert message(engine, planned.msgid).status == "pending"
    assert last_successful_sms_date(engine, MSISDN) is None


def test_a_sig_made_with_another_secret_is_refused(engine, api, planned):
    answer = api.report(planned.msgid, "delivered", sig=sign(planned.msgid, "guessed-secret"))
    assert answer.status_code == 403


@pytest.mark.parametrize("body", [{"msgid": "x"}, {"status": "delivered"}, ["x"], "garbage"])
def test_a_malformed_report_is_422_not_500(api, body):
    answer = requests.post(
        f"{api.base_url}{CALLBACK_PATH}", params={"sig": sign("x", api.callback_secret)}, json=body, timeout=5
    )
    assert answer.status_code == 422 and "detail" in answer.json()


def test_an_unknown_status_is_422(engine, api, planned):
    answer = api.report(planned.msgid, "accepted")
    assert answer.status_code == 422
    assert message(engine, planned.msgid).status == "pending"


def test_a_report_that_arrives_before_the_send_call_returned_is_kept(
    engine, database_url, instance, api, simulator, planned
):
    # the gateway takes the message, reports it delivered at once, and leaves the send call
    # hanging; ISKA's call times out and its retry (same msgid) gets the stored "accepted"
    simulator.configure(charge_then_timeout_rate=1.0, hang_seconds=2, report_delay_seconds=0)

    run_sms_day(
        database_url,
        instance,
        planned.send_date,
        [simulator.sms_url("a")],
        public_url=api.base_url,
        callback_secret=api.callback_secret,
        timeout_seconds=1,
    )

    stored = message(engine, planned.msgid)
    assert (stored.status, stored.attempts) == ("delivered", 2)
    assert stored.accepted_at is not None and stored.delivered_at is not None
    assert last_successful_sms_date(engine, MSISDN) == planned.send_date
    stats = simulator.stats()["sms"]
    assert stats["messages"] == {MSISDN: 1} and stats["counts"]["replays"] == 1
    assert stats["reports"] == {"sent": 1}


def test_without_an_api_token_the_api_binds_to_loopback_only():
    settings = Settings.from_env({})
    check_bind("127.0.0.1", settings)
    check_bind("localhost", settings)
    check_bind("::1", settings)
    with pytest.raises(ConfigurationError, match="ISKA_API_TOKEN"):
        check_bind("0.0.0.0", settings)
    check_bind("0.0.0.0", settings.model_copy(update={"api_token": "s3cret"}))
