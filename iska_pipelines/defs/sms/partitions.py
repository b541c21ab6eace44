"""One partition per local day; `end_offset=1` makes today's day exist from its first minute,
so the morning schedule sends today's forecast rather than yesterday's."""

import dagster as dg

from iska_pipelines.defs.resources import SETTINGS

SMS_START_DATE = "2026-01-01"

sms_days = dg.DailyPartitionsDefinition(start_date=SMS_START_DATE, timezone=SETTINGS.timezone, end_offset=1)
