"""The SMS catch-up: a day left with pending messages (a run crashed and was not retried, a
retry gave up) gets another run before ISKA_SMS_LATEST_HOUR, and a closing run after it."""

from datetime import date

import dagster as dg

from iska_pipelines.defs.resources import IskaDatabase
from iska_pipelines.defs.sms.jobs import CATCH_UP_TAG, sms_job
from iska_pipelines.defs.sms.partitions import SMS_START_DATE
from iska_pipelines.defs.sms.resources import SmsOutbox
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.sms.catch_up import catch_ups
from iska_pipelines.lib.sms.claims import days_with_pending

UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def days_in_progress(instance: dg.DagsterInstance) -> set[date]:
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=sms_job.name, statuses=UNFINISHED))
    return {
        date.fromisoformat(run.tags["dagster/partition"]) for run in runs if "dagster/partition" in run.tags
    }


@dg.sensor(
    job=sms_job,
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends a day's still-pending SMS until ISKA_SMS_LATEST_HOUR, then ends "
    "them skipped_too_late.",
)
def sms_catch_up(context: dg.SensorEvaluationContext, database: IskaDatabase, sms_outbox: SmsOutbox):
    with database.engine().connect() as connection:
        pending = days_with_pending(connection)
    if not pending:
        return dg.SkipReason("no day has pending messages")
    found = catch_ups(
        pending,
        days_in_progress(context.instance),
        utcnow(),
        sms_outbox.cutoff,
        date.fromisoformat(SMS_START_DATE),
    )
    if not found:
        return dg.SkipReason("every day with pending messages has a run in progress")
    for catch_up in found:
        context.log.info(catch_up.describe())
    return [
        dg.RunRequest(
            run_key=c.run_key,
            partition_key=c.day.isoformat(),
            tags={CATCH_UP_TAG: "close" if c.too_late else "send"},
        )
        for c in found
    ]
