"""The health assets use the SMS job's days (same start, time zone and today's partition), so a
day of `sms_deliveries` is exactly a partition of `sms_job`: by day, or by day and region with
several regions (SPEC §15-16). Billing and files are counted by day."""

from iska_pipelines.defs.sms.partitions import sms_days, sms_job_partitions

health_days = sms_days
health_region_days = sms_job_partitions
