"""Refuse an upload larger than ISKA_MAX_UPLOAD_MB (413) before its body is parsed (who may
upload at all is decided earlier, in api/access.py).

A declared Content-Length over the limit is answered at once; the body is read and dropped
first, so the client sees the 413 instead of a broken pipe. Uploads without a length are
counted while they are written into the inbox (lib/inbox/uploads.py) and refused there.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from iska_pipelines.api.access import drain
from iska_pipelines.api.errors import upload_too_large

MULTIPART_ALLOWANCE = 64 * 1024  # boundaries and part headers around the file itself
UPLOAD_SUFFIX = "_csv/"


class UploadLimit:
    def __init__(self, app: ASGIApp, max_upload_mb: int):
        self.app = app
        self.max_upload_mb = max_upload_mb
        self.max_bytes = max_upload_mb * 1024 * 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].rstrip("/").endswith(UPLOAD_SUFFIX.rstrip("/")):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        declared = request.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > self.max_bytes + MULTIPART_ALLOWANCE:
            await drain(receive)
            await upload_too_large(self.max_upload_mb)(scope, receive, send)
            return
        await self.app(scope, receive, send)
