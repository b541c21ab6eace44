"""The health assets use the SMS job's days (same start, time zone and today's partition), so a
day of `sms_deliveries` is exactly a partition of `sms_job`."""

from iska_pipelines.defs.sms.partitions import sms_days

health_days = sms_days
