"""One partition per local day; `end_offset=1` makes today's day exist from its first minute,
so the morning schedule sends today's forecast rather than yesterday's.

With several regions (SPEC §15) the SMS days are partitioned by day and region
(`2026-12-03|NG`): each region's day runs, and re-runs, on its own. The day dimension is in the
default region's time zone with one more day ahead, so a region east of it has its local today
from its first minute too.
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from iska_pipelines.defs.resources import SETTINGS
from iska_pipelines.lib.regions.config import Regions

SMS_START_DATE = "2026-01-01"
DAY, REGION = "day", "region"


def day_partitions(regions: Regions) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=SMS_START_DATE, timezone=regions.default.timezone, end_offset=2 if regions.several else 1
    )


def sms_partitions(regions: Regions) -> dg.PartitionsDefinition:
    """By day with one region (as before regions existed); by day and region with several."""
    days = day_partitions(regions)
    if not regions.several:
        return days
    return dg.MultiPartitionsDefinition(
        {DAY: days, REGION: dg.StaticPartitionsDefinition(list(regions.codes))}
    )


def region_day_key(day: date, region: str, regions: Regions) -> str:
    """The partition key of `region`'s day D: the day alone when there is one region."""
    if not regions.several:
        return day.isoformat()
    return dg.MultiPartitionKey({DAY: day.isoformat(), REGION: region})


def day_and_region(partition_key: str, regions: Regions) -> tuple[date, str]:
    """A partition key (`2026-12-03` or `2026-12-03|NG`) as its day and region code."""
    day, _, region = str(partition_key).partition("|")
    return date.fromisoformat(day), regions.get(region or None).code


sms_days = day_partitions(SETTINGS.regions())
sms_job_partitions = sms_partitions(SETTINGS.regions())
