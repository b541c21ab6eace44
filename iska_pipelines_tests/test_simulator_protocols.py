"""The gateway simulator's SMS protocols as their clients see them (SPEC §9, §17): Kannel, Africa's
Talking, Twilio and Infobip at their real paths under `/sms/<name>`, a real server on 127.0.0.1,
with a real HTTP server on 127.0.0.1 receiving the delivery reports and inbound messages."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from twilio.request_validator import RequestValidator

from iska_pipelines_tests.polling import wait_for
from iska_pipelines_tests.simulator_server import SIMULATOR_TOKEN

GATEWAY = "gh1"
MSISDN = "233020000001"
E164 = f"+{MSISDN}"
ACCOUNT = "AC" + "0123456789abcdef" * 2
UCS2_TEXT = "Iska 31/12/2026: nsu dɔnhwerew 24 0.25 ☔"  # ɔ and ☔: GSM-7 carries neither


@dataclass(frozen=True)
class Received:
    """One request the receiver was sent, as it arrived."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, str]:
        return {name: values[-1] for name, values in parse_qs(urlsplit(self.url).query).items()}

    @property
    def form(self) -> dict[str, str]:
        return {
            name: values[-1] for name, values in parse_qs(self.body.decode(), keep_blank_values=True).items()
        }

    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """ISKA's side of the callbacks on 127.0.0.1: records every request and answers 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
                received.append(Received(self.command, url, dict(self.headers.items()), body))
                answer = b'{"status": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = _record

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int) -> list[Received]:
        return wait_for(lambda: len(self.received) >= count and list(self.received), seconds=10)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


@pytest.fixture
def sim(simulator):
    """The simulator with its reports due at once (they still go out after the answer's
    bookkeeping, from the report thread)."""
    simulator.configure(report_delay_seconds=0.0)
    return simulator


# --- each protocol's send, as ISKA's adapters make it ----------------------------------------


def kannel_send(
    sim, receiver=None, msgid="m-1", text="Iska", password=SIMULATOR_TOKEN, coding=None, charset="utf-8"
):
    params = {"username": "iska", "password": password, "to": MSISDN, "from": "ISKA", "text": text}
    params |= {"charset": charset, "dlr-mask": "27"}
    if receiver is not None:
        params["dlr-url"] = f"{receiver.url}?protocol=kannel&msgid={msgid}&sig=s1&status=%d"
    if coding is not None:
        params["coding"] = coding
    return requests.get(f"{sim.sms_url(GATEWAY)}/cgi-bin/sendsms", params=params, timeout=5)


def africastalking_send(sim, receiver=None, msgid=None, api_key=SIMULATOR_TOKEN, text="Iska"):
    """Africa's Talking takes no message id of ours: `msgid` goes nowhere."""
    form = {"username": "iska", "to": E164, "message": text, "from": "ISKA"}
    headers = {"apiKey": api_key, "Accept": "application/json"}
    return requests.post(f"{sim.sms_url(GATEWAY)}/version1/messaging", data=form, headers=headers, timeout=5)


def twilio_send(sim, receiver=None, msgid="m-1", password=SIMULATOR_TOKEN, text="Iska"):
    form = {"To": E164, "From": "ISKA", "Body": text}
    if receiver is not None:
        form["StatusCallback"] = f"{receiver.url}?protocol=twilio&msgid={msgid}&sig=s1"
    url = f"{sim.sms_url(GATEWAY)}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    return requests.post(url, data=form, auth=(ACCOUNT, password), timeout=5)


def infobip_send(sim, receiver=None, msgid="m-1", key=SIMULATOR_TOKEN, text="Iska", scheme="App"):
    message: dict = {
        "sender": "ISKA",
        "destinations": [{"to": MSISDN, "messageId": msgid}],
        "content": {"text": text},
    }
    if receiver is not None:
        message["webhooks"] = {"delivery": {"url": f"{receiver.url}?protocol=infobip&sig=s2"}}
    headers = {"Authorization": f"{scheme} {key}"}
    return requests.post(
        f"{sim.sms_url(GATEWAY)}/sms/3/messages", json={"messages": [message]}, headers=headers, timeout=5
    )


SENDS: dict[str, Callable[..., requests.Response]] = {
    "kannel": kannel_send,
    "africastalking": africastalking_send,
    "twilio": twilio_send,
    "infobip": infobip_send,
}


