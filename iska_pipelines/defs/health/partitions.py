"""The health assets use the SMS job's days (same start, time zone and today's partition), so a
day of `sms_deliveries` is exactly a partition of `sms_job`: by day, or by day and region with
several regions (SPEC §15-16). `billing_outcomes` is partitioned the same way, since each
region's subscribers are billed on its local day; files belong to no region, so `file_intake`
is by day."""

from iska_pipelines.defs.sms.partitions import sms_days, sms_job_partitions

health_days = sms_days
health_region_days = sms_job_partitions
