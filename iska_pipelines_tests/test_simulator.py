"""The gateway simulator as its clients see it: a real server on 127.0.0.1 (SPEC §9)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from iska_pipelines.lib.settings import ConfigurationError
from iska_pipelines.simulator.server import serve
from iska_pipelines_tests.simulator_server import SIMULATOR_TOKEN

HEADERS = {"Auth-Key": SIMULATOR_TOKEN}


def charge(simulator, msisdn="233020000001", key=None, plan=11, token=SIMULATOR_TOKEN, timeout=5.0):
    headers = {"Auth-Key": token} | ({"Idempotency-Key": key} if key else {})
    return requests.post(
        simulator.billing_url, json={"msisdn": msisdn, "sub_plan": plan}, headers=headers, timeout=timeout
    )


def test_a_charge_succeeds_and_is_counted_for_its_msisdn(simulator):
    answer = charge(simulator, key="k-1")
    assert answer.status_code == 200 and answer.json()["status"] == "success"
    assert simulator.charges() == {"233020000001": 1}


def test_a_repeated_idempotency_key_gets_the_same_answer_and_no_second_charge(simulator):
    first = charge(simulator, key="same").json()
    again = charge(simulator, key="same").json()
    assert again == first
    assert simulator.charges() == {"233020000001": 1}
    assert simulator.billing_counts()["replays"] == 1


def test_a_wrong_auth_key_is_refused_with_401_and_charges_nobody(simulator):
    assert charge(simulator, token="wrong").status_code == 401
    assert simulator.charges() == {}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"msisdn": 233, "sub_plan": 11}',
        b'{"msisdn": "233020000001", "sub_plan": 99}',
    ],
)
def test_a_malformed_charge_request_is_refused_with_422(simulator, body):
    answer = requests.post(simulator.billing_url, data=body, headers=HEADERS, timeout=5)
    assert answer.status_code == 422
    assert simulator.charges() == {}


def test_declines_are_the_same_for_an_msisdn_all_day(simulator):
    simulator.configure(decline_rate=0.5)
    msisdns = [f"2330200{i:05d}" for i in range(40)]
    first = {m: charge(simulator, m, key=f"a-{m}").json()["status"] for m in msisdns}
    again = {m: charge(simulator, m, key=f"b-{m}").json()["status"] for m in msisdns}
    assert first == again
    assert 0 < list(first.values()).count("failure") < len(msisdns)


def test_a_script_gives_an_msisdn_its_answers_in_order(simulator):
    simulator.configure(script={"233020000001": ["failure", "failure"]})
    answers = [charge(simulator, key=f"k-{i}").json()["status"] for i in range(3)]
    assert answers == ["failure", "failure", "success"]


def test_throttling_answers_429_with_retry_after(simulator):
    simulator.configure(throttle_rate=1.0, retry_after_seconds=7)
    answer = charge(simulator, key="k")
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "7"
    assert simulator.charges() == {}


def test_planned_faults_come_one_per_request_in_order(simulator):
    simulator.configure(faults=["5xx", "malformed", ""])
    assert charge(simulator, key="k").status_code == 503
    broken = charge(simulator, key="k")
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        broken.json()
    assert charge(simulator, key="k").json()["status"] == "success"
    assert simulator.charges() == {"233020000001": 1}


def test_a_charge_that_timed_out_after_charging_is_replayed_not_repeated(simulator):
    simulator.configure(faults=["charge_then_timeout"], hang_seconds=2)
    with pytest.raises(requests.Timeout):
        charge(simulator, key="k", timeout=0.3)
    assert charge(simulator, key="k").json()["status"] == "success"
    assert simulator.charges() == {"233020000001": 1}


def test_an_unknown_fault_is_refused_by_the_admin_endpoint(simulator):
    answer = requests.post(f"{simulator.base_url}/admin/config", json={"faults": ["gremlins"]}, timeout=5)
    assert answer.status_code == 422


class _Callbacks:
    """A delivery-report receiver on 127.0.0.1 that records what it is sent."""

    def __init__(self) -> None:
        self.reports: list[dict] = []
        self.arrived = threading.Event()
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                received.reports.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                received.arrived.set()

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callbacks():
    receiver = _Callbacks()
    yield receiver
    receiver.close()


def test_an_sms_is_accepted_once_and_its_delivery_report_is_posted(simulator, callbacks):
    simulator.configure(report_delay_seconds=0.05)
    message = {"msisdn": "233020000001", "msgid": "m-1", "text": "Iska", "callback": callbacks.url}
    first = requests.post(simulator.sms_url("primary"), json=message, headers=HEADERS, timeout=5)
    again = requests.post(simulator.sms_url("primary"), json=message, headers=HEADERS, timeout=5)
    assert first.json()["status"] == "accepted" and again.json() == first.json()
    assert callbacks.arrived.wait(timeout=5)
    assert callbacks.reports == [{"msgid": "m-1", "status": "delivered"}]
    assert simulator.stats()["sms"]["messages"] == {"233020000001": 1}


def test_sms_rejections_and_report_statuses_follow_the_knobs(simulator, callbacks):
    simulator.configure(sms_reject_rate=1.0)
    message = {"msisdn": "233020000001", "msgid": "m-1", "text": "Iska", "callback": callbacks.url}
    answer = requests.post(simulator.sms_url("backup"), json=message, headers=HEADERS, timeout=5)
    assert answer.json()["status"] == "rejected"
    assert simulator.stats()["sms"]["messages"] == {}
    simulator.configure(sms_reject_rate=0.0, report_delay_seconds=0.0, report_statuses={"expired": 1.0})
    message["msgid"] = "m-2"
    requests.post(simulator.sms_url("backup"), json=message, headers=HEADERS, timeout=5)
    assert callbacks.arrived.wait(timeout=5)
    assert callbacks.reports == [{"msgid": "m-2", "status": "expired"}]


def test_an_sms_without_auth_or_fields_is_refused(simulator):
    assert requests.post(simulator.sms_url(), json={}, timeout=5).status_code == 401
    assert (
        requests.post(simulator.sms_url(), json={"msisdn": "1"}, headers=HEADERS, timeout=5).status_code
        == 422
    )


def test_the_simulator_command_refuses_to_start_without_a_token(monkeypatch):
    monkeypatch.delenv("BILLING_TOKEN", raising=False)
    monkeypatch.delenv("SMS_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="BILLING_TOKEN"):
        serve("127.0.0.1", 0)


def test_the_simulator_command_names_a_bad_knob(monkeypatch):
    monkeypatch.setenv("BILLING_TOKEN", "t")
    monkeypatch.setenv("ISKA_SIM_DECLINE_RATE", "2")
    with pytest.raises(ConfigurationError, match="ISKA_SIM_DECLINE_RATE"):
        serve("127.0.0.1", 0)


@pytest.mark.parametrize(
    ("text", "declared", "status"),
    [
        ("Iska 31/12/2026: nsu dɔnhwerew 24 0.25", "gsm7", 400),  # ɔ: GSM-7 cannot carry it
        ("Iska 31/12/2026: nsu dɔnhwerew 24 0.25", "ucs2", 200),
        ("Iska 2026-12-31: next 24h 0.25 {€}", "gsm7", 200),
        ("Iska", "utf8", 400),
        ("Iska", None, 200),  # an older client that declares nothing
    ],
)
def test_the_declared_encoding_is_checked_against_the_text(simulator, callbacks, text, declared, status):
    message = {"msisdn": "233020000001", "msgid": "m-1", "text": text, "callback": callbacks.url}
    if declared is not None:
        message["encoding"] = declared
    answer = requests.post(simulator.sms_url(), json=message, headers=HEADERS, timeout=5)
    assert answer.status_code == status
    counts = simulator.stats()["sms"]["counts"]
    assert counts.get("bad_encoding", 0) == (status == 400)
    assert simulator.stats()["sms"]["messages"] == ({} if status == 400 else {"233020000001": 1})


def test_stats_report_the_segments_and_the_text_each_msisdn_was_sent(simulator, callbacks):
    texts = {"233020000001": "a" * 161, "233020000002": "ɛ" * 70, "233020000003": "ɛ" * 135}
    for n, (msisdn, text) in enumerate(texts.items()):
        encoding = "gsm7" if text.isascii() else "ucs2"
        message = {
            "msisdn": msisdn,
            "msgid": f"m-{n}",
            "text": text,
            "callback": callbacks.url,
            "encoding": encoding,
        }
        assert requests.post(simulator.sms_url(), json=message, headers=HEADERS, timeout=5).status_code == 200
    sms = simulator.stats()["sms"]
    assert sms["segments"] == {"233020000001": 2, "233020000002": 1, "233020000003": 3}
    assert sms["counts"]["segments"] == 6
    assert sms["texts"] == texts
