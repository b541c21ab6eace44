"""Delivery reports and inbound SMS in each gateway protocol on the real API (SPEC §17).

The API runs on 127.0.0.1; each test posts what the protocol's gateway posts, field for field,
and reads the outbox, the subscription and the inbound log after it. Malformed callbacks are
4xx and change nothing; a report for a message ISKA does not know is 200 and logged.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
import requests
from twilio.request_validator import RequestValidator

from iska_pipelines.api.access import INBOUND_PATH
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.sms.callbacks import protocol_sig
from iska_pipelines.lib.sms.delivery import record_outcomes
from iska_pipelines.lib.sms.gateway import SmsOutcome
from iska_pipelines.lib.sms.outbox import plan_outbox
from iska_pipelines.lib.sms.signing import CALLBACK_PATH, sign
from iska_pipelines_tests.api_server import CALLBACK_SECRET, api_on_loopback, api_settings
from iska_pipelines_tests.consent_world import INBOUND_TOKEN, subscribe
from iska_pipelines_tests.sms_world import add_forecast, add_subscriber, message, messages, today

MSISDN = "233010000901"
TWILIO_TOKEN = "twilio-auth-token"


@pytest.fixture
def api(database_url, data_dir):
    settings = api_settings(
        database_url,
        data_dir,
        SMS_PROTOCOL="twilio",
        SMS_TOKEN=TWILIO_TOKEN,
        ISKA_INBOUND_TOKEN=INBOUND_TOKEN,
    )
    with api_on_loopback(settings) as running:
        yield running


def planned(engine):
    """Today's message for one subscriber, planned, not sent yet."""
    day = today()
    add_forecast(engine, 1, "0.3000", "0.6000")
    add_subscriber(engine, MSISDN, 1, day=day)
    with engine.begin() as connection:
        plan_outbox(connection, day, Settings.from_env({}).catalog(), 30)
    [row] = messages(engine, day)
    return row


@pytest.fixture
def accepted(engine):
    """Today's message for one subscriber, accepted by a gateway that named it `GW-1`."""
    row = planned(engine)
    with engine.begin() as connection:
        record_outcomes(connection, [SmsOutcome(row.msgid, True, 1, "http://gw", gateway_ref="GW-1")])
    return message(engine, row.msgid)


def callback(api, **query: str) -> str:
    return f"{api.base_url}{CALLBACK_PATH}?{urlencode(query)}"


def for_message(msgid: str, protocol: str) -> dict[str, str]:
    return {"sig": sign(msgid, CALLBACK_SECRET), "protocol": protocol, "msgid": msgid}


def for_protocol(protocol: str) -> dict[str, str]:
    return {"protocol": protocol, "sig": protocol_sig(protocol, CALLBACK_SECRET)}


def kannel_dlr(api, msgid: str, status: str, **override: str) -> requests.Response:
    return requests.get(
        callback(api, **{**for_message(msgid, "kannel"), "status": status, **override}), timeout=10
    )


def test_a_kannel_dlr_8_changes_nothing_and_1_delivers(api, engine, accepted):
    first = kannel_dlr(api, accepted.msgid, "8")
    assert first.status_code == 200 and first.json()["outcome"] == "noted"
    assert message(engine, accepted.msgid).status == "accepted"

    final = kannel_dlr(api, accepted.msgid, "1")

    assert final.status_code == 200 and final.json()["outcome"] == "applied"
    row = message(engine, accepted.msgid)
    assert row.status == "delivered" and row.delivered_at is not None


@pytest.mark.parametrize(("kind", "status"), [("2", "undelivered"), ("16", "rejected")])
def test_a_kannel_dlr_2_or_16_is_final(api, engine, accepted, kind, status):
    assert kannel_dlr(api, accepted.msgid, kind).status_code == 200
    assert message(engine, accepted.msgid).status == status
    kannel_dlr(api, accepted.msgid, "1")  # a late contradictory report
    assert message(engine, accepted.msgid).status == status


def test_a_malformed_kannel_dlr_is_422_and_changes_nothing(api, engine, accepted):
    answer = kannel_dlr(api, accepted.msgid, "%d")  # the placeholder Kannel did not fill
    assert answer.status_code == 422 and "DLR type" in answer.json()["detail"]
    assert message(engine, accepted.msgid).status == "accepted"


