"""The simulator's MTN MoMo Collections as a MoMo client sees it (SPEC §9, §18): requesttopay
answered 202, a repeated reference 409 without a second charge, the status lookup, the payer's
answer after a delay, and the callback sent once, lost, twice, or held until a test sends it.
A real server on 127.0.0.1, and a real callback receiver."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from iska_pipelines_tests.polling import wait_for
from iska_pipelines_tests.simulator_server import SIMULATOR_TOKEN

MSISDN = "233024000001"


class Receiver:
    """ISKA's side of the callbacks: records each one (method, path with query, JSON body)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.calls.append((self.command, self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = do_POST

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/momo/callback/?ref="
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.server.shutdown()
    running.server.server_close()


def ask(simulator, receiver, reference=None, msisdn=MSISDN, token=SIMULATOR_TOKEN, **body):
    reference = reference or str(uuid.uuid4())
    answer = requests.post(
        simulator.momo_url,
        json={
            "amount": "0.20",
            "currency": "GHS",
            "externalId": reference,
            "payer": {"partyIdType": "MSISDN", "partyId": msisdn},
            "payerMessage": "ISKA weather SMS, 1 day",
            "payeeNote": "iska-1",
        }
        | body,
        headers={
            "Authorization": f"Bearer {token}",
            "X-Reference-Id": reference,
            "X-Target-Environment": "sandbox",
            "X-Callback-Url": receiver.url + reference,
        },
        timeout=5,
    )
    return reference, answer


def status(simulator, reference, token=SIMULATOR_TOKEN):
    return requests.get(
        f"{simulator.momo_url}/{reference}",
        headers={"Authorization": f"Bearer {token}", "X-Target-Environment": "sandbox"},
        timeout=5,
    )


def test_a_request_is_accepted_pending_then_the_payer_approves_and_the_callback_comes_once(
    simulator, receiver
):
    simulator.configure(momo_settle_seconds=0.3)
    reference, answer = ask(simulator, receiver)

    assert answer.status_code == 202
    assert status(simulator, reference).json()["status"] == "PENDING"
    wait_for(lambda: receiver.calls)

    settled = status(simulator, reference).json()
    assert settled["status"] == "SUCCESSFUL" and settled["externalId"] == reference
    assert settled["financialTransactionId"]
    [(method, path, body)] = receiver.calls
    assert method == "POST" and path.endswith(reference)
    assert body["status"] == "SUCCESSFUL" and body["referenceId"] == reference
    assert simulator.charges() == {MSISDN: 1}


def test_a_repeated_reference_is_409_and_charges_nobody_again(simulator, receiver):
    simulator.configure(momo_settle_seconds=0)
    reference, first = ask(simulator, receiver)
    _same, again = ask(simulator, receiver, reference=reference)

    assert (first.status_code, again.status_code) == (202, 409)
    assert again.json()["code"] == "RESOURCE_ALREADY_EXIST"
    assert simulator.charges() == {MSISDN: 1}
    assert simulator.billing_counts()["duplicates"] == 1


def test_a_declining_payer_fails_with_a_reason_and_one_who_never_answers_stays_pending(simulator, receiver):
    simulator.configure(momo_settle_seconds=0, momo_script={MSISDN: ["decline", "timeout"]})
    declined, _ = ask(simulator, receiver)
    never, _ = ask(simulator, receiver)

    failed = status(simulator, declined).json()
    assert (failed["status"], failed["reason"]) == ("FAILED", "NOT_ENOUGH_FUNDS")
    assert status(simulator, never).json()["status"] == "PENDING"
    wait_for(lambda: receiver.calls)
    assert [body["externalId"] for _m, _p, body in receiver.calls] == [declined]
    assert simulator.stats()["billing"]["declines"] == {MSISDN: 1}
    assert simulator.charges() == {}


def test_a_callback_can_be_lost_or_sent_twice_on_purpose(simulator, receiver):
    simulator.configure(momo_settle_seconds=0, momo_script={MSISDN: ["approve lost", "approve twice"]})
    lost, _ = ask(simulator, receiver)
    twice, _ = ask(simulator, receiver)

    wait_for(lambda: len(receiver.calls) == 2)
    assert [body["externalId"] for _m, _p, body in receiver.calls] == [twice, twice]
    assert status(simulator, lost).json()["status"] == "SUCCESSFUL"  # the lookup still tells
    assert simulator.billing_counts()["callbacks_lost"] == 1


def test_held_callbacks_go_when_the_test_sends_them_with_the_fates_it_chooses(simulator, receiver):
    simulator.configure(momo_settle_seconds=0, momo_hold_callbacks=True)
    first, _ = ask(simulator, receiver)
    second, _ = ask(simulator, receiver, msisdn="233024000002")
    assert receiver.calls == [] and simulator.stats()["billing"]["held_callbacks"] == [first, second]

    sent = simulator.send_held_callbacks("lost", "twice")

    assert [(s["reference"], s["fate"], s["iska_status"]) for s in sent] == [
        (first, "lost", []),
        (second, "twice", [200, 200]),
    ]
    assert [body["externalId"] for _m, _p, body in receiver.calls] == [second, second]
    assert simulator.send_held_callbacks() == []


def test_the_lookup_of_a_reference_never_asked_is_404(simulator):
    answer = status(simulator, str(uuid.uuid4()))
    assert answer.status_code == 404 and answer.json()["code"] == "RESOURCE_NOT_FOUND"


def test_a_wrong_token_is_401_for_the_request_and_the_lookup(simulator, receiver):
    reference, answer = ask(simulator, receiver, token="wrong")
    assert answer.status_code == 401 and status(simulator, reference, token="wrong").status_code == 401
    assert simulator.momo_requests() == {}


@pytest.mark.parametrize(
    ("reference", "body"),
    [
        ("not-a-uuid", {}),
        (None, {"amount": 20}),
        (None, {"currency": "cedi"}),
        (None, {"payer": {"partyIdType": "EMAIL", "partyId": "a@b"}}),
    ],
    ids=["reference", "amount_not_text", "currency", "payer"],
)
def test_a_request_momo_would_refuse_is_400_and_asks_nobody(simulator, receiver, reference, body):
    _reference, answer = ask(simulator, receiver, reference=reference, **body)
    assert answer.status_code == 400
    assert simulator.momo_requests() == {}


def test_a_planned_fault_after_the_request_keeps_it_and_leaves_the_client_hanging(simulator, receiver):
    simulator.configure(momo_settle_seconds=0, faults=["charge_then_timeout"], hang_seconds=1.0)
    reference = str(uuid.uuid4())
    with pytest.raises(requests.Timeout):
        requests.post(
            simulator.momo_url,
            json={
                "amount": "1",
                "currency": "GHS",
                "externalId": reference,
                "payer": {"partyIdType": "MSISDN", "partyId": MSISDN},
            },
            headers={
                "Authorization": f"Bearer {SIMULATOR_TOKEN}",
                "X-Reference-Id": reference,
                "X-Target-Environment": "sandbox",
            },
            timeout=0.3,
        )
    assert status(simulator, reference).json()["status"] == "SUCCESSFUL"
    _same, again = ask(simulator, receiver, reference=reference)
    assert again.status_code == 409 and simulator.charges() == {MSISDN: 1}


def test_an_unknown_momo_ending_is_refused_by_the_admin_endpoint(simulator):
    answer = requests.post(
        f"{simulator.base_url}/admin/config", json={"momo_script": {MSISDN: ["approve maybe"]}}, timeout=5
    )
    assert answer.status_code == 422
