"""`GET /health`: the process answers and ISKA's database is reachable (200), or 503 with the
reason when it is not (also when the database was already out of reach at start-up)."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from iska_pipelines.api.dependencies import database, unreachable

log = logging.getLogger("iska.api.health")
router = APIRouter(tags=["health"])


@router.get("/health")
def health(request: Request) -> JSONResponse:
    try:
        with database(request).connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        log.warning("health: %s", unreachable(error))
        return JSONResponse({"status": "error", "detail": unreachable(error)}, status_code=503)
    return JSONResponse({"status": "ok"})
