"""`GET|POST .../trigger_send_sms/`: run today's SMS partition now (SPEC §7–8).

Launched through the Dagster webserver, so the run shows in the UI like a scheduled one and
the day's rules hold (nobody gets a second forecast for the day). While that day's run is
queued or running, its id is answered instead of launching another.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from iska_pipelines.api.auth import require_access
from iska_pipelines.api.dependencies import settings
from iska_pipelines.api.schemas import ErrorBody, SmsTriggered
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.tasks.graphql import DagsterGraphQL

PATH = "/subscriptions/api/v1/subscriptions/trigger_send_sms/"
SMS_JOB = "sms_job"

router = APIRouter(
    tags=["subscriptions"],
    dependencies=[Depends(require_access)],
    responses={code: {"model": ErrorBody} for code in (401, 403, 503)},
)


async def trigger_send_sms(config: Settings = Depends(settings)) -> SmsTriggered:
    day = datetime.now(ZoneInfo(config.timezone)).date().isoformat()
    client = DagsterGraphQL(config.dagster_url)
    run, launched = await run_in_threadpool(
        client.launch_unless_running, SMS_JOB, day, {"iska/trigger": "api"}
    )
    return SmsTriggered(run_id=run.run_id, task_id=run.run_id, partition=day, launched=launched)


router.add_api_route(
    PATH, trigger_send_sms, methods=["GET"], response_model=SmsTriggered, name="trigger_send_sms_get"
)
router.add_api_route(
    PATH, trigger_send_sms, methods=["POST"], response_model=SmsTriggered, name="trigger_send_sms_post"
)
