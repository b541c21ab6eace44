"""The MTN MoMo Collections client (`BILLING_PROTOCOL=momo`, SPEC §18): requesttopay and its
status lookup.

A charge is `POST {BILLING_URL}` under `X-Reference-Id` (derived from the intent, so every retry
and every re-run after a crash asks under the same one). MoMo answers 202 and asks the payer;
the result comes later by callback (lib/billing/callbacks.py) or by `GET {BILLING_URL}/{ref}`.
So the answers are:
- 202: the request exists, the payer has not answered: `pending`;
- 409: the reference exists already (an earlier try got through, or a killed run's did): look
  up its status and record that; never a new request, so never a second charge;
- 401/403: our credentials are wrong for every charge: `auth_error`, the run stops;
- connection errors, timeouts, 5xx, 429 (and a 2xx that is not 202): transient, retried with the
  same reference, then `error` (counts toward nothing, SPEC §6); any other 4xx: `error` at once
  (asking again would get the same answer).
A lookup answers SUCCESSFUL (`success`), FAILED (`declined`, with MoMo's reason) or PENDING.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from iska_pipelines.lib.billing.due import DueCharge
from iska_pipelines.lib.billing.gateway import ChargeResult
from iska_pipelines.lib.billing.prices import Price
from iska_pipelines.lib.billing.signing import momo_callback_url
from iska_pipelines.lib.http.client import Backoff, GatewayClient, Reply, Transport, with_retries
from iska_pipelines.lib.http.pacing import NoCaps, Pacers
from iska_pipelines.lib.settings import ConfigurationError
from iska_pipelines.lib.vocabulary import ChargeOutcome, MomoStatus, Plan

PAYER_MESSAGE: dict[str, str] = {
    Plan.DAILY: "ISKA weather SMS, 1 day",
    Plan.WEEKLY: "ISKA weather SMS, 1 week",
}
ACCEPTED = 202
EXISTS = 409
LOOKUP_OUTCOME = {
    MomoStatus.SUCCESSFUL: ChargeOutcome.SUCCESS,
    MomoStatus.FAILED: ChargeOutcome.DECLINED,
    MomoStatus.PENDING: ChargeOutcome.PENDING,
}


@dataclass(frozen=True, slots=True)
class MomoAccount:
    """What every MoMo call carries, and where the callbacks go."""

    url: str  # …/collection/v1_0/requesttopay
    token: str  # Authorization: Bearer
    target_environment: str  # X-Target-Environment: sandbox, mtnghana, …
    prices: Mapping[str, Price]  # per plan
    public_url: str  # ISKA_PUBLIC_URL: the API that receives the callbacks
    callback_secret: str
    subscription_key: str = ""  # Ocp-Apim-Subscription-Key; empty: not sent

    def headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}", "X-Target-Environment": self.target_environment}
        if self.subscription_key:
            headers["Ocp-Apim-Subscription-Key"] = self.subscription_key
        return headers


@dataclass(frozen=True, slots=True)
class Lookup:
    """What `GET …/requesttopay/{reference}` said: `success`, `declined`, `pending`, or
    `error`/`auth_error` when it said nothing usable."""

    outcome: ChargeOutcome
    http_status: int | None
    excerpt: str


def status_of(payload: object) -> tuple[MomoStatus | None, str]:
    """The `status` of a lookup answer or a callback body, and its `reason` as text (MoMo sends
    a code, or an object with `code` and `message`)."""
    if not isinstance(payload, dict):
        return None, ""
    try:
        status = MomoStatus(str(payload.get("status", "")).upper())
    except ValueError:
        return None, ""
    reason = payload.get("reason")
    if isinstance(reason, dict):
        reason = reason.get("code") or reason.get("message") or json.dumps(reason)
    return status, "" if reason is None else str(reason)


def request_body(charge: DueCharge, price: Price) -> dict[str, object]:
    """MoMo's requesttopay body, field for field; `externalId` is the reference (what a
    reconciliation report shows), `payeeNote` the Idempotency-Key ISKA keeps it under."""
    return {
        "amount": price.amount_text,
        "currency": price.currency,
        "externalId": charge.reference,
        "payer": {"partyIdType": "MSISDN", "partyId": charge.msisdn},
        "payerMessage": PAYER_MESSAGE.get(str(charge.plan), "ISKA weather SMS"),
        "payeeNote": charge.key,
    }


def _transient(reply: Reply) -> bool:
    return reply.status is None or reply.status == 429 or reply.status >= 500


def _request_transient(reply: Reply) -> bool:
    """Also a 2xx that is not MoMo's 202: asking again under the same reference is safe (it
    answers 202 or 409) and tells what the odd answer did not."""
    return _transient(reply) or (
        reply.status is not None and 200 <= reply.status < 300 and reply.status != ACCEPTED
    )


def _lookup_outcome(reply: Reply) -> ChargeOutcome | None:
    """None: worth another try (no answer, 429, 5xx, or a 200 we cannot read)."""
    if _transient(reply):
        return None
    if reply.status in (401, 403):
        return ChargeOutcome.AUTH_ERROR
    if reply.status == 200:
        status, _reason = status_of(reply.payload)
        return None if status is None else LOOKUP_OUTCOME[status]
    return ChargeOutcome.ERROR  # 404 and other 4xx: the gateway cannot say


class MomoClient(GatewayClient):
    """Thread-safe: one connection pool for the concurrent charges and lookups of a run."""

    asynchronous = True  # a charge may end `pending` and be settled later

    def __init__(
        self,
        account: MomoAccount,
        pool_size: int = 32,
        timeout_seconds: float = 10.0,
        backoff: Backoff | None = None,
        pacers: Pacers | None = None,
    ) -> None:
        if not account.url:
            raise ConfigurationError("BILLING_URL is not set (see .env-example)")
        if not account.token:
            raise ConfigurationError("BILLING_TOKEN is not set (see .env-example)")
        self.url = account.url
        self.account = account
        self._backoff = backoff or Backoff()
        self.transport = Transport(pool_size, timeout_seconds)
        self._pacer = (pacers or NoCaps()).for_url(account.url)

    def ask(self, charge: DueCharge) -> ChargeResult:
        """Request the charge under its reference; a 409 is answered by its status lookup."""
        price = self.account.prices[str(charge.plan)]
        reference = charge.reference
        headers = self.account.headers() | {
            "X-Reference-Id": reference,
            "X-Callback-Url": momo_callback_url(
                self.account.public_url, reference, self.account.callback_secret
            ),
        }
        body = request_body(charge, price)

        def one_try() -> Reply:
            self._pacer.wait()
            reply = self.transport.post_json(self.url, body, headers)
            if reply.status == 429:
                self._pacer.throttled(reply.retry_after)
            return reply

        reply, tries = with_retries(one_try, _request_transient, self._backoff)
        if reply.status == EXISTS:
            found = self.lookup(reference)
            excerpt = f"409, asked before; status lookup {found.http_status}: {found.excerpt}"
            return ChargeResult(found.outcome, found.http_status, excerpt, tries, reference)
        return ChargeResult(_request_outcome(reply), reply.status, reply.excerpt, tries, reference)

    def lookup(self, reference: str) -> Lookup:
        """`GET {BILLING_URL}/{reference}`, retried while it says nothing usable."""
        headers = self.account.headers()

        def one_try() -> Reply:
            self._pacer.wait()
            reply = self.transport.call("GET", self.url, None, headers, below=f"/{reference}")
            if reply.status == 429:
                self._pacer.throttled(reply.retry_after)
            return reply

        reply, _tries = with_retries(one_try, lambda r: _lookup_outcome(r) is None, self._backoff)
        return Lookup(_lookup_outcome(reply) or ChargeOutcome.ERROR, reply.status, reply.excerpt)


def _request_outcome(reply: Reply) -> ChargeOutcome:
    if reply.status == ACCEPTED:
        return ChargeOutcome.PENDING
    if reply.status in (401, 403):
        return ChargeOutcome.AUTH_ERROR
    return ChargeOutcome.ERROR  # the tries are used up, or a 4xx asking again would not change
