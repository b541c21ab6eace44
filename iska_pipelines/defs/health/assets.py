"""The service's health by day (SPEC §16): three daily assets whose numeric metadata Dagster
plots over days, each with its checks.

They are materialised by the runs that do the work (`sms_job`, `billing_job`), by the refresh
sensor as delivery reports and files arrive, and by anyone pressing Materialize; every time the
figures are counted again from ISKA's tables, so they agree whoever wrote them.
"""

import dagster as dg

from iska_pipelines.defs.health.events import BILLING_OUTCOMES, FILE_INTAKE, SMS_DELIVERIES, day_health
from iska_pipelines.defs.health.partitions import health_days, health_region_days
from iska_pipelines.defs.health.resources import HealthChecks
from iska_pipelines.defs.resources import SETTINGS, IskaDatabase
from iska_pipelines.defs.sms.partitions import day_and_region
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.health import checks


def _spec(asset: str, name: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=asset, description=description)


def _materialize(
    context: dg.AssetExecutionContext, asset: str, database: IskaDatabase, health_checks: HealthChecks
) -> dg.MaterializeResult:
    regions = SETTINGS.regions()
    day, code = day_and_region(context.partition_key, regions)  # file_intake's: the day alone
    health = day_health(database.engine(), asset, day, health_checks.rules(), utcnow(), regions, code)
    return dg.MaterializeResult(metadata=dict(health.figures), check_results=health.check_results())


@dg.asset(
    partitions_def=health_region_days,
    group_name="health",
    kinds={"sql"},
    check_specs=[
        _spec(
            SMS_DELIVERIES,
            checks.DELIVERY_RATE,
            "ERROR when fewer than ISKA_MIN_DELIVERY_RATE of the answered messages were delivered.",
        ),
        _spec(
            SMS_DELIVERIES,
            checks.GRID_FRESH,
            "ERROR when the forecast grid is (or will be) older than ISKA_FORECAST_MAX_AGE_HOURS "
            "at the day's SMS hour.",
        ),
    ],
)
def sms_deliveries(
    context: dg.AssetExecutionContext, database: IskaDatabase, health_checks: HealthChecks
) -> dg.MaterializeResult:
    """The day's SMS: planned, sent, accepted (awaiting a report), delivered, failed, rejected,
    expired, skips by reason, delivery rate and segments; final once no report is awaited."""
    return _materialize(context, SMS_DELIVERIES, database, health_checks)


@dg.asset(
    partitions_def=health_region_days,
    group_name="health",
    kinds={"sql"},
    check_specs=[
        _spec(
            BILLING_OUTCOMES,
            checks.NO_TRANSPORT_ERRORS,
            "ERROR when a charge got no answer from the billing gateway.",
        )
    ],
)
def billing_outcomes(
    context: dg.AssetExecutionContext, database: IskaDatabase, health_checks: HealthChecks
) -> dg.MaterializeResult:
    """The day's charges: due, charged, declined, transport errors, cancelled for billing,
    opt-outs and revenue in plan units; with several regions, one region's on its local day."""
    return _materialize(context, BILLING_OUTCOMES, database, health_checks)


@dg.asset(
    partitions_def=health_days,
    group_name="health",
    kinds={"sql"},
    check_specs=[
        _spec(
            FILE_INTAKE,
            checks.NO_REFUSED_FILES,
            "WARN when a file was refused as a whole or its name routed nowhere.",
        )
    ],
)
def file_intake(
    context: dg.AssetExecutionContext, database: IskaDatabase, health_checks: HealthChecks
) -> dg.MaterializeResult:
    """The day's files: applied, refused, duplicates, unknown names; rows applied and refused by
    reason. Duplicates and unknown names also show as observations with their detail."""
    return _materialize(context, FILE_INTAKE, database, health_checks)
