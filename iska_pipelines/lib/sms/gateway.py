"""The SMS gateway client (SPEC §7, §17): round robin over the gateways, failover, retries, one msgid.

A *try* of a message starts at the next gateway in round-robin order and walks on to the next
one at once when it cannot connect to one (refused, or no connection within the timeout) or it
answers 429, until some gateway answers. Each gateway is spoken to in its own protocol
(lib/sms/protocols/), whose adapter builds the request and says whether the answer took the
message, refused it for good (a barred number: final, not retried) or decided nothing (tried
again after an exponential backoff with jitter, honouring `Retry-After`, up to `max_tries`
tries, always with the same msgid so a gateway can recognise a repeat). 401/403 means the
credentials are wrong for every message: sending stops with `SmsAuthError`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from iska_pipelines.lib.errors import ConfigurationError
from iska_pipelines.lib.http.client import Backoff, GatewayClient, Reply, Transport, with_retries
from iska_pipelines.lib.http.fanout import fan_out
from iska_pipelines.lib.http.pacing import NoCaps, Pacer, Pacers
from iska_pipelines.lib.regions.config import Gateway
from iska_pipelines.lib.sms.protocols import adapter_for
from iska_pipelines.lib.sms.protocols.base import Adapter, SendVerdict, Verdict


class SmsAuthError(RuntimeError):
    """The gateway refused SMS_TOKEN; no message can go out until it is fixed."""


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    msgid: str
    msisdn: str
    text: str
    callback: str


@dataclass(frozen=True, slots=True)
class SmsOutcome:
    msgid: str
    accepted: bool
    tries: int
    gateway: str | None
    error: str | None = None
    rejected: bool = False  # the gateway refused this message for good
    gateway_ref: str | None = None  # the gateway's own id of the message, when it gave one


def unreachable_or_throttled(reply: Reply) -> bool:
    """The answers that send a try on to the next URL at once: no connection (refused or
    connect timeout, see `Transport.post_json`) or 429."""
    return reply.status == 429 or reply.unreachable


def describe(url: str, reply: Reply) -> str:
    answer = f"HTTP {reply.status}: " if reply.status is not None else ""
    return f"{url}: {answer}{reply.excerpt.strip()}"


@dataclass(frozen=True)
class Route:
    """One gateway as the client calls it: its adapter, its secret and its pacer."""

    gateway: Gateway
    adapter: Adapter
    secret: str
    pacer: Pacer


def secret_of(gateway: Gateway, token: str, environ: Mapping[str, str] | None = None) -> str:
    """The gateway's password, API key or auth token: the variable its `secret_env` names, else
    `token` (SMS_TOKEN). A named variable that is unset is a configuration error."""
    if not gateway.secret_env:
        return token
    value = (os.environ if environ is None else environ).get(gateway.secret_env, "")
    if not value:
        raise ConfigurationError(
            f"{gateway.secret_env} is not set: the {gateway.protocol} gateway {gateway.url} takes its "
            "secret from it (secret_env in ISKA_REGIONS_FILE)"
        )
    return value


class SmsClient(GatewayClient):
    def __init__(
        self,
        gateways: Sequence[str | Gateway],
        token: str,
        *,
        max_tries: int = 5,
        concurrency: int = 32,
        timeout_seconds: float = 10.0,
        backoff_base_seconds: float = 0.5,
        backoff_cap_seconds: float = 30.0,
        max_retry_after_seconds: float = 300.0,
        self_callback: bool = False,
        pacers: Pacers | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if not gateways:
            raise ValueError("no SMS gateway URL given (SMS_URLS)")
        chosen = [g if isinstance(g, Gateway) else Gateway(g) for g in gateways]
        self.urls = [g.url for g in chosen]
        self.token = token
        self.concurrency = concurrency
        self.timeout_seconds = timeout_seconds
        self.backoff = Backoff(
            tries=max_tries,
            base_seconds=backoff_base_seconds,
            cap_seconds=backoff_cap_seconds,
            max_retry_after_seconds=max_retry_after_seconds,
        )
        self.self_callback = self_callback
        self.transport = Transport(concurrency, timeout_seconds)
        paced = pacers or NoCaps()
        self._routes = [
            Route(g, adapter_for(g.protocol), secret_of(g, token, environ), paced.for_url(g.url))
            for g in chosen
        ]
        self._turn = itertools.count()  # next() on a count is atomic under the GIL

    def send(self, message: OutgoingSms) -> SmsOutcome:
        """Try one message until accepted or out of tries, always with its own msgid."""
        last = self._routes[0]
        verdict = SendVerdict(Verdict.RETRY)

        def one_try() -> Reply:
            nonlocal last, verdict
            last, reply, verdict = self._try_once(message)
            return reply

        reply, tries = with_retries(one_try, lambda _r: verdict.verdict is Verdict.RETRY, self.backoff)
        url = last.gateway.url
        if verdict.verdict is not Verdict.ACCEPTED:
            return SmsOutcome(
                message.msgid,
                False,
                tries,
                url,
                describe(url, reply),
                rejected=verdict.verdict is Verdict.REJECTED,
            )
        if self.self_callback:
            self._report_delivered(message)
        return SmsOutcome(message.msgid, True, tries, url, gateway_ref=verdict.gateway_ref)

    def _try_once(self, message: OutgoingSms) -> tuple[Route, Reply, SendVerdict]:
        """One try: walk the gateways from the next turn while they refuse or throttle."""
        start = next(self._turn)
        count = len(self._routes)
        for hop in range(count):
            route = self._routes[(start + hop) % count]
            wire = route.adapter.request(message, route.gateway, route.secret)
            route.pacer.wait()
            reply = self.transport.call(wire.method, wire.url, wire.body, wire.headers, wire.query)
            if route.adapter.refused_credentials(reply):
                raise SmsAuthError(
                    f"{describe(route.gateway.url, reply)}: the {route.adapter.name} gateway refused "
                    "its credentials; check SMS_TOKEN (or the gateway's secret_env) and username"
                )
            if reply.status == 429:
                route.pacer.throttled(reply.retry_after)
            if not unreachable_or_throttled(reply):
                break
        return route, reply, route.adapter.verdict(reply)

    def _report_delivered(self, message: OutgoingSms) -> None:
        """SELF_CALLBACK: stand in for the gateway and report the message delivered. A lost
        report leaves the message `accepted` (expired after 72 h), never resends it."""
        self.transport.post_json(message.callback, {"msgid": message.msgid, "status": "delivered"}, {})

    def send_batches(self, messages: Iterable[OutgoingSms]) -> Iterator[list[SmsOutcome]]:
        """Send concurrently (`concurrency` threads); outcomes in batches to write, in
        completion order. An SmsAuthError stops the rest and is raised after the outcomes of
        the messages already sent."""
        return fan_out(messages, self.send, concurrency=self.concurrency)

    def send_all(self, messages: Iterable[OutgoingSms]) -> Iterator[SmsOutcome]:
        """`send_batches`, one outcome at a time."""
        for batch in self.send_batches(messages):
            yield from batch


def split_urls(value: str) -> list[str]:
    return [url.strip() for url in value.split(",") if url.strip()]
