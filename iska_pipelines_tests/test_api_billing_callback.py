"""The MoMo callback route (SPEC §18): a signed callback settles its pending charge once; a bad
sig, an unreadable body or a body about another charge changes nothing; a PENDING callback, a
repeat and a callback for a reference ISKA never asked under answer 200 and change nothing.
The charges are asked by a real billing run against the simulator; the callbacks are made as
MoMo makes them. SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
import requests

from iska_pipelines.lib.billing.signing import MOMO_CALLBACK_PATH
from iska_pipelines.lib.sms.signing import sign
from iska_pipelines_tests.api_server import CALLBACK_SECRET, api_on_loopback, api_settings
from iska_pipelines_tests.test_defs_billing import DAILY, msisdns, today


@pytest.fixture
def pending(momo):
    """One daily subscriber whose charge is pending; its callback held back by the simulator."""
    (msisdn,) = msisdns(1)
    momo.billing.subscribe({msisdn: DAILY})
    assert momo.run().success
    (attempt,) = momo.attempts()
    assert attempt.outcome == "pending"
    return momo, msisdn, attempt.reference


def successful(reference: str) -> dict:
    return {
        "externalId": reference,
        "status": "SUCCESSFUL",
        "financialTransactionId": "6123",
        "amount": "0.20",
    }


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_a_signed_successful_callback_pays_the_charge(pending, method):
    momo, msisdn, reference = pending

    answer = momo.callback(reference, successful(reference), method=method)

    assert answer.status_code == 200 and answer.json()["outcome"] == "settled"
    (attempt,) = momo.attempts()
    assert (attempt.outcome, attempt.settled_by) == ("success", "callback")
    assert "6123" in attempt.response_excerpt
    assert momo.billing.subscription(msisdn).last_billing_date == today()


def test_a_failed_callback_declines_with_its_reason_and_a_repeat_changes_nothing(pending):
    momo, msisdn, reference = pending
    failed = {"externalId": reference, "status": "FAILED", "reason": {"code": "APPROVAL_REJECTED"}}

    first = momo.callback(reference, failed)
    before = momo.billing.subscription(msisdn), momo.attempts()
    repeat = momo.callback(reference, failed)
    contrary = momo.callback(reference, successful(reference))

    assert first.json()["outcome"] == "settled" and first.json()["charge"] == "declined"
    assert repeat.status_code == contrary.status_code == 200
    assert repeat.json()["outcome"] == contrary.json()["outcome"] == "already_settled"
    assert (momo.billing.subscription(msisdn), momo.attempts()) == before
    assert momo.billing.subscription(msisdn).failed_billing_count == 1
    assert "APPROVAL_REJECTED" in momo.attempts()[0].response_excerpt


def test_a_bad_sig_is_refused_and_changes_nothing(pending):
    momo, _msisdn, reference = pending

    forged = momo.callback(reference, successful(reference), sig="0" * 64)
    other = str(uuid.uuid4())
    borrowed = momo.callback(reference, successful(reference), sig=sign(other, CALLBACK_SECRET))

    assert forged.status_code == borrowed.status_code == 403
    assert [a.outcome for a in momo.attempts()] == ["pending"]


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1]", b'{"status": "DONE"}', b'{"status": "SUCCESSFUL", "externalId": "OTHER"}'],
    ids=["not_json", "not_an_object", "unknown_status", "another_reference"],
)
def test_an_unreadable_callback_is_refused_and_changes_nothing(pending, body):
    momo, _msisdn, reference = pending
    if b"OTHER" in body:
        body = body.replace(b"OTHER", str(uuid.uuid4()).encode())

    answer = requests.post(
        f"{momo.api.base_url}{MOMO_CALLBACK_PATH}",
        params={"ref": reference, "sig": sign(reference, CALLBACK_SECRET)},
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )

    assert answer.status_code == 422, answer.text
    assert [a.outcome for a in momo.attempts()] == ["pending"]


def test_a_pending_callback_changes_nothing(pending):
    momo, _msisdn, reference = pending
    answer = momo.callback(reference, {"externalId": reference, "status": "PENDING"})
    assert answer.status_code == 200 and answer.json()["outcome"] == "still_pending"
    assert [a.outcome for a in momo.attempts()] == ["pending"]


def test_a_callback_for_a_reference_never_asked_under_is_answered_and_ignored(pending):
    momo, _msisdn, _reference = pending
    stranger = str(uuid.uuid4())
    answer = momo.callback(stranger, successful(stranger))
    assert answer.status_code == 200 and answer.json()["outcome"] == "unknown_reference"
    assert [a.outcome for a in momo.attempts()] == ["pending"]


def test_the_callback_needs_no_api_token(pending, database_url, tmp_path):
    momo, _msisdn, reference = pending
    settings = api_settings(database_url, tmp_path / "locked", ISKA_API_TOKEN="a-long-api-token")
    with api_on_loopback(settings) as locked:
        assert requests.get(f"{locked.base_url}/status", timeout=10).status_code == 401
        answer = requests.post(
            f"{locked.base_url}{MOMO_CALLBACK_PATH}",
            params={"ref": reference, "sig": sign(reference, CALLBACK_SECRET)},
            json=successful(reference),
            timeout=10,
        )
    assert answer.status_code == 200 and answer.json()["outcome"] == "settled"
    assert [a.outcome for a in momo.attempts()] == ["success"]
