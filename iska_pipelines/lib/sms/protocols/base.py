"""What every protocol adapter has in common: the shapes it takes and gives, and small helpers.

A `WireRequest` is what goes to the gateway; a `SendVerdict` what its answer means; a `Report`
one delivery report as ISKA reads it; a `Callback` a request a gateway made to ISKA (a delivery
report or an inbound SMS), as it arrived.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

from iska_pipelines.lib.http.client import Reply
from iska_pipelines.lib.regions.config import Gateway
from iska_pipelines.lib.vocabulary import MessageStatus

JSON = {"Content-Type": "application/json", "Accept": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}


class Verdict(StrEnum):
    ACCEPTED = "accepted"  # the gateway took the message
    REJECTED = "rejected"  # the gateway refused this message for good: not tried again
    RETRY = "retry"  # no decision: try again later (with backoff)


@dataclass(frozen=True, slots=True)
class SendVerdict:
    verdict: Verdict
    gateway_ref: str | None = None  # the gateway's own id of the message, when it has one


@dataclass(frozen=True, slots=True)
class WireRequest:
    method: str
    url: str  # the endpoint; connections are pooled per endpoint
    query: str = ""  # url-encoded, after the `?`
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Report:
    """One delivery report. `status` None: a step that is not final (sent to the network):
    nothing changes. A protocol that does not carry our msgid names the message by the
    gateway's own id (`gateway_ref`)."""

    msgid: str | None
    gateway_ref: str | None
    status: MessageStatus | None
    said: str  # the gateway's own word, for the log
    detail: str | None = None  # a failure reason or error code, kept as last_error


@dataclass(frozen=True)
class Callback:
    """A request a gateway made to ISKA: its query, body and headers, and the URL it called
    (as the gateway saw it: ISKA_PUBLIC_URL, path and query), which a signature may cover."""

    query: Mapping[str, str]
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    url: str = ""

    def form(self) -> dict[str, str]:
        """The body as a form (application/x-www-form-urlencoded)."""
        try:
            return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise BadCallback("the body is not a UTF-8 form") from None

    def json_object(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body)
        except (UnicodeDecodeError, ValueError):
            raise BadCallback("the body is not valid JSON") from None
        if not isinstance(value, dict):
            raise BadCallback("the body must be a JSON object")
        return value


class BadCallback(ValueError):
    """A callback that is not what its protocol sends; the message names what is wrong (4xx)."""


class Adapter(Protocol):
    name: str

    def request(self, message: Outgoing, gateway: Gateway, secret: str) -> WireRequest:
        """The gateway's request for one message."""

    def verdict(self, reply: Reply) -> SendVerdict:
        """What the gateway's answer means (credentials and failover are decided before this)."""

    def refused_credentials(self, reply: Reply) -> bool:
        """Whether the answer says the credentials are wrong (for every message: sending stops)."""

    def reports(self, callback: Callback) -> list[Report]:
        """The delivery reports of one callback; BadCallback when it is none."""

    def inbound(self, callback: Callback) -> list[dict[str, str]]:
        """The inbound SMS of one callback, under the names `parse_inbound` reads (`msisdn`,
        `text`, `id`, `received_at`); BadCallback when it is none."""


class Outgoing(Protocol):
    """An outbox message as adapters see it (lib/sms/gateway.py's OutgoingSms)."""

    @property
    def msgid(self) -> str: ...
    @property
    def msisdn(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def callback(self) -> str: ...


def refused_credentials(reply: Reply) -> bool:
    """401 or 403: what most gateways answer to a wrong key or password."""
    return reply.status in (401, 403)


def endpoint(base: str, path: str) -> str:
    """The gateway URL with its protocol's path, unless the URL already ends with it."""
    base = base.rstrip("/")
    return base if base.endswith(path.rstrip("/")) else base + path


def protocol_callback(callback: str, protocol: str, **extra: str) -> str:
    """The message's signed callback URL (`...callback/?sig=<sig of msgid>`) naming the protocol
    and the msgid, so a report can be read and checked whatever the gateway sends."""
    return f"{callback}&{urlencode({'protocol': protocol, **extra})}"


def form_body(fields: Mapping[str, str]) -> bytes:
    return urlencode({k: v for k, v in fields.items() if v != ""}).encode()


def json_body(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def required(fields: Mapping[str, Any], *names: str) -> list[str]:
    """Each named field as a non-empty string; BadCallback names the first missing one."""
    values = []
    for name in names:
        value = fields.get(name)
        if value is None or not str(value).strip():
            raise BadCallback(f"no {name} in the callback")
        values.append(str(value).strip())
    return values


def e164(msisdn: str) -> str:
    """The number as hosted gateways want it: with a leading +."""
    return msisdn if msisdn.startswith("+") else f"+{msisdn}"