def sms_stats(sim) -> dict:
    return sim.stats()["sms"]


# --- Kannel ------------------------------------------------------------------------------------


def test_kannel_accepts_with_202_and_gets_the_dlr_url_with_8_then_1(sim, receiver):
    answer = kannel_send(sim, receiver)
    assert answer.status_code == 202
    assert answer.text == "0: Accepted for delivery"
    first, final = receiver.wait_for(2)
    assert [first.method, final.method] == ["GET", "GET"]
    assert [first.query["status"], final.query["status"]] == ["8", "1"]
    assert final.query == {"protocol": "kannel", "msgid": "m-1", "sig": "s1", "status": "1"}
    stats = sms_stats(sim)
    assert stats["messages"] == {MSISDN: 1}
    assert stats["texts"] == {MSISDN: "Iska"}
    assert stats["counts"][f"via_{GATEWAY}"] == 1
    assert wait_for(lambda: sms_stats(sim)["reports"].get("sent") == 2)


@pytest.mark.parametrize(("status", "kinds"), [("undelivered", ["8", "2"]), ("rejected", ["16"])])
def test_kannel_reports_a_final_status_as_its_dlr_type(sim, receiver, status, kinds):
    sim.configure(report_statuses={status: 1.0})
    assert kannel_send(sim, receiver).status_code == 202
    reports = receiver.wait_for(len(kinds))
    assert [r.query["status"] for r in reports] == kinds


def test_a_repeated_kannel_message_gets_the_first_answer_and_is_sent_once(sim, receiver):
    first, again = kannel_send(sim, receiver), kannel_send(sim, receiver)
    assert (again.status_code, again.text) == (first.status_code, first.text)
    assert sms_stats(sim)["messages"] == {MSISDN: 1}
    assert sms_stats(sim)["counts"]["replays"] == 1
    assert kannel_send(sim, receiver, msgid="m-2").status_code == 202  # another msgid: another SMS
    assert sms_stats(sim)["messages"] == {MSISDN: 2}


def test_kannel_refuses_a_wrong_password_with_403(sim, receiver):
    answer = kannel_send(sim, receiver, password="wrong")
    assert (answer.status_code, answer.text) == (403, "Authorization failed for sendsms")
    assert sms_stats(sim)["messages"] == {}


def test_kannel_refuses_a_barred_subscriber_with_400(sim, receiver):
    sim.configure(sms_reject_rate=1.0)
    answer = kannel_send(sim, receiver)
    assert answer.status_code == 400
    assert answer.text == "Number(s) has/have been denied by white- and/or black-lists."
    assert sms_stats(sim)["rejected"] == {MSISDN: 1}
    assert sms_stats(sim)["messages"] == {}


@pytest.mark.parametrize("charset", ["utf-8", "UTF-16BE"])
def test_a_kannel_ucs2_text_is_kept_as_the_farmer_reads_it(sim, receiver, charset):
    text = UCS2_TEXT.encode(charset)  # the bytes in the declared charset
    assert kannel_send(sim, receiver, text=text, coding="2", charset=charset).status_code == 202
    assert sms_stats(sim)["texts"] == {MSISDN: UCS2_TEXT}
    assert sms_stats(sim)["segments"] == {MSISDN: 1}


def test_a_kannel_text_gsm7_cannot_carry_without_coding_2_is_refused_with_400(sim, receiver):
    assert kannel_send(sim, receiver, text=UCS2_TEXT).status_code == 400
    assert sms_stats(sim)["counts"]["bad_encoding"] == 1
    assert sms_stats(sim)["messages"] == {}


# --- Africa's Talking --------------------------------------------------------------------------


def test_africastalking_accepts_with_201_and_reports_to_the_account_callback(sim, receiver):
    sim.configure(africastalking_callback_url=f"{receiver.url}?protocol=africastalking&sig=s3")
    answer = africastalking_send(sim)
    assert answer.status_code == 201
    data = answer.json()["SMSMessageData"]
    assert data["Message"] == "Sent to 1/1 Total Cost: GHS 0.0300"
    (recipient,) = data["Recipients"]
    assert recipient["statusCode"] == 101 and recipient["status"] == "Success"
    assert recipient["number"] == E164 and recipient["cost"] == "GHS 0.0300"
    assert re.fullmatch(r"ATXid_[0-9a-f]{32}", recipient["messageId"])
    (report,) = receiver.wait_for(1)
    assert report.method == "POST" and report.query == {"protocol": "africastalking", "sig": "s3"}
    assert report.form == {
        "id": recipient["messageId"],
        "status": "Success",
        "phoneNumber": E164,
        "networkCode": "62001",
        "failureReason": "",
        "retryCount": "0",
    }
    assert sms_stats(sim)["messages"] == {MSISDN: 1}


