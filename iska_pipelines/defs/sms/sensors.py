"""The SMS catch-up: a day left with pending messages (a run crashed and was not retried, a
retry gave up) gets another run before ISKA_SMS_LATEST_HOUR, and a closing run after it.
With several regions (SPEC §15), each region's day on its own, at its own local cut-off."""

from collections import Counter
from datetime import date
from functools import partial

import dagster as dg

from iska_pipelines.defs.resources import IskaDatabase
from iska_pipelines.defs.sms.jobs import CATCH_UP_TAG, sms_job
from iska_pipelines.defs.sms.partitions import SMS_START_DATE, day_and_region, region_day_key
from iska_pipelines.defs.sms.resources import SmsOutbox
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.regions.config import Regions
from iska_pipelines.lib.sms.catch_up import CatchUp, catch_ups
from iska_pipelines.lib.sms.claims import pending_by_region

UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def days_in_progress(instance: dg.DagsterInstance, regions: Regions) -> set[tuple[date, str]]:
    """(day, region) of every SMS run not finished yet."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=sms_job.name, statuses=UNFINISHED))
    return {
        day_and_region(run.tags["dagster/partition"], regions)
        for run in runs
        if "dagster/partition" in run.tags
    }


def region_catch_ups(
    pending: dict[tuple[date, str | None], int],
    busy: set[tuple[date, str]],
    regions: Regions,
    sms_outbox: SmsOutbox,
) -> list[CatchUp]:
    """Each region's days with pending messages and no run in progress (stored regions that
    are empty or no longer configured count as the default region's)."""
    by_region: dict[str, Counter[date]] = {}
    for (day, stored), n in pending.items():
        by_region.setdefault(regions.get(stored).code, Counter())[day] += n
    found: list[CatchUp] = []
    for code, days in by_region.items():
        region = regions.get(code)
        found += catch_ups(
            days,
            {day for day, other in busy if other == code},
            utcnow(),
            partial(sms_outbox.cutoff, timezone=region.timezone),
            date.fromisoformat(SMS_START_DATE),
            code if regions.several else None,
        )
    return found


@dg.sensor(
    job=sms_job,
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends a day's still-pending SMS until ISKA_SMS_LATEST_HOUR, then ends "
    "them skipped_too_late.",
)
def sms_catch_up(context: dg.SensorEvaluationContext, database: IskaDatabase, sms_outbox: SmsOutbox):
    with database.engine().connect() as connection:
        pending = pending_by_region(connection)
    if not pending:
        return dg.SkipReason("no day has pending messages")
    regions = sms_outbox.regions()
    found = region_catch_ups(pending, days_in_progress(context.instance, regions), regions, sms_outbox)
    if not found:
        return dg.SkipReason("every day with pending messages has a run in progress")
    for catch_up in found:
        context.log.info(catch_up.describe())
    return [
        dg.RunRequest(
            run_key=c.run_key,
            partition_key=region_day_key(c.day, c.region or regions.default.code, regions),
            tags={CATCH_UP_TAG: "close" if c.too_late else "send"},
        )
        for c in found
    ]
