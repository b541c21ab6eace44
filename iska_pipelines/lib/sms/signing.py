"""The delivery-report callback URL and its `sig` (SPEC §7).

The gateway echoes the URL it was given, so the signature travels with it: only someone who
knows `ISKA_CALLBACK_SECRET` can produce a report that ISKA accepts for a msgid.
"""

from __future__ import annotations

import hashlib
import hmac

CALLBACK_PATH = "/subscriptions/api/v1/subscriptions/callback/"


def sign(msgid: str, secret: str) -> str:
    """Hex HMAC-SHA256 of the msgid."""
    return hmac.new(secret.encode(), msgid.encode(), hashlib.sha256).hexdigest()


def signature_matches(msgid: str, sig: str | None, secret: str) -> bool:
    """Constant-time comparison, so the answer time leaks nothing about the right sig."""
    given = (sig or "").strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(sign(msgid, secret).encode(), given)


def callback_url(public_url: str, msgid: str, secret: str) -> str:
    return f"{public_url.rstrip('/')}{CALLBACK_PATH}?sig={sign(msgid, secret)}"  # hex: nothing to escape
