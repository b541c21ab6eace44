"""The API app factory: one FastAPI app, a router per resource, errors as JSON."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from iska_pipelines.api.access import Access
from iska_pipelines.api.dependencies import check_database_url
from iska_pipelines.api.errors import install_error_handlers
from iska_pipelines.api.openapi import document_errors
from iska_pipelines.api.routes import (
    billing_callback,
    callback,
    forecasts,
    health,
    inbound,
    sms_trigger,
    status,
    subscriptions,
    tasks,
    uploads,
)
from iska_pipelines.api.upload_limit import UploadLimit
from iska_pipelines.lib.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    """Raises ConfigurationError for a database URL that can never work."""
    check_database_url(settings.database_url)
    # /docs and /redoc load Swagger UI and ReDoc from the package's own copies, never a CDN
    # (and never shows Swagger's online validator badge, which is fetched from swagger.io)
    app = FastAPIOffline(
        title="ISKA API",
        description="Daily SMS weather forecasts (SPEC §8).",
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.settings = settings
    app.include_router(health.router)
    app.include_router(callback.router)
    app.include_router(billing_callback.router)
    app.include_router(inbound.router)

    @app.exception_handler(RequestValidationError)
    async def invalid_input(_request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": "invalid input", "errors": error.errors()}, status_code=422)

    # the status page, records, uploads, task status and the SMS trigger (token or loopback,
    # api/auth.py); the fixed paths come before `{id}/` so `task_status/` is never read as an id
    for router in (
        status.router,
        uploads.router,
        tasks.router,
        sms_trigger.router,
        forecasts.router,
        subscriptions.router,
    ):
        app.include_router(router)
    # one JSON error shape for every route, incl. a 422 that is always serialisable (replaces
    # the handler above) and a generic 500 without a trace
    install_error_handlers(app)
    document_errors(app)
    app.add_middleware(UploadLimit, max_upload_mb=settings.max_upload_mb)
    # added last, so outermost: the token is checked before any route, page or body is looked at
    app.add_middleware(Access, token=settings.api_token)
    return app