def test_africastalking_reports_a_failure_with_its_reason(sim, receiver):
    sim.configure(africastalking_callback_url=receiver.url, report_statuses={"failed": 1.0})
    assert africastalking_send(sim).status_code == 201
    (report,) = receiver.wait_for(1)
    assert (report.form["status"], report.form["failureReason"]) == ("Failed", "DeliveryFailure")


def test_africastalking_has_no_message_id_of_ours_so_a_repeat_is_a_second_sms(sim):
    first, again = africastalking_send(sim).json(), africastalking_send(sim).json()
    ids = {r["messageId"] for answer in (first, again) for r in answer["SMSMessageData"]["Recipients"]}
    assert len(ids) == 2
    assert sms_stats(sim)["messages"] == {MSISDN: 2}


def test_africastalking_refuses_a_wrong_api_key_with_401(sim):
    answer = africastalking_send(sim, api_key="wrong")
    assert (answer.status_code, answer.text) == (401, "The supplied authentication is invalid")
    assert sms_stats(sim)["messages"] == {}


def test_africastalking_refuses_a_barred_subscriber_in_its_recipient_status(sim):
    sim.configure(sms_reject_rate=1.0)
    answer = africastalking_send(sim)
    assert answer.status_code == 201
    (recipient,) = answer.json()["SMSMessageData"]["Recipients"]
    assert (recipient["statusCode"], recipient["status"]) == (406, "UserInBlacklist")
    assert answer.json()["SMSMessageData"]["Message"].startswith("Sent to 0/1")
    assert sms_stats(sim)["rejected"] == {MSISDN: 1}


# --- Twilio ------------------------------------------------------------------------------------


def _signed_by(token: str, received: Received) -> bool:
    signature = received.headers.get("X-Twilio-Signature", "")
    return RequestValidator(token).validate(received.url, received.form, signature)


def test_twilio_accepts_with_201_and_posts_signed_status_callbacks(sim, receiver):
    answer = twilio_send(sim, receiver)
    assert answer.status_code == 201
    resource = answer.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", resource["sid"])
    assert resource["status"] == "queued" and resource["to"] == E164
    assert resource["account_sid"] == ACCOUNT and resource["body"] == "Iska"
    sent, delivered = receiver.wait_for(2)
    assert [sent.form["MessageStatus"], delivered.form["MessageStatus"]] == ["sent", "delivered"]
    for report in (sent, delivered):
        assert report.method == "POST" and report.query == {"protocol": "twilio", "msgid": "m-1", "sig": "s1"}
        assert _signed_by(SIMULATOR_TOKEN, report)
        assert not _signed_by("another-token", report)
    fields = delivered.form
    assert (fields["MessageSid"], fields["AccountSid"]) == (resource["sid"], ACCOUNT)
    assert (fields["From"], fields["To"]) == ("ISKA", E164)
    assert "ErrorCode" not in fields
    assert sms_stats(sim)["messages"] == {MSISDN: 1}


def test_twilio_reports_an_undelivered_message_with_its_error_code(sim, receiver):
    sim.configure(report_statuses={"undelivered": 1.0})
    assert twilio_send(sim, receiver).status_code == 201
    _, final = receiver.wait_for(2)
    assert (final.form["MessageStatus"], final.form["ErrorCode"]) == ("undelivered", "30003")
    assert _signed_by(SIMULATOR_TOKEN, final)


def test_a_repeated_twilio_message_gets_the_first_sid_and_is_sent_once(sim, receiver):
    first, again = twilio_send(sim, receiver), twilio_send(sim, receiver)
    assert again.status_code == 201 and again.json() == first.json()
    assert sms_stats(sim)["messages"] == {MSISDN: 1}
    assert sms_stats(sim)["counts"]["replays"] == 1


