"""The billing gateway client: one charge, classified as SPEC §6 says.

success / declined are the gateway's answers (a `{"status": "failure"}` body is a decline with
200, 402 or any other 4xx but 401/403/429); `auth_error` (401/403) means our token is wrong
and nothing else will work either; everything else is a transport `error`: connection failures,
timeouts, 5xx, 429 and unparseable bodies are retried here with the same Idempotency-Key, so a
gateway that honours it charges at most once however many times we ask.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from iska_pipelines.lib.billing.due import DueCharge
from iska_pipelines.lib.http.client import Backoff, GatewayClient, Reply, Transport, with_retries
from iska_pipelines.lib.http.pacing import NoCaps, Pacers
from iska_pipelines.lib.settings import ConfigurationError
from iska_pipelines.lib.vocabulary import ChargeOutcome


@dataclass(frozen=True, slots=True)
class ChargeResult:
    outcome: ChargeOutcome
    http_status: int | None
    excerpt: str
    tries: int  # 0: never sent (the charge could not even be asked for)
    reference: str | None = None  # the X-Reference-Id it was asked under (asynchronous gateways)

    @property
    def sent(self) -> bool:
        return self.tries > 0


def classify(reply: Reply) -> ChargeOutcome | None:
    """The outcome an answer settles, or None for a transient failure worth another try.

    `{"status": "failure"}` is a decline whatever the HTTP status (gateways answer declines with
    200 or 402), except 401/403 (our token), 429 and 5xx (the gateway's trouble, not a verdict).
    """
    if reply.status is None or reply.status == 429 or reply.status >= 500:
        return None
    if reply.status in (401, 403):
        return ChargeOutcome.AUTH_ERROR
    status = reply.payload.get("status") if isinstance(reply.payload, dict) else None
    if status == "failure":
        return ChargeOutcome.DECLINED
    if 200 <= reply.status < 300:
        if status == "success":
            return ChargeOutcome.SUCCESS
        return None  # a 2xx we cannot read: the charge may or may not have happened
    return ChargeOutcome.ERROR  # other 4xx: asking again would get the same answer


class Charger(Protocol):
    """What a billing run needs of a gateway client, whatever its protocol (SPEC §6, §18)."""

    url: str
    asynchronous: bool  # True: a charge may end `pending`, settled later by callback or poll

    def ask(self, charge: DueCharge) -> ChargeResult: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None: ...


class BillingClient(GatewayClient):
    """Thread-safe: one connection pool shared by all the concurrent charges of a run."""

    asynchronous = False

    def __init__(
        self,
        url: str,
        token: str,
        pool_size: int = 32,
        timeout_seconds: float = 10.0,
        backoff: Backoff | None = None,
        pacers: Pacers | None = None,
    ) -> None:
        if not url:
            raise ConfigurationError("BILLING_URL is not set (see .env-example)")
        if not token:
            raise ConfigurationError("BILLING_TOKEN is not set (see .env-example)")
        self.url = url
        self._token = token
        self._backoff = backoff or Backoff()
        self.transport = Transport(pool_size, timeout_seconds)
        self._pacer = (pacers or NoCaps()).for_url(url)

    def charge(self, msisdn: str, plan_code: int, idempotency_key: str) -> ChargeResult:
        headers = {"Auth-Key": self._token, "Idempotency-Key": idempotency_key}
        body = {"msisdn": msisdn, "sub_plan": plan_code}

        def one_try() -> Reply:
            self._pacer.wait()
            reply = self.transport.post_json(self.url, body, headers)
            if reply.status == 429:
                self._pacer.throttled(reply.retry_after)
            return reply

        reply, tries = with_retries(one_try, lambda r: classify(r) is None, self._backoff)
        return ChargeResult(classify(reply) or ChargeOutcome.ERROR, reply.status, reply.excerpt, tries)

    def ask(self, charge: DueCharge) -> ChargeResult:
        """One due charge, as every billing client is asked for it (lib/billing/run.py)."""
        return self.charge(charge.msisdn, charge.plan_code, charge.key)
