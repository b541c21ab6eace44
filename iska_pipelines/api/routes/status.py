"""`/` and `/status`: the service at a glance (SPEC §16), as a page and as JSON.

Operator information, so behind the same door as the records (ISKA_API_TOKEN, or loopback
only without it); /health stays open for probes.
"""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from iska_pipelines.api.auth import require_access
from iska_pipelines.api.dependencies import database, settings
from iska_pipelines.api.schemas import ErrorBody
from iska_pipelines.api.status_page import render
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.health.checks import HealthRules
from iska_pipelines.lib.health.status import snapshot
from iska_pipelines.lib.settings import Settings

router = APIRouter(
    tags=["status"],
    dependencies=[Depends(require_access)],
    responses={code: {"model": ErrorBody} for code in (401, 403, 503)},
)


def rules_of(config: Settings) -> HealthRules:
    return HealthRules(
        config.timezone, config.sms_hour, config.forecast_max_age_hours, config.min_delivery_rate
    )


@router.get("/status")
async def status_json(engine: sa.Engine = Depends(database), config: Settings = Depends(settings)) -> dict:
    """Today's SMS and billing, the grid's age, the checks' verdicts and the last files."""
    return await run_in_threadpool(snapshot, engine, utcnow(), rules_of(config), 10, config.regions())


@router.get("/", response_class=HTMLResponse)
async def status_page(
    engine: sa.Engine = Depends(database), config: Settings = Depends(settings)
) -> HTMLResponse:
    """The same as /status, as one page for a browser (no script, nothing from elsewhere)."""
    found = await run_in_threadpool(snapshot, engine, utcnow(), rules_of(config), 10, config.regions())
    return HTMLResponse(render(found, config.dagster_url))
