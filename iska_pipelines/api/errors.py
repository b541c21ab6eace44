"""Errors as JSON with a message, never a stack trace (SPEC §8).

Bad input is 422 with one entry per field in the reason words of the CSV files; a valid
change the stored state refuses (a stale event) is 409; Dagster or the database out of reach
is 503 saying where it was looked for. Anything else is a fault of ours: logged with its trace,
answered with a generic 500.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from iska_pipelines.api.dependencies import UNREACHABLE, unreachable
from iska_pipelines.lib.errors import InvalidRecord, RecordConflict, RecordNotFound
from iska_pipelines.lib.inbox.uploads import UploadTooLarge
from iska_pipelines.lib.tasks.graphql import DagsterUnavailable

log = logging.getLogger("iska.api")


def _field_errors(error: RequestValidationError) -> list[dict]:
    """Pydantic's errors as {field, reason, message}, with nothing that cannot be JSON."""
    entries = []
    for item in error.errors():
        location = list(item.get("loc", ()))
        named = [str(part) for part in location[1:] if not isinstance(part, int)]
        field = ".".join(named) or (str(location[0]) if location else "body")
        entries.append(
            {
                "field": field,
                "reason": str(item.get("type", "invalid")),
                "message": str(item.get("msg", "invalid value")),
            }
        )
    return entries


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": "invalid input", "errors": _field_errors(error)}, status_code=422)

    @app.exception_handler(InvalidRecord)
    async def invalid_record(_request: Request, error: InvalidRecord) -> JSONResponse:
        return JSONResponse(
            {"detail": "invalid input", "errors": [e.as_dict() for e in error.errors]}, status_code=422
        )

    @app.exception_handler(RecordConflict)
    async def conflict(_request: Request, error: RecordConflict) -> JSONResponse:
        return JSONResponse(
            {"detail": str(error), "errors": [e.as_dict() for e in error.errors]}, status_code=409
        )

    @app.exception_handler(RecordNotFound)
    async def not_found(_request: Request, error: RecordNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(UploadTooLarge)
    async def too_large(request: Request, error: UploadTooLarge) -> JSONResponse:
        return upload_too_large(request.app.state.settings.max_upload_mb)

    @app.exception_handler(DagsterUnavailable)
    async def dagster_unavailable(_request: Request, error: DagsterUnavailable) -> JSONResponse:
        log.warning("%s", error)
        return JSONResponse({"detail": str(error)}, status_code=503)

    async def database_unavailable(request: Request, error: sa.exc.DBAPIError) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, unreachable(error))
        return JSONResponse({"detail": unreachable(error)}, status_code=503)

    for error_class in UNREACHABLE:
        # Starlette types a handler as taking any Exception; this one is registered for DBAPIErrors
        app.add_exception_handler(error_class, database_unavailable)  # type: ignore[arg-type]

    @app.exception_handler(Exception)
    async def server_fault(request: Request, error: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return JSONResponse({"detail": "internal error; the server log has the details"}, status_code=500)


def upload_too_large(max_upload_mb: int) -> JSONResponse:
    return JSONResponse(
        {"detail": f"the file is larger than ISKA_MAX_UPLOAD_MB={max_upload_mb} MB"}, status_code=413
    )
