"""The MoMo callback URL ISKA hands the gateway with each charge (SPEC §18), and its `sig`.

MoMo calls the `X-Callback-Url` of a request once, unauthenticated; the URL names the charge's
reference and carries the HMAC of it under ISKA_CALLBACK_SECRET, so only the gateway that was
given the URL (or someone who knows the secret) can settle that charge, and only that charge.
"""

from __future__ import annotations

from urllib.parse import urlencode

from iska_pipelines.lib.sms.signing import sign, signature_matches

MOMO_CALLBACK_PATH = "/billing/api/v1/momo/callback/"

__all__ = ["MOMO_CALLBACK_PATH", "momo_callback_url", "signature_matches"]


def momo_callback_url(public_url: str, reference: str, secret: str) -> str:
    query = urlencode({"ref": reference, "sig": sign(reference, secret)})
    return f"{public_url.rstrip('/')}{MOMO_CALLBACK_PATH}?{query}"
