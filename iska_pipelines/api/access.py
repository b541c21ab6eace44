"""The API's door (SPEC §8), decided before a route or its body is looked at.

An ASGI middleware in front of everything: /docs, /redoc, /openapi.json and their scripts are
behind it too. A request that may not pass is answered 401 (or 403 without ISKA_API_TOKEN from
beyond loopback) whatever its body: a broken JSON body never turns into a 422 for a stranger.
/health, the delivery-report and MoMo callbacks (checked by their `sig`) and the inbound SMS
route (checked by its own token) are open.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from iska_pipelines.api.auth import refusal
from iska_pipelines.lib.billing.signing import MOMO_CALLBACK_PATH
from iska_pipelines.lib.sms.callbacks import INBOUND_PATH
from iska_pipelines.lib.sms.signing import CALLBACK_PATH

OPEN_PATHS = frozenset(
    path.rstrip("/") for path in ("/health", CALLBACK_PATH, MOMO_CALLBACK_PATH, INBOUND_PATH)
)


class Access:
    def __init__(self, app: ASGIApp, token: str | None):
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refused = refusal(self.token, request.headers, request.client.host if request.client else None)
        if refused is None:
            await self.app(scope, receive, send)
            return
        await drain(receive)
        await JSONResponse({"detail": refused.detail}, refused.status_code, refused.headers)(
            scope, receive, send
        )


async def drain(receive: Receive) -> None:
    """Read the body and drop it, so the client sees the answer rather than a broken pipe."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return
