"""The SMS gateway client (SPEC §7): round robin over SMS_URLS, failover, retries, one msgid.

A *try* of a message starts at the next URL in round-robin order and walks on to the next URL
at once when it cannot connect to one (refused, or no connection within the timeout) or
it answers 429, until some gateway answers. An answer
other than `{"status": "accepted"}` (or every URL unreachable) fails the try; the message is
tried again after an exponential backoff with jitter (honouring `Retry-After`), up to
`max_tries` tries, always with the same msgid so a gateway can recognise a repeat. A gateway
that answers `{"status": "rejected"}` has decided about the message itself (e.g. a barred
number): that is final and not retried. 401/403 means the token is wrong for every message:
sending stops with `SmsAuthError`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from iska_pipelines.lib.http.client import Backoff, GatewayClient, Reply, Transport, with_retries
from iska_pipelines.lib.http.fanout import fan_out
from iska_pipelines.lib.http.pacing import NoCaps, Pacers
from iska_pipelines.lib.sms.encoding import encoding_of


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


def answered(reply: Reply) -> str | None:
    """The `status` of a well-formed 200 answer."""
    if reply.status == 200 and isinstance(reply.payload, dict):
        status = reply.payload.get("status")
        return status if isinstance(status, str) else None
    return None


def accepted(reply: Reply) -> bool:
    return answered(reply) == "accepted"


def settled(reply: Reply) -> bool:
    """Answers that end the message's tries: accepted, or rejected for good."""
    return answered(reply) in ("accepted", "rejected")


def unreachable_or_throttled(reply: Reply) -> bool:
    """The answers that send a try on to the next URL at once: no connection (refused or
    connect timeout, see `Transport.post_json`) or 429."""
    return reply.status == 429 or reply.unreachable


def describe(url: str, reply: Reply) -> str:
    answer = f"HTTP {reply.status}: " if reply.status is not None else ""
    return f"{url}: {answer}{reply.excerpt.strip()}"


class SmsClient(GatewayClient):
    def __init__(
        self,
        urls: Sequence[str],
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
    ) -> None:
        if not urls:
            raise ValueError("no SMS gateway URL given (SMS_URLS)")
        self.urls = list(urls)
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
        self._pacers = [(url, (pacers or NoCaps()).for_url(url)) for url in self.urls]
        self._headers = {"Auth-Key": token}
        self._turn = itertools.count()  # next() on a count is atomic under the GIL

    def send(self, message: OutgoingSms) -> SmsOutcome:
        """Try one message until accepted or out of tries, always with its own msgid."""
        payload = {
            "msisdn": message.msisdn,
            "msgid": message.msgid,
            "text": message.text,
            "callback": message.callback,
            "encoding": encoding_of(message.text),
        }
        last_url = self.urls[0]

        def one_try() -> Reply:
            nonlocal last_url
            last_url, reply = self._try_once(payload)
            return reply

        reply, tries = with_retries(one_try, lambda r: not settled(r), self.backoff)
        if not accepted(reply):
            return SmsOutcome(
                message.msgid, False, tries, last_url, describe(last_url, reply), rejected=settled(reply)
            )
        if self.self_callback:
            self._report_delivered(message)
        return SmsOutcome(message.msgid, True, tries, last_url)

    def _try_once(self, payload: dict[str, str]) -> tuple[str, Reply]:
        """One try: walk the URLs from the next turn while they refuse or throttle."""
        start = next(self._turn)
        count = len(self._pacers)
        for hop in range(count):
            url, pacer = self._pacers[(start + hop) % count]
            pacer.wait()
            reply = self.transport.post_json(url, payload, self._headers)
            if reply.status in (401, 403):
                raise SmsAuthError(f"{describe(url, reply)}: the gateway refused SMS_TOKEN; check SMS_TOKEN")
            if reply.status == 429:
                pacer.throttled(reply.retry_after)
            if not unreachable_or_throttled(reply):
                break
        return url, reply

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
