"""The SMS gateway client (SPEC §7): round robin over SMS_URLS, failover, retries, one msgid.

A *try* of a message starts at the next URL in round-robin order and walks on to the next URL
at once when one refuses the connection or answers 429, until some gateway answers. An answer
other than `{"status": "accepted"}` (or every URL unreachable) fails the try; the message is
tried again after an exponential backoff with jitter (honouring `Retry-After`), up to
`max_tries` tries, always with the same msgid so a gateway can recognise a repeat. 401/403
means the token is wrong for every message: sending stops with `SmsAuthError`.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

ERROR_EXCERPT = 300


class SmsAuthError(RuntimeError):
    """The gateway refused SMS_TOKEN; no message can go out until it is fixed."""


@dataclass(frozen=True)
class OutgoingSms:
    msgid: str
    msisdn: str
    text: str
    callback: str


@dataclass(frozen=True)
class SmsOutcome:
    msgid: str
    accepted: bool
    tries: int
    gateway: str | None
    error: str | None = None


def pooled_session(pool_size: int) -> requests.Session:
    """One keep-alive pool per gateway host, as many connections as concurrent senders."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def backoff_seconds(try_number: int, base: float, cap: float, retry_after: float | None) -> float:
    """Exponential backoff with jitter; a gateway's Retry-After is a floor, not a suggestion."""
    delay = min(cap, base * 2 ** (try_number - 1)) * random.uniform(0.5, 1.0)
    return max(delay, min(retry_after, cap)) if retry_after is not None else delay


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _accepted(response: requests.Response) -> bool:
    if response.status_code != 200:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == "accepted"


def _excerpt(response: requests.Response) -> str:
    return f"HTTP {response.status_code}: {response.text[:ERROR_EXCERPT].strip()}"


class SmsClient:
    def __init__(self, urls: Sequence[str], token: str, *, max_tries: int = 5,
                 concurrency: int = 32, timeout_seconds: float = 10.0,
                 backoff_base_seconds: float = 0.5, backoff_cap_seconds: float = 30.0,
                 self_callback: bool = False) -> None:
        if not urls:
            raise ValueError("no SMS gateway URL given (SMS_URLS)")
        self.urls = list(urls)
        self.token = token
        self.max_tries = max_tries
        self.concurrency = concurrency
        self.timeout = (min(3.05, timeout_seconds), timeout_seconds)
        self.backoff_base = backoff_base_seconds
        self.backoff_cap = backoff_cap_seconds
        self.self_callback = self_callback
        self.session = pooled_session(concurrency)
        self._turn = itertools.count()  # next() on a count is atomic under the GIL

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "SmsClient":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def send(self, message: OutgoingSms) -> SmsOutcome:
        """Try one message until accepted or out of tries."""
        payload = {"msisdn": message.msisdn, "msgid": message.msgid, "text": message.text,
                   "callback": message.callback}
        error, gateway = "not tried", None
        for try_number in range(1, self.max_tries + 1):
            accepted, gateway, error, retry_after = self._try_once(payload)
            if accepted:
                if self.self_callback:
                    self._report_delivered(message)
                return SmsOutcome(message.msgid, True, try_number, gateway)
            if try_number < self.max_tries:
                time.sleep(backoff_seconds(try_number, self.backoff_base, self.backoff_cap, retry_after))
        return SmsOutcome(message.msgid, False, self.max_tries, gateway, error)

    def _try_once(self, payload: dict) -> tuple[bool, str | None, str, float | None]:
        """One try: walk the URLs from the next turn until one of them answers."""
        start = next(self._turn)
        error, retry_after, url = "", None, None
        for hop in range(len(self.urls)):
            url = self.urls[(start + hop) % len(self.urls)]
            try:
                response = self.session.post(url, json=payload, headers={"Auth-Key": self.token},
                                             timeout=self.timeout)
            except requests.ConnectionError as failure:  # includes connect timeouts: next URL
                error = f"{url}: connection failed: {str(failure)[:ERROR_EXCERPT]}"
                continue
            except requests.RequestException as failure:  # read timeout: it may have arrived
                return False, url, f"{url}: {type(failure).__name__}: {str(failure)[:ERROR_EXCERPT]}", None
            if response.status_code in (401, 403):
                raise SmsAuthError(f"{url} refused SMS_TOKEN ({_excerpt(response)}); check SMS_TOKEN")
            if response.status_code == 429:
                error, retry_after = f"{url}: {_excerpt(response)}", _retry_after(response)
                continue
            if _accepted(response):
                return True, url, "", None
            return False, url, f"{url}: {_excerpt(response)}", _retry_after(response)
        return False, url, error, retry_after

    def _report_delivered(self, message: OutgoingSms) -> None:
        """SELF_CALLBACK: stand in for the gateway and report the message delivered."""
        try:
            self.session.post(message.callback, json={"msgid": message.msgid, "status": "delivered"},
                              timeout=self.timeout)
        except requests.RequestException:
            pass  # the message stays `accepted`; expiry or a re-report settles it

    def send_all(self, messages: Iterable[OutgoingSms]) -> Iterator[SmsOutcome]:
        """Send concurrently (`concurrency` threads); outcomes in completion order.

        At most a few times `concurrency` messages are in flight, so memory stays flat for a
        batch of any size. An SmsAuthError stops the rest and is raised.
        """
        pending: set[Future] = set()
        source = iter(messages)
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="sms") as pool:
            try:
                for message in itertools.islice(source, self.concurrency * 2):
                    pending.add(pool.submit(self.send, message))
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield future.result()
                        following = next(source, None)
                        if following is not None:
                            pending.add(pool.submit(self.send, following))
            finally:
                for future in pending:
                    future.cancel()


def split_urls(value: str) -> list[str]:
    return [url.strip() for url in value.split(",") if url.strip()]
