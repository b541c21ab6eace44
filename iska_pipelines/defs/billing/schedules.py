"""`billing_schedule`: billing_job on ISKA_BILLING_CRON in ISKA_TIMEZONE, running by default."""

import dagster as dg

from iska_pipelines.defs.billing.jobs import billing_job
from iska_pipelines.defs.resources import SETTINGS
from iska_pipelines.lib.errors import ConfigurationError


def _billing_schedule(cron: str, timezone: str) -> dg.ScheduleDefinition:
    try:
        return dg.ScheduleDefinition(
            name="billing_schedule",
            job=billing_job,
            cron_schedule=cron,
            execution_timezone=timezone,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description="Charges whoever is due; a run that finds nobody due is cheap.",
        )
    except dg.DagsterInvalidDefinitionError as invalid:
        raise ConfigurationError(f"ISKA_BILLING_CRON is not a valid cron expression: {cron!r}") from invalid


billing_schedule = _billing_schedule(SETTINGS.billing_cron, SETTINGS.timezone)
