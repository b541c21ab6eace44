"""The API app factory: one FastAPI app, a router per resource, errors as JSON."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from iska_pipelines.api.routes import callback, health
from iska_pipelines.lib.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="ISKA API", description="Daily SMS weather forecasts (SPEC §8).")
    app.state.settings = settings
    app.include_router(health.router)
    app.include_router(callback.router)

    @app.exception_handler(RequestValidationError)
    async def invalid_input(_request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": "invalid input", "errors": error.errors()}, status_code=422)

    return app
