"""Refuse an upload before its body is parsed: without access (401/403, so no stranger can
fill the disk) or larger than ISKA_MAX_UPLOAD_MB (413).

A declared Content-Length over the limit is answered at once; the body is read and dropped
first, so the client sees the 413 instead of a broken pipe. Uploads without a length are
counted while they are written into the inbox (lib/uploads.py) and refused there.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from iska_pipelines.api.auth import refusal
from iska_pipelines.api.errors import upload_too_large

MULTIPART_ALLOWANCE = 64 * 1024  # boundaries and part headers around the file itself
UPLOAD_SUFFIX = "_csv/"


class UploadLimit:
    def __init__(self, app: ASGIApp, max_upload_mb: int, token: str | None):
        self.app = app
        self.token = token
        self.max_upload_mb = max_upload_mb
        self.max_bytes = max_upload_mb * 1024 * 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].rstrip("/").endswith(UPLOAD_SUFFIX.rstrip("/")):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refused = refusal(self.token, request.headers, request.client.host if request.client else None)
        if refused is not None:
            await _drain(receive)
            await JSONResponse({"detail": refused.detail}, refused.status_code, refused.headers)(scope, receive, send)
            return
        declared = request.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > self.max_bytes + MULTIPART_ALLOWANCE:
            await _drain(receive)
            await upload_too_large(self.max_upload_mb)(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _drain(receive: Receive) -> None:
    """Read the body and drop it, so the client sees the answer rather than a broken pipe."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return
