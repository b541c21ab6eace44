"""The morning run: at ISKA_SMS_HOUR local time, the same day's partition (not yesterday's).

With several regions (SPEC §15), one schedule per region, `sms_daily_schedule_<code>`, at the
region's SMS hour in its time zone, asks for that region's local day.
"""

from __future__ import annotations

import dagster as dg

from iska_pipelines.defs.resources import SETTINGS
from iska_pipelines.defs.sms.jobs import sms_job
from iska_pipelines.defs.sms.partitions import region_day_key
from iska_pipelines.lib.regions.config import Region, Regions


def region_schedule(job: dg.JobDefinition, region: Region, regions: Regions) -> dg.ScheduleDefinition:
    """`region`'s day at its SMS hour, in its own time zone and on its own local date."""

    @dg.schedule(
        name=f"sms_daily_schedule_{region.code}",
        job=job,
        cron_schedule=f"0 {region.sms_hour} * * *",
        execution_timezone=region.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Sends region {region.code}'s forecast SMS at {region.sms_hour}:00 {region.timezone}.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        local_day = context.scheduled_execution_time.astimezone(region.tzinfo).date()
        return dg.RunRequest(partition_key=region_day_key(local_day, region.code, regions))

    return _schedule


def sms_schedules(job: dg.JobDefinition, regions: Regions) -> list[dg.ScheduleDefinition]:
    if not regions.several:
        return [
            dg.build_schedule_from_partitioned_job(  # a ScheduleDefinition for a job
                job,
                name="sms_daily_schedule",
                hour_of_day=regions.default.sms_hour,
                minute_of_hour=0,
                default_status=dg.DefaultScheduleStatus.RUNNING,
                description="Sends the day's forecast SMS at ISKA_SMS_HOUR in ISKA_TIMEZONE.",
            )  # type: ignore[list-item]
        ]
    return [region_schedule(job, region, regions) for region in regions.all]


SCHEDULES = sms_schedules(sms_job, SETTINGS.regions())
sms_schedule = SCHEDULES[0]  # the one schedule; with several regions, the default region's


@dg.definitions
def schedules() -> dg.Definitions:
    """Every SMS schedule (a module with a definitions function is loaded through it alone)."""
    return dg.Definitions(schedules=SCHEDULES)
