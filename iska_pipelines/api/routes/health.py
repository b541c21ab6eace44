"""`GET /health`: the process answers and ISKA's database is reachable."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from iska_pipelines.api.dependencies import database

router = APIRouter(tags=["health"])


@router.get("/health")
def health(engine: sa.Engine = Depends(database)) -> JSONResponse:
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        return JSONResponse({"status": "error", "detail": f"database unreachable: {type(error).__name__}"},
                            status_code=503)
    return JSONResponse({"status": "ok"})
