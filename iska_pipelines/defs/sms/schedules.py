"""The morning run: at ISKA_SMS_HOUR local time, the same day's partition (not yesterday's)."""

import dagster as dg

from iska_pipelines.defs.resources import SETTINGS
from iska_pipelines.defs.sms.jobs import sms_job

sms_schedule = dg.build_schedule_from_partitioned_job(
    sms_job,
    name="sms_daily_schedule",
    hour_of_day=SETTINGS.sms_hour,
    minute_of_hour=0,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Sends the day's forecast SMS at ISKA_SMS_HOUR in ISKA_TIMEZONE.",
)