def test_a_kannel_dlr_signed_for_another_msgid_is_403(api, engine, accepted):
    answer = kannel_dlr(api, accepted.msgid, "1", sig=sign("another", CALLBACK_SECRET))
    assert answer.status_code == 403
    assert message(engine, accepted.msgid).status == "accepted"


def test_a_kannel_dlr_for_an_unknown_msgid_is_200_and_logged(api, engine, accepted, caplog):
    answer = kannel_dlr(api, "00000000-0000-0000-0000-000000000000", "1")
    assert answer.status_code == 200 and answer.json()["outcome"] == "unknown_msgid"
    assert "unknown msgid" in caplog.text
    assert message(engine, accepted.msgid).status == "accepted"


def test_africastalking_reports_find_the_message_by_its_id_on_the_accounts_url(api, engine, accepted):
    form = {
        "id": "GW-1",
        "status": "Failed",
        "phoneNumber": f"+{MSISDN}",
        "failureReason": "UserInBlacklist",
        "retryCount": "0",
    }
    answer = requests.post(callback(api, **for_protocol("africastalking")), data=form, timeout=10)
    assert answer.status_code == 200 and answer.json()["msgid"] == accepted.msgid
    row = message(engine, accepted.msgid)
    assert (row.status, row.last_error) == ("failed", "UserInBlacklist")


def test_an_africastalking_report_that_overtakes_the_send_answer_is_applied_once_it_is_written(api, engine):
    """The report names an id no outcome has written yet (outcomes are written a batch at a
    time): it is kept, answered 200, and applied when the outcome naming that id is written."""
    row = planned(engine)
    form = {"id": "ATXid_early", "status": "Success", "phoneNumber": f"+{MSISDN}"}

    answer = requests.post(callback(api, **for_protocol("africastalking")), data=form, timeout=10)

    assert answer.status_code == 200 and answer.json()["outcome"] == "kept"
    assert message(engine, row.msgid).status == "pending"
    with engine.begin() as connection:
        record_outcomes(connection, [SmsOutcome(row.msgid, True, 1, "http://gw", gateway_ref="ATXid_early")])
    assert message(engine, row.msgid).status == "delivered"


def test_a_url_signed_for_one_protocol_does_not_speak_for_another(api, engine, accepted):
    form = {"id": "GW-1", "status": "Success"}
    url = callback(api, protocol="africastalking", sig=protocol_sig("infobip", CALLBACK_SECRET))
    assert requests.post(url, data=form, timeout=10).status_code == 403
    assert message(engine, accepted.msgid).status == "accepted"


def twilio_post(url: str, form: dict[str, str], token: str = TWILIO_TOKEN) -> requests.Response:
    signature = RequestValidator(token).compute_signature(url, form)
    return requests.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=10)


