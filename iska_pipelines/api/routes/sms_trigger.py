"""`GET|POST .../trigger_send_sms/`: run today's SMS partition now (SPEC §7–8); with several
regions (SPEC §15) each region's local today. The answer lists every region's run, and repeats
the default region's at the top level (`run_id`, `task_id`), where the original clients look.

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
from iska_pipelines.api.schemas import ErrorBody, SmsTriggered, TriggeredRun
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.tasks.graphql import DagsterGraphQL

PATH = "/subscriptions/api/v1/subscriptions/trigger_send_sms/"
SMS_JOB = "sms_job"

router = APIRouter(
    tags=["subscriptions"],
    dependencies=[Depends(require_access)],
    responses={code: {"model": ErrorBody} for code in (401, 403, 503)},
)


def todays_partitions(config: Settings) -> list[tuple[str, str]]:
    """(region code, today's partition key) of each region, the default region's first."""
    regions = config.regions()
    keys = []
    for region in regions.all:
        day = datetime.now(ZoneInfo(region.timezone)).date().isoformat()
        keys.append((region.code, f"{day}|{region.code}" if regions.several else day))
    return keys


async def trigger_send_sms(config: Settings = Depends(settings)) -> SmsTriggered:
    client = DagsterGraphQL(config.dagster_url)
    runs = []
    for code, key in todays_partitions(config):
        run, launched = await run_in_threadpool(
            client.launch_unless_running, SMS_JOB, key, {"iska/trigger": "api"}
        )
        runs.append(TriggeredRun(region=code, partition=key, run_id=run.run_id, launched=launched))
    first = runs[0]
    return SmsTriggered(
        run_id=first.run_id,
        task_id=first.run_id,
        partition=first.partition,
        launched=first.launched,
        runs=runs,
    )


router.add_api_route(
    PATH, trigger_send_sms, methods=["GET"], response_model=SmsTriggered, name="trigger_send_sms_get"
)
router.add_api_route(
    PATH, trigger_send_sms, methods=["POST"], response_model=SmsTriggered, name="trigger_send_sms_post"
)
