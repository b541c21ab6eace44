"""An inbound SMS as gateways post it (SPEC §13): JSON or a form, under the common field names.

`msisdn` or `from`, `text`, `id`, `received_at` or `date`. The msisdn is kept as the files keep
it (digits, without a leading + or 00). Without an `id` the message is named by a hash of what
it says (msisdn, text, and its time, else the minute it arrived), so a gateway repeating it is
still recognised and the same word sent again another day is not taken for a repeat. A time
that cannot be read, or none, is the moment it arrived.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import polars as pl

from iska_pipelines.lib.consent.inbound import Inbound
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.inbox.reading import timestamps

FIELDS = {
    "msisdn": ("msisdn", "from", "sender", "MSISDN", "From"),
    "text": ("text", "message", "body", "Text", "Body"),
    "id": ("id", "message_id", "messageId", "msgid", "MessageSid"),
    "received_at": ("received_at", "date", "timestamp", "Date"),
}
MSISDN = re.compile(r"^[0-9]{8,15}$")
ID_CHARS = 100


class BadInbound(ValueError):
    """The body is not an inbound SMS; the message names what is wrong."""


def _first(body: Mapping[str, Any], name: str) -> str | None:
    for key in FIELDS[name]:
        value = body.get(key)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def msisdn_of(value: str) -> str | None:
    digits = re.sub(r"\s+", "", value).removeprefix("+")
    digits = digits.removeprefix("00")
    return digits if MSISDN.match(digits) else None


def received_at_of(value: str | None, timezone: str, now: datetime) -> datetime:
    if value is None:
        return now
    parsed = timestamps(pl.Series([value], dtype=pl.String), timezone)[0]
    return parsed if isinstance(parsed, datetime) else now


def parse_inbound(body: Mapping[str, Any], timezone: str, now: datetime | None = None) -> Inbound:
    now = now or utcnow()
    raw_msisdn = _first(body, "msisdn")
    text = next((body[key] for key in FIELDS["text"] if body.get(key) is not None), None)
    if raw_msisdn is None:
        raise BadInbound("no msisdn (or from) in the message")
    msisdn = msisdn_of(raw_msisdn)
    if msisdn is None:
        raise BadInbound(f"msisdn {raw_msisdn!r} is not 8-15 digits")
    if text is None:
        raise BadInbound("no text in the message")
    text = str(text)
    received_text = _first(body, "received_at")
    received_at = received_at_of(received_text, timezone, now)
    gateway_id = _first(body, "id")
    if gateway_id is None:
        gateway_id = (
            "sha256:" + hashlib.sha256(f"{msisdn}\n{text}\n{received_text}".encode()).hexdigest()[:64]
        )
    return Inbound(gateway_id[:ID_CHARS], msisdn, text, received_at)
