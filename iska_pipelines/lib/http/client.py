"""The gateways' transport: JSON POSTs over urllib3's connection pool, and transport retries.

Billing and SMS calls use urllib3 directly rather than `requests` (which wraps the same pool):
`requests` spends about as much CPU per call again on its own objects (sessions, hooks, cookie
jars, redirect logic), and at 32 calls in flight under one GIL that CPU is the ceiling of a run
(SPEC §12). `requests` stays where its convenience matters and its cost does not (the API's
Dagster calls, tests).

A gateway call never raises: it yields a `Reply` that is either an HTTP answer or the reason
there was none (refused, timed out, reset). The caller decides which replies are worth another
try; `with_retries` waits between tries with exponential backoff and jitter, and never less than
the `Retry-After` the gateway asked for.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Self

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

EXCERPT_CHARS = 500
CONNECTION_FAILED = "connection failed"  # the prefix of every reply no gateway took


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP exchange: `status` is None when no answer came back (then `error` says why)."""

    status: int | None
    text: str = ""
    payload: object | None = None
    retry_after: float | None = None
    error: str | None = None

    @property
    def excerpt(self) -> str:
        return (self.error or self.text)[:EXCERPT_CHARS]

    @property
    def unreachable(self) -> bool:
        """Nobody took the call: refused, or no connection within the timeout."""
        return self.status is None and (self.error or "").startswith(CONNECTION_FAILED)


class Transport:
    """Keep-alive connections to the gateways, one per concurrent caller; thread-safe.

    Callers wait for a free connection (`block=True`) rather than opening more than
    `pool_size` per host. urllib3 itself never retries or follows redirects here: every retry
    is ours, with the same Idempotency-Key or msgid.
    """

    def __init__(self, pool_size: int, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self._manager = urllib3.PoolManager(
            num_pools=16,
            maxsize=pool_size,
            block=True,
            retries=False,
            timeout=urllib3.Timeout(connect=timeout_seconds, read=timeout_seconds),
        )
        self._routes: dict[str, tuple[urllib3.HTTPConnectionPool, str]] = {}
        self._lock = threading.Lock()

    def _route(self, url: str) -> tuple[urllib3.HTTPConnectionPool, str]:
        route = self._routes.get(url)
        if route is None:
            with self._lock:
                parsed = urllib3.util.parse_url(url)
                pool = self._manager.connection_from_url(url)
                route = (pool, parsed.request_uri)
                self._routes[url] = route
        return route

    def post_json(self, url: str, body: Mapping[str, object], headers: Mapping[str, str]) -> Reply:
        data = json.dumps(body, separators=(",", ":")).encode()
        return self.call("POST", url, data, {"Content-Type": "application/json", **headers})

    def call(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: Mapping[str, str],
        query: str = "",
        below: str = "",
    ) -> Reply:
        """One exchange with `url` (the endpoint, whose connections are pooled), with an
        optional url-encoded `query` and a path `below` the endpoint's (`/<id>`: a resource
        under it, e.g. a charge's status) of this call alone."""
        try:
            pool, path = self._route(url)
            if below:
                path, mark, rest = path.partition("?")
                path = f"{path.rstrip('/')}{below}{mark}{rest}"
            response = pool.urlopen(
                method,
                f"{path}{'&' if '?' in path else '?'}{query}" if query else path,
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=True,
            )
        except NewConnectionError as failed:  # refused (a subclass of ConnectTimeoutError)
            return Reply(None, error=f"{CONNECTION_FAILED}: {_reason(failed)}")
        except ConnectTimeoutError:
            return Reply(None, error=f"{CONNECTION_FAILED}: no connection within {self.timeout_seconds:g} s")
        except ReadTimeoutError:
            return Reply(None, error=f"timed out after {self.timeout_seconds:g} s")
        except ProtocolError as failed:  # reset or closed mid-exchange
            return Reply(None, error=f"{CONNECTION_FAILED}: {_reason(failed)}")
        except (HTTPError, ValueError) as failed:
            return Reply(None, error=f"{type(failed).__name__}: {failed}")
        return _reply(response)

    def close(self) -> None:
        self._manager.clear()


def _reply(response: urllib3.BaseHTTPResponse) -> Reply:
    raw = response.data
    text = raw.decode("utf-8", "replace")
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    retry_after = response.headers.get("Retry-After")
    return Reply(response.status, text, payload, parse_retry_after(retry_after) if retry_after else None)


def _reason(error: Exception) -> str:
    """urllib3 wraps the socket error; the innermost reason is the readable one."""
    inner: object = error
    while isinstance(inner, HTTPError) and inner.args and isinstance(inner.args[-1], Exception):
        inner = inner.args[-1]
    text = str(inner)
    return text.split(": ", 1)[1] if text.startswith("<") and ": " in text else text


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` is either seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class GatewayClient:
    """A gateway client over its own `transport`: `with client:` closes the connections."""

    transport: Transport

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class Backoff:
    """How often and how patiently a transient failure is retried within one call.

    Our own waits grow exponentially up to `cap_seconds`; a gateway's `Retry-After` is honoured
    in full up to `max_retry_after_seconds` (ISKA_MAX_RETRY_AFTER_SECONDS), and one beyond that
    ends the tries: waiting that long inside a run would hold everyone else up.
    """

    tries: int = 4
    base_seconds: float = 0.5
    cap_seconds: float = 30.0
    max_retry_after_seconds: float = 300.0

    def delay(
        self, failed_tries: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (failed_tries - 1))
        jittered = (rng or random).uniform(ceiling / 2, ceiling)  # spreads a burst of retries
        if retry_after is not None:
            return max(min(retry_after, self.max_retry_after_seconds), jittered)
        return jittered

    def waits_too_long(self, retry_after: float | None) -> bool:
        return retry_after is not None and retry_after > self.max_retry_after_seconds


def with_retries(
    call: Callable[[], Reply],
    transient: Callable[[Reply], bool],
    backoff: Backoff,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Reply, int]:
    """Call until the reply is not transient or the tries are used up; returns (reply, tries).

    A transient reply whose `Retry-After` is beyond the backoff's maximum ends the tries at once,
    its excerpt saying so."""
    tries = 0
    while True:
        tries += 1
        reply = call()
        if tries >= backoff.tries or not transient(reply):
            return reply, tries
        if backoff.waits_too_long(reply.retry_after):
            return replace(
                reply,
                error=(
                    f"Retry-After {reply.retry_after:g} s is beyond ISKA_MAX_RETRY_AFTER_SECONDS "
                    f"({backoff.max_retry_after_seconds:g} s): not tried again now; {reply.text}"
                ),
            ), tries
        sleep(backoff.delay(tries, reply.retry_after))