def test_twilio_refuses_a_wrong_auth_token_with_401(sim, receiver):
    answer = twilio_send(sim, receiver, password="wrong")
    assert answer.status_code == 401
    assert {k: answer.json()[k] for k in ("code", "message", "status")} == {
        "code": 20003,
        "message": "Authenticate",
        "status": 401,
    }
    assert sms_stats(sim)["messages"] == {}


def test_twilio_refuses_a_barred_subscriber_with_400(sim, receiver):
    sim.configure(sms_reject_rate=1.0)
    answer = twilio_send(sim, receiver)
    assert answer.status_code == 400
    assert answer.json()["code"] == 21610 and answer.json()["status"] == 400
    assert sms_stats(sim)["rejected"] == {MSISDN: 1}


# --- Infobip -----------------------------------------------------------------------------------


def test_infobip_accepts_as_pending_and_posts_results_to_the_webhook(sim, receiver):
    answer = infobip_send(sim, receiver)
    assert answer.status_code == 200
    (entry,) = answer.json()["messages"]
    assert (entry["messageId"], entry["destination"]) == ("m-1", MSISDN)
    assert entry["status"]["groupName"] == "PENDING" and entry["status"]["name"] == "PENDING_ACCEPTED"
    (report,) = receiver.wait_for(1)
    assert report.method == "POST" and report.query == {"protocol": "infobip", "sig": "s2"}
    (result,) = report.json()["results"]
    assert (result["messageId"], result["to"], result["bulkId"]) == ("m-1", MSISDN, answer.json()["bulkId"])
    assert result["status"]["groupName"] == "DELIVERED" and result["status"]["name"] == "DELIVERED_TO_HANDSET"
    assert result["error"]["groupName"] == "OK" and result["smsCount"] == 1
    for stamp in (result["sentAt"], result["doneAt"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", stamp)
    assert sms_stats(sim)["messages"] == {MSISDN: 1}


def test_a_repeated_infobip_message_id_gets_the_first_answer_and_is_sent_once(sim, receiver):
    first, again = infobip_send(sim, receiver), infobip_send(sim, receiver)
    assert again.json() == first.json()
    assert sms_stats(sim)["messages"] == {MSISDN: 1}
    assert sms_stats(sim)["counts"]["replays"] == 1


@pytest.mark.parametrize(("scheme", "key"), [("App", "wrong"), ("Basic", SIMULATOR_TOKEN)])
def test_infobip_refuses_a_wrong_app_key_with_401(sim, receiver, scheme, key):
    answer = infobip_send(sim, receiver, key=key, scheme=scheme)
    assert answer.status_code == 401
    assert answer.json()["requestError"]["serviceException"]["messageId"] == "UNAUTHORIZED"
    assert sms_stats(sim)["messages"] == {}


def test_infobip_refuses_a_barred_subscriber_as_rejected(sim, receiver):
    sim.configure(sms_reject_rate=1.0)
    (entry,) = infobip_send(sim, receiver).json()["messages"]
    assert entry["status"]["groupName"] == "REJECTED"
    assert sms_stats(sim)["rejected"] == {MSISDN: 1}


# --- the knobs every protocol shares -----------------------------------------------------------

UNAVAILABLE = {
    "kannel": lambda a: a.text == "Temporal failure, try again later.",
    "africastalking": lambda a: a.text != "",
    "twilio": lambda a: a.json()["code"] == 20503,
    "infobip": lambda a: a.json()["requestError"]["serviceException"]["messageId"] == "SERVICE_UNAVAILABLE",
}


@pytest.mark.parametrize("protocol", sorted(SENDS))
def test_the_error_rate_is_each_protocols_own_503(sim, receiver, protocol):
    sim.configure(error_rate=1.0)
    answer = SENDS[protocol](sim, receiver)
    assert answer.status_code == 503 and UNAVAILABLE[protocol](answer)
    assert sms_stats(sim)["messages"] == {}


@pytest.mark.parametrize("protocol", sorted(SENDS))
def test_throttling_is_a_429_with_retry_after_in_every_protocol(sim, receiver, protocol):
    sim.configure(throttle_rate=1.0, retry_after_seconds=7)
    answer = SENDS[protocol](sim, receiver)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"
    assert sms_stats(sim)["messages"] == {}


def test_one_gateway_name_counts_the_arrivals_and_sends_of_every_protocol(sim, receiver):
    for n, send in enumerate(SENDS.values()):
        assert send(sim, receiver, msgid=f"m-{n}").status_code in (200, 201, 202)
    assert len(sim.arrivals()[f"sms/{GATEWAY}"]) == len(SENDS)
    assert sms_stats(sim)["counts"][f"via_{GATEWAY}"] == len(SENDS)
    assert sms_stats(sim)["messages"] == {MSISDN: len(SENDS)}


# --- the simulator as a subscriber, in each protocol -------------------------------------------


def _text_in(sim, receiver, protocol: str | None, **extra) -> Received:
    sim.configure(inbound_url=f"{receiver.url}?token=T")
    body = {"msisdn": MSISDN, "text": "STOP now", "id": "in-1"} | extra
    if protocol is not None:
        body["protocol"] = protocol
    answer = requests.post(f"{sim.base_url}/simulator/inbound", json=body, timeout=15)
    assert answer.status_code == 200 and answer.json()["iska_status"] == 200
    (received,) = receiver.wait_for(1)
    return received


def test_an_inbound_sms_without_a_protocol_is_iska_json_as_before(sim, receiver):
    received = _text_in(sim, receiver, None)
    assert received.method == "POST" and received.query == {"token": "T"}
    body = received.json()
    assert {k: body[k] for k in ("msisdn", "text", "id")} == {
        "msisdn": MSISDN,
        "text": "STOP now",
        "id": "in-1",
    }
    assert "received_at" in body


def test_an_inbound_kannel_sms_is_the_get_url_with_from_text_and_id(sim, receiver):
    received = _text_in(sim, receiver, "kannel")
    assert received.method == "GET"
    assert received.query == {
        "token": "T",
        "protocol": "kannel",
        "from": MSISDN,
        "text": "STOP now",
        "id": "in-1",
    }


def test_an_inbound_africastalking_sms_is_a_form(sim, receiver):
    received = _text_in(sim, receiver, "africastalking")
    assert received.method == "POST" and received.query == {"token": "T", "protocol": "africastalking"}
    form = received.form
    assert {k: form[k] for k in ("from", "to", "text", "id", "networkCode")} == {
        "from": E164,
        "to": "1400",
        "text": "STOP now",
        "id": "in-1",
        "networkCode": "62001",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", form["date"]) and form["linkId"]


@pytest.mark.parametrize(("knob", "signer"), [("", SIMULATOR_TOKEN), ("twilio-secret", "twilio-secret")])
def test_an_inbound_twilio_sms_is_a_form_signed_with_the_auth_token(sim, receiver, knob, signer):
    sim.configure(twilio_auth_token=knob)
    received = _text_in(sim, receiver, "twilio")
    assert received.method == "POST" and received.query == {"token": "T", "protocol": "twilio"}
    form = received.form
    assert {k: form[k] for k in ("MessageSid", "From", "To", "Body", "NumMedia")} == {
        "MessageSid": "in-1",
        "From": E164,
        "To": "1400",
        "Body": "STOP now",
        "NumMedia": "0",
    }
    assert re.fullmatch(r"AC[0-9a-f]{32}", form["AccountSid"])
    assert _signed_by(signer, received)
    assert not _signed_by("another-token", received)


def test_an_inbound_infobip_sms_is_json_results(sim, receiver):
    received = _text_in(sim, receiver, "infobip")
    assert received.method == "POST" and received.query == {"token": "T", "protocol": "infobip"}
    body = received.json()
    (result,) = body["results"]
    assert (body["messageCount"], body["pendingMessageCount"]) == (1, 0)
    assert {
        k: result[k] for k in ("messageId", "from", "to", "text", "keyword", "cleanText", "smsCount")
    } == {
        "messageId": "in-1",
        "from": MSISDN,
        "to": "1400",
        "text": "STOP now",
        "keyword": "STOP",
        "cleanText": "now",
        "smsCount": 1,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", result["receivedAt"])


def test_an_inbound_sms_in_an_unknown_protocol_is_refused(sim, receiver):
    sim.configure(inbound_url=f"{receiver.url}?token=T")
    answer = requests.post(
        f"{sim.base_url}/simulator/inbound",
        json={"msisdn": MSISDN, "text": "STOP", "protocol": "smpp"},
        timeout=5,
    )
    assert answer.status_code == 400
    assert receiver.received == []
