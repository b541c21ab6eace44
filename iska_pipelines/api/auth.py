"""Who may call the API (SPEC §8).

With ISKA_API_TOKEN set, a request needs `Authorization: Bearer <token>` or `Auth-Key: <token>`
(the header the original clients and gateways use), compared in constant time. Without a token
the API is for this machine only: requests from anywhere but loopback are refused, as a second
line behind `iska api` refusing to bind elsewhere. /health and the delivery-report callback
(checked by its `sig`) do not use this.
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import HTTPException, Request


def is_loopback_client(host: str | None) -> bool:
    try:
        address = ipaddress.ip_address((host or "").strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def presented_token(headers) -> str | None:
    authorization = headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("auth-key", "").strip() or None


def refusal(token: str | None, headers, client_host: str | None) -> HTTPException | None:
    """Why this request may not pass (None: it may)."""
    if not token:
        if not is_loopback_client(client_host):
            return HTTPException(403, "ISKA_API_TOKEN is not set, so the API answers loopback clients only")
        return None
    given = presented_token(headers)
    if given is None or not hmac.compare_digest(given.encode("utf-8", "replace"), token.encode()):
        return HTTPException(
            401,
            "missing or wrong API token: send Authorization: Bearer <token> or Auth-Key: <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return None


def require_access(request: Request) -> None:
    """FastAPI dependency for every route but /health and the callback."""
    refused = refusal(
        request.app.state.settings.api_token, request.headers, request.client.host if request.client else None
    )
    if refused is not None:
        raise refused
