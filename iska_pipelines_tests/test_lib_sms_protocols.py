"""Each gateway protocol's adapter against the exact field names and status words of SPEC §17."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest
from twilio.request_validator import RequestValidator

from iska_pipelines.lib.http.client import Reply
from iska_pipelines.lib.regions.config import Gateway
from iska_pipelines.lib.sms.gateway import OutgoingSms
from iska_pipelines.lib.sms.protocols import ADAPTERS, adapter_for
from iska_pipelines.lib.sms.protocols.base import BadCallback, Callback, Verdict
from iska_pipelines.lib.sms.protocols.twilio import signed_by_twilio
from iska_pipelines.lib.sms.signing import sign
from iska_pipelines.lib.vocabulary import MessageStatus

SECRET = "callback-secret"
MSGID = "0b4cbe55-6c1e-4f51-9d47-1a2b3c4d5e6f"
CALLBACK = f"https://iska.example/subscriptions/api/v1/subscriptions/callback/?sig={sign(MSGID, SECRET)}"
GSM = OutgoingSms(MSGID, "233201234567", "Iska 07/12: next 24h 0.3, next 48h 0.6", CALLBACK)
TWI = OutgoingSms(MSGID, "233201234567", "Iska 07/12: nsuo bɛtɔ ɔkyena 30%", CALLBACK)


def gateway(protocol: str, url: str = "http://gw.example:13013", **fields: str) -> Gateway:
    return Gateway(
        url, protocol=protocol, username=fields.get("username", "iska"), sender=fields.get("sender", "1400")
    )


def reply(status: int | None, payload: object = None, text: str | None = None) -> Reply:
    body = text if text is not None else json.dumps(payload) if payload is not None else ""
    return Reply(status, body, payload)


# -- kannel ---------------------------------------------------------------------------------


def test_kannel_sends_a_sendsms_get_with_every_field_and_the_dlr_url_carrying_our_msgid():
    wire = ADAPTERS["kannel"].request(GSM, gateway("kannel"), "s3cret")
    fields = dict(parse_qsl(wire.query))
    assert (wire.method, wire.url, wire.body) == ("GET", "http://gw.example:13013/cgi-bin/sendsms", None)
    assert fields["username"] == "iska" and fields["password"] == "s3cret"
    assert (fields["to"], fields["from"], fields["text"]) == (GSM.msisdn, "1400", GSM.text)
    assert fields["dlr-mask"] == "27" and fields["charset"] == "utf-8" and "coding" not in fields
    dlr = urlsplit(fields["dlr-url"])
    query = parse_qs(dlr.query)
    assert (
        query["msgid"] == [MSGID]
        and query["protocol"] == ["kannel"]
        and query["sig"] == [sign(MSGID, SECRET)]
    )
    assert fields["dlr-url"].endswith("&status=%d")  # Kannel fills in the report type
    assert "%25d" in wire.query  # travels url-encoded, so Kannel receives a literal %d


def test_kannel_sends_a_text_gsm7_cannot_carry_as_ucs2():
    fields = dict(parse_qsl(ADAPTERS["kannel"].request(TWI, gateway("kannel"), "s").query))
    assert (fields["coding"], fields["charset"], fields["text"]) == ("2", "utf-8", TWI.text)


def test_a_full_sendsms_url_is_kept_as_it_is():
    wire = ADAPTERS["kannel"].request(GSM, gateway("kannel", "http://k:13013/cgi-bin/sendsms"), "s")
    assert wire.url == "http://k:13013/cgi-bin/sendsms"


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (reply(202, text="0: Accepted for delivery"), Verdict.ACCEPTED),
        (reply(202, text="3: Queued for later delivery"), Verdict.ACCEPTED),
        (reply(400, text="Missing receiver number"), Verdict.REJECTED),
        (reply(404, text="Not found"), Verdict.REJECTED),
        (reply(503, text="Temporal failure, try again later."), Verdict.RETRY),
        (reply(None), Verdict.RETRY),
        (reply(202, text="4: something else"), Verdict.RETRY),
    ],
)
def test_kannel_answers_mean_what_kannel_says(answer, verdict):
    assert ADAPTERS["kannel"].verdict(answer).verdict is verdict


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("1", MessageStatus.DELIVERED),
        ("2", MessageStatus.UNDELIVERED),
        ("16", MessageStatus.REJECTED),
        ("8", None),
        ("4", None),
    ],
)
def test_kannel_dlr_types_map_to_our_statuses(kind, status):
    [report] = ADAPTERS["kannel"].reports(Callback({"msgid": MSGID, "status": kind}))
    assert (report.msgid, report.status) == (MSGID, status)


@pytest.mark.parametrize(
    "query",
    [{"msgid": MSGID}, {"status": "1"}, {"msgid": MSGID, "status": "x"}, {"msgid": MSGID, "status": "3"}],
)
def test_a_malformed_kannel_dlr_is_refused(query):
    with pytest.raises(BadCallback):
        ADAPTERS["kannel"].reports(Callback(query))


def test_kannel_inbound_takes_the_sms_service_fields():
    [fields] = ADAPTERS["kannel"].inbound(Callback({"from": "+233201234567", "text": "STOP", "id": "k-1"}))
    assert fields == {"msisdn": "+233201234567", "text": "STOP", "id": "k-1"}


# -- africastalking -------------------------------------------------------------------------

AT_ANSWER = {
    "SMSMessageData": {
        "Message": "Sent to 1/1 Total Cost: GHS 0.0300",
        "Recipients": [
            {
                "statusCode": 101,
                "number": "+233201234567",
                "status": "Success",
                "cost": "GHS 0.0300",
                "messageId": "ATXid_1",
            }
        ],
    }
}


def test_africastalking_posts_a_form_with_the_api_key_header():
    wire = ADAPTERS["africastalking"].request(
        GSM, gateway("africastalking", "https://api.africastalking.com"), "key"
    )
    assert (wire.method, wire.url) == ("POST", "https://api.africastalking.com/version1/messaging")
    assert wire.headers["apiKey"] == "key" and wire.headers["Accept"] == "application/json"
    assert dict(parse_qsl(wire.body.decode())) == {
        "username": "iska",
        "to": "+233201234567",
        "message": GSM.text,
        "from": "1400",
    }


def at_answer(code: int) -> Reply:
    answer = json.loads(json.dumps(AT_ANSWER))
    answer["SMSMessageData"]["Recipients"][0]["statusCode"] = code
    return reply(201, answer)


@pytest.mark.parametrize("code", [100, 101, 102])
def test_africastalking_processed_sent_or_queued_is_accepted_with_its_message_id(code):
    verdict = ADAPTERS["africastalking"].verdict(at_answer(code))
    assert (verdict.verdict, verdict.gateway_ref) == (Verdict.ACCEPTED, "ATXid_1")


@pytest.mark.parametrize("code", [401, 402, 403, 404, 405, 406, 407])
def test_africastalking_refusals_of_the_number_are_rejected(code):
    assert ADAPTERS["africastalking"].verdict(at_answer(code)).verdict is Verdict.REJECTED


@pytest.mark.parametrize(
    "answer", [at_answer(500), at_answer(501), at_answer(502), reply(500, text="oops"), reply(201, {"x": 1})]
)
def test_africastalking_gateway_errors_are_retried(answer):
    assert ADAPTERS["africastalking"].verdict(answer).verdict is Verdict.RETRY


@pytest.mark.parametrize(
    ("said", "status"),
    [
        ("Success", MessageStatus.DELIVERED),
        ("Failed", MessageStatus.FAILED),
        ("Rejected", MessageStatus.FAILED),
        ("Sent", None),
        ("Submitted", None),
        ("Buffered", None),
    ],
)
def test_africastalking_reports_map_to_our_statuses_keyed_by_their_id(said, status):
    form = {
        "id": "ATXid_1",
        "status": said,
        "phoneNumber": "+233201234567",
        "networkCode": "62001",
        "failureReason": "UserInBlacklist" if status is MessageStatus.FAILED else "",
        "retryCount": "0",
    }
    [report] = ADAPTERS["africastalking"].reports(Callback({}, urlencode(form).encode()))
    assert (report.msgid, report.gateway_ref, report.status) == (None, "ATXid_1", status)
    assert report.detail == ("UserInBlacklist" if status is MessageStatus.FAILED else None)


@pytest.mark.parametrize(
    "form", [{"status": "Success"}, {"id": "ATXid_1"}, {"id": "ATXid_1", "status": "Lost"}]
)
def test_a_malformed_africastalking_report_is_refused(form):
    with pytest.raises(BadCallback):
        ADAPTERS["africastalking"].reports(Callback({}, urlencode(form).encode()))


def test_africastalking_inbound_takes_from_text_date_and_id():
    form = {
        "from": "+233201234567",
        "to": "1400",
        "text": "STOP",
        "date": "2026-12-07 10:00:00",
        "id": "u-1",
        "linkId": "l-1",
    }
    [fields] = ADAPTERS["africastalking"].inbound(Callback({}, urlencode(form).encode()))
    assert fields == {
        "msisdn": "+233201234567",
        "text": "STOP",
        "id": "u-1",
        "received_at": "2026-12-07 10:00:00",
    }


# -- twilio ---------------------------------------------------------------------------------


def test_twilio_posts_to_the_accounts_messages_with_basic_auth_and_a_status_callback():
    wire = ADAPTERS["twilio"].request(
        GSM, gateway("twilio", "https://api.twilio.com", username="AC123", sender="+15005550006"), "tok"
    )
    assert wire.url == "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
    assert wire.headers["Authorization"] == "Basic " + base64.b64encode(b"AC123:tok").decode()
    form = dict(parse_qsl(wire.body.decode()))
    assert (form["To"], form["From"], form["Body"]) == ("+233201234567", "+15005550006", GSM.text)
    query = parse_qs(urlsplit(form["StatusCallback"]).query)
    assert query["protocol"] == ["twilio"] and query["msgid"] == [MSGID]


@pytest.mark.parametrize(
    ("answer", "verdict", "ref"),
    [
        (reply(201, {"sid": "SM1", "status": "queued"}), Verdict.ACCEPTED, "SM1"),
        (
            reply(
                400, {"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400}
            ),
            Verdict.REJECTED,
            None,
        ),
        (reply(429, {"code": 20429, "message": "Too Many Requests", "status": 429}), Verdict.RETRY, None),
        (reply(503, text="busy"), Verdict.RETRY, None),
    ],
)
def test_twilio_answers(answer, verdict, ref):
    got = ADAPTERS["twilio"].verdict(answer)
    assert (got.verdict, got.gateway_ref) == (verdict, ref)


@pytest.mark.parametrize(
    ("said", "status"),
    [
        ("delivered", MessageStatus.DELIVERED),
        ("undelivered", MessageStatus.UNDELIVERED),
        ("failed", MessageStatus.FAILED),
        ("sent", None),
        ("queued", None),
    ],
)
def test_twilio_message_statuses_map_to_ours_with_the_error_code_kept(said, status):
    form = {"MessageSid": "SM1", "MessageStatus": said, "AccountSid": "AC123"}
    if status in (MessageStatus.UNDELIVERED, MessageStatus.FAILED):
        form["ErrorCode"] = "30003"
    [report] = ADAPTERS["twilio"].reports(Callback({"msgid": MSGID}, urlencode(form).encode()))
    assert (report.msgid, report.gateway_ref, report.status) == (MSGID, "SM1", status)
    assert report.detail == ("Twilio error 30003" if "ErrorCode" in form else None)


def test_twilio_signature_is_checked_with_twilios_own_validator():
    url = "https://iska.example/subscriptions/api/v1/subscriptions/callback/?protocol=twilio&msgid=m"
    form = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    good = RequestValidator("tok").compute_signature(url, form)
    body = urlencode(form).encode()
    assert signed_by_twilio(Callback({}, body, {"X-Twilio-Signature": good}, url), ["other", "tok"])
    assert not signed_by_twilio(Callback({}, body, {"X-Twilio-Signature": good}, url), ["other"])
    assert not signed_by_twilio(Callback({}, body, {}, url), ["tok"])
    tampered = urlencode({**form, "MessageStatus": "failed"}).encode()
    assert not signed_by_twilio(Callback({}, tampered, {"X-Twilio-Signature": good}, url), ["tok"])


def test_twilio_inbound_takes_from_body_and_message_sid():
    form = {
        "MessageSid": "SM9",
        "AccountSid": "AC123",
        "From": "+233201234567",
        "To": "+1500",
        "Body": "HELP",
        "NumMedia": "0",
    }
    [fields] = ADAPTERS["twilio"].inbound(Callback({}, urlencode(form).encode()))
    assert fields == {"msisdn": "+233201234567", "text": "HELP", "id": "SM9"}


# -- infobip --------------------------------------------------------------------------------


def test_infobip_posts_v3_messages_with_our_msgid_and_a_delivery_webhook():
    wire = ADAPTERS["infobip"].request(
        GSM, gateway("infobip", "https://xyz.api.infobip.com", sender="IskaWx"), "key"
    )
    assert (wire.url, wire.headers["Authorization"]) == (
        "https://xyz.api.infobip.com/sms/3/messages",
        "App key",
    )
    [message] = json.loads(wire.body)["messages"]
    assert message["sender"] == "IskaWx" and message["content"] == {"text": GSM.text}
    assert message["destinations"] == [{"to": GSM.msisdn, "messageId": MSGID}]
    assert parse_qs(urlsplit(message["webhooks"]["delivery"]["url"]).query)["protocol"] == ["infobip"]


def infobip_answer(group: str) -> Reply:
    return reply(
        200,
        {
            "bulkId": "b1",
            "messages": [
                {
                    "messageId": MSGID,
                    "destination": GSM.msisdn,
                    "status": {
                        "groupId": 1,
                        "groupName": group,
                        "id": 26,
                        "name": f"{group}_X",
                        "description": "...",
                    },
                }
            ],
        },
    )


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (infobip_answer("PENDING"), Verdict.ACCEPTED),
        (infobip_answer("REJECTED"), Verdict.REJECTED),
        (reply(500, text="x"), Verdict.RETRY),
        (reply(429, text="x"), Verdict.RETRY),
    ],
)
def test_infobip_answers(answer, verdict):
    assert ADAPTERS["infobip"].verdict(answer).verdict is verdict


def test_infobip_reports_come_many_a_post_and_map_by_group_name():
    groups = {
        "DELIVERED": MessageStatus.DELIVERED,
        "UNDELIVERABLE": MessageStatus.UNDELIVERED,
        "EXPIRED": MessageStatus.EXPIRED,
        "REJECTED": MessageStatus.REJECTED,
        "PENDING": None,
    }
    results = [
        {
            "bulkId": "b1",
            "messageId": f"m-{group}",
            "to": GSM.msisdn,
            "smsCount": 1,
            "status": {"groupId": 3, "groupName": group, "id": 5, "name": group},
            "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR"},
        }
        for group in groups
    ]
    reports = ADAPTERS["infobip"].reports(Callback({}, json.dumps({"results": results}).encode()))
    assert [(r.msgid, r.status) for r in reports] == [(f"m-{g}", s) for g, s in groups.items()]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"results": []}',
        b'{"results": [{"status": {"groupName": "DELIVERED"}}]}',
        b'{"results": [{"messageId": "m", "status": {"groupName": "LOST"}}]}',
    ],
)
def test_a_malformed_infobip_report_is_refused(body):
    with pytest.raises(BadCallback):
        ADAPTERS["infobip"].reports(Callback({}, body))


def test_infobip_inbound_takes_every_result():
    body = {
        "results": [
            {
                "messageId": "i1",
                "from": "233201234567",
                "to": "1400",
                "text": "STOP",
                "cleanText": "",
                "keyword": "STOP",
                "receivedAt": "2026-12-07T10:00:00.000+0000",
                "smsCount": 1,
            }
        ],
        "messageCount": 1,
        "pendingMessageCount": 0,
    }
    [fields] = ADAPTERS["infobip"].inbound(Callback({}, json.dumps(body).encode()))
    assert fields == {
        "msisdn": "233201234567",
        "text": "STOP",
        "id": "i1",
        "received_at": "2026-12-07T10:00:00.000+0000",
    }


# -- iska -----------------------------------------------------------------------------------


def test_iska_keeps_its_json_post():
    wire = adapter_for(None).request(GSM, Gateway("http://sim/sms/a"), "tok")
    assert (wire.method, wire.url, wire.headers["Auth-Key"]) == ("POST", "http://sim/sms/a", "tok")
    assert json.loads(wire.body) == {
        "msisdn": GSM.msisdn,
        "msgid": MSGID,
        "text": GSM.text,
        "callback": CALLBACK,
        "encoding": "gsm7",
    }


def test_an_unknown_protocol_names_the_known_ones():
    with pytest.raises(KeyError, match="kannel"):
        adapter_for("smpp")


def test_kannels_403_stops_sending_only_for_wrong_credentials():
    kannel = ADAPTERS["kannel"]
    wrong_password = reply(403, text="Authorization failed for sendsms")
    not_routable = reply(403, text="Not routable. Do not try again.")
    assert kannel.refused_credentials(wrong_password)
    assert not kannel.refused_credentials(not_routable)
    assert kannel.verdict(not_routable).verdict is Verdict.REJECTED


@pytest.mark.parametrize("protocol", ["iska", "africastalking", "twilio", "infobip"])
def test_a_401_means_wrong_credentials_for_the_hosted_protocols(protocol):
    assert ADAPTERS[protocol].refused_credentials(reply(401, {"message": "unauthorised"}))