def test_a_twilio_status_callback_signed_by_twilio_is_applied(api, engine, accepted):
    url = callback(api, **for_message(accepted.msgid, "twilio"))
    form = {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30003", "AccountSid": "AC1"}
    answer = twilio_post(url, form)
    assert answer.status_code == 200
    row = message(engine, accepted.msgid)
    assert (row.status, row.last_error) == ("undelivered", "Twilio error 30003")


def test_a_twilio_status_callback_without_twilios_signature_is_403(api, engine, accepted):
    url = callback(api, **for_message(accepted.msgid, "twilio"))
    form = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    assert twilio_post(url, form, token="someone-else").status_code == 403
    assert requests.post(url, data=form, timeout=10).status_code == 403
    assert message(engine, accepted.msgid).status == "accepted"


def test_infobip_reports_many_messages_in_one_post(api, engine, accepted):
    results = [
        {
            "messageId": accepted.msgid,
            "status": {"groupName": "DELIVERED", "name": "DELIVERED_TO_HANDSET"},
            "error": {"groupName": "OK", "name": "NO_ERROR"},
        },
        {"messageId": "not-ours", "status": {"groupName": "DELIVERED"}},
    ]
    answer = requests.post(callback(api, **for_protocol("infobip")), json={"results": results}, timeout=10)
    assert answer.status_code == 200
    assert [r["outcome"] for r in answer.json()["results"]] == ["applied", "unknown_msgid"]
    assert message(engine, accepted.msgid).status == "delivered"


def test_a_malformed_infobip_report_is_422(api, engine, accepted):
    answer = requests.post(callback(api, **for_protocol("infobip")), data=b"{not json", timeout=10)
    assert answer.status_code == 422
    assert message(engine, accepted.msgid).status == "accepted"


def test_an_unknown_protocol_is_422(api, accepted):
    assert requests.get(callback(api, protocol="smpp", sig="x"), timeout=10).status_code == 422


# -- inbound ----------------------------------------------------------------------------------


def inbound(api, protocol: str) -> str:
    return f"{api.base_url}{INBOUND_PATH}?{urlencode({'token': INBOUND_TOKEN, 'protocol': protocol})}"


def subscription(api, msisdn: str) -> dict:
    [row] = requests.get(
        f"{api.base_url}/subscriptions/api/v1/subscriptions/", params={"msisdn": msisdn}, timeout=10
    ).json()["results"]
    return row


def test_a_stop_through_kannels_sms_service_opts_the_farmer_out(api, engine):
    subscribe(engine, MSISDN, day=today())
    answer = requests.get(inbound(api, "kannel") + f"&from=%2B{MSISDN}&text=STOP&id=k-1", timeout=10)
    assert answer.status_code == 200 and answer.json()["outcome"] == "opted_out"
    assert (subscription(api, MSISDN)["status"], subscription(api, MSISDN)["cancel_reason"]) == (
        "cancelled",
        "opt_out",
    )


def test_kannels_inbound_without_its_fields_is_422(api, engine):
    assert requests.get(inbound(api, "kannel") + "&from=%25p", timeout=10).status_code == 422


def test_the_inbound_token_is_required_for_every_protocol(api):
    url = f"{api.base_url}{INBOUND_PATH}?protocol=kannel&from={MSISDN}&text=STOP"
    assert requests.get(url, timeout=10).status_code == 403


def test_a_stop_from_africastalking_opts_the_farmer_out(api, engine):
    subscribe(engine, MSISDN, day=today())
    form = {
        "from": f"+{MSISDN}",
        "to": "1400",
        "text": "stop",
        "date": "2026-12-07 10:00:00",
        "id": "at-1",
        "linkId": "l1",
    }
    answer = requests.post(inbound(api, "africastalking"), data=form, timeout=10)
    assert answer.status_code == 200 and answer.json()["outcome"] == "opted_out"


def test_a_signed_twilio_inbound_is_answered_with_empty_twiml(api, engine):
    subscribe(engine, MSISDN, day=today())
    form = {
        "MessageSid": "SM9",
        "AccountSid": "AC1",
        "From": f"+{MSISDN}",
        "To": "+1500",
        "Body": "STOP",
        "NumMedia": "0",
    }
    answer = twilio_post(inbound(api, "twilio"), form)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/xml")
    assert "<Response>" in answer.text
    assert subscription(api, MSISDN)["status"] == "cancelled"


def test_an_unsigned_twilio_inbound_is_403_and_opts_nobody_out(api, engine):
    subscribe(engine, MSISDN, day=today())
    form = {"MessageSid": "SM9", "From": f"+{MSISDN}", "Body": "STOP"}
    assert requests.post(inbound(api, "twilio"), data=form, timeout=10).status_code == 403
    assert subscription(api, MSISDN)["status"] == "active"


def test_infobip_inbound_applies_every_result(api, engine):
    subscribe(engine, MSISDN, day=today())
    other = "233010000902"
    subscribe(engine, other, day=today())
    results = [
        {
            "messageId": f"ib-{n}",
            "from": who,
            "to": "1400",
            "text": "STOP",
            "receivedAt": "2026-12-07T10:00:00.000+0000",
            "smsCount": 1,
        }
        for n, who in enumerate((MSISDN, other))
    ]
    answer = requests.post(
        inbound(api, "infobip"), data=json.dumps({"results": results, "messageCount": 2}), timeout=10
    )
    assert answer.status_code == 200 and [r["outcome"] for r in answer.json()["results"]] == ["opted_out"] * 2
