"""Pooled sessions and transport retries shared by the gateway clients (SPEC §6–7).

A gateway call never raises: it yields a `Reply` that is either an HTTP answer or the reason
there was none (refused, timed out, reset). The caller decides which replies are worth another
try; `with_retries` waits between tries with exponential backoff and jitter, and never less than
the `Retry-After` the gateway asked for.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

EXCERPT_CHARS = 500


def pooled_session(pool_size: int) -> requests.Session:
    """One keep-alive connection per concurrent caller; callers wait for a free one."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, pool_block=True, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@dataclass(frozen=True)
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


def post_json(session: requests.Session, url: str, body: dict[str, Any], headers: dict[str, str],
              timeout_seconds: float) -> Reply:
    try:
        response = session.post(url, json=body, headers=headers, timeout=timeout_seconds)
    except requests.ConnectTimeout:  # both a Timeout and a ConnectionError: nobody took the call
        return Reply(None, error=f"connection failed: no connection within {timeout_seconds:g} s")
    except requests.Timeout:
        return Reply(None, error=f"timed out after {timeout_seconds:g} s")
    except requests.ConnectionError as failed:
        return Reply(None, error=f"connection failed: {_root_cause(failed)}")
    except requests.RequestException as failed:
        return Reply(None, error=f"{type(failed).__name__}: {failed}")
    text = response.text
    try:
        payload = json.loads(text) if text else None
    except ValueError:
        payload = None
    return Reply(response.status_code, text, payload, parse_retry_after(response.headers.get("Retry-After")))


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

    def delay(self, failed_tries: int, retry_after: float | None = None,
              rng: random.Random | None = None) -> float:
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (failed_tries - 1))
        jittered = (rng or random).uniform(ceiling / 2, ceiling)  # spreads a burst of retries
        if retry_after is not None:
            return max(min(retry_after, self.max_retry_after_seconds), jittered)
        return jittered

    def waits_too_long(self, retry_after: float | None) -> bool:
        return retry_after is not None and retry_after > self.max_retry_after_seconds


def with_retries(call: Callable[[], Reply], transient: Callable[[Reply], bool], backoff: Backoff,
                 sleep: Callable[[float], None] = time.sleep) -> tuple[Reply, int]:
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
            return replace(reply, error=(
                f"Retry-After {reply.retry_after:g} s is beyond ISKA_MAX_RETRY_AFTER_SECONDS "
                f"({backoff.max_retry_after_seconds:g} s): not tried again now; {reply.text}")), tries
        sleep(backoff.delay(tries, reply.retry_after))


def _root_cause(error: requests.ConnectionError) -> str:
    """urllib3 wraps the socket error twice; the innermost reason is the readable one."""
    inner = error.args[0] if error.args else error
    return str(getattr(inner, "reason", inner))
